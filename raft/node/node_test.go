package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bifrost-go/bifrost/raft"
)

// recorder is a StateMachine that remembers what it applied and answers
// each command with "ok:<cmd>".
type recorder struct {
	mu      sync.Mutex // protects applied
	applied []string
}

func (r *recorder) Apply(e raft.Entry) []byte {
	if e.Type != raft.EntryNormal {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.applied = append(r.applied, fmt.Sprintf("%d:%s", e.Index, e.Data))
	return append([]byte("ok:"), e.Data...)
}

func (r *recorder) snapshot() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.applied)
}

// testCluster is a group of nodes on a memNetwork, for use inside a
// synctest bubble.
type testCluster struct {
	t       *testing.T
	nw      *memNetwork
	voters  []uint64
	nodes   map[uint64]*Node
	sms     map[uint64]*recorder
	storage map[uint64]Storage
	tweak   func(*Config) // applied to every node's config; nil for none
}

const testTick = 10 * time.Millisecond

func newTestCluster(t *testing.T, size int) *testCluster {
	return newTestClusterWith(t, size, nil)
}

// newTestClusterWith starts a cluster whose configs tweak changes.
func newTestClusterWith(t *testing.T, size int, tweak func(*Config)) *testCluster {
	c := &testCluster{t: t, nw: newMemNetwork(), nodes: map[uint64]*Node{},
		sms: map[uint64]*recorder{}, storage: map[uint64]Storage{}, tweak: tweak}
	for id := uint64(1); id <= uint64(size); id++ {
		c.voters = append(c.voters, id)
		c.storage[id] = NewMemoryStorage()
	}
	for _, id := range c.voters {
		c.start(id)
	}
	t.Cleanup(c.stopAll)
	return c
}

func (c *testCluster) start(id uint64) {
	c.t.Helper()
	c.sms[id] = &recorder{}
	cfg := Config{
		Raft: raft.Config{ID: id, Voters: c.voters}, Storage: c.storage[id],
		Transport: c.nw.transport(id), StateMachine: c.sms[id],
		TickInterval: testTick,
	}
	if c.tweak != nil {
		c.tweak(&cfg)
	}
	n, err := Start(cfg)
	if err != nil {
		c.t.Fatalf("start node %d: %v", id, err)
	}
	c.nodes[id] = n
}

func (c *testCluster) stop(id uint64) {
	if err := c.nodes[id].Stop(); err != nil {
		c.t.Errorf("stop node %d: %v", id, err)
	}
	delete(c.nodes, id)
}

func (c *testCluster) stopAll() {
	for id := range c.nodes {
		c.stop(id)
	}
}

// waitLeader advances fake time tick by tick until exactly one running
// node leads, and returns it. It fails after limit of fake time.
func (c *testCluster) waitLeader(limit time.Duration) uint64 {
	c.t.Helper()
	for start := time.Now(); time.Since(start) <= limit; time.Sleep(testTick) {
		synctest.Wait()
		if id, ok := c.leader(); ok {
			return id
		}
	}
	c.t.Fatalf("no leader after %v of fake time", limit)
	return 0
}

func (c *testCluster) leader() (uint64, bool) {
	var leaders []uint64
	for id, n := range c.nodes {
		if n.Status().Role == raft.RoleLeader {
			leaders = append(leaders, id)
		}
	}
	if len(leaders) != 1 {
		return 0, false
	}
	return leaders[0], true
}

func TestElectionWaitsForTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newTestCluster(t, 3)
		start := time.Now()
		c.waitLeader(time.Second)
		// Ten ticks is the minimum election timeout: nobody may campaign
		// before it. The randomized timeout stays below twice it; a split
		// vote costs another timeout, so allow a few.
		if took := time.Since(start); took < 10*testTick || took > 4*20*testTick {
			t.Errorf("leader elected after %v, want between %v and %v", took, 10*testTick, 80*testTick)
		}
	})
}

func TestProposeReturnsResultAndReplicates(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newTestCluster(t, 3)
		lead := c.waitLeader(time.Second)
		for i := range 5 {
			cmd := "cmd" + strconv.Itoa(i)
			_, value, err := c.nodes[lead].Propose(t.Context(), []byte(cmd))
			if err != nil {
				t.Fatalf("propose %s: %v", cmd, err)
			}
			if got, want := string(value), "ok:"+cmd; got != want {
				t.Errorf("result = %q, want %q", got, want)
			}
		}
		time.Sleep(5 * testTick) // fake time: followers learn the commit index by heartbeat
		synctest.Wait()
		want := c.sms[lead].snapshot()
		if len(want) != 5 {
			t.Fatalf("leader applied %d commands, want 5: %v", len(want), want)
		}
		for id, sm := range c.sms {
			if got := sm.snapshot(); !slices.Equal(got, want) {
				t.Errorf("node %d applied %v, want %v", id, got, want)
			}
		}
	})
}

func TestProposeOnFollowerFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newTestCluster(t, 3)
		lead := c.waitLeader(time.Second)
		follower := lead%3 + 1
		_, _, err := c.nodes[follower].Propose(t.Context(), []byte("x"))
		if !errors.Is(err, raft.ErrNotLeader) {
			t.Errorf("propose on follower: err = %v, want raft.ErrNotLeader", err)
		}
	})
}

func TestCommitsWithOneNodeDown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newTestCluster(t, 3)
		lead := c.waitLeader(time.Second)
		c.stop(lead%3 + 1)
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		if _, _, err := c.nodes[lead].Propose(ctx, []byte("x")); err != nil {
			t.Fatalf("propose with one of three down: %v", err)
		}
	})
}

func TestLeaderFailover(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newTestCluster(t, 3)
		old := c.waitLeader(time.Second)
		if _, _, err := c.nodes[old].Propose(t.Context(), []byte("before")); err != nil {
			t.Fatalf("propose: %v", err)
		}
		c.stop(old)
		lead := c.waitLeader(time.Second)
		if lead == old {
			t.Fatalf("stopped node %d still leads", old)
		}
		if _, _, err := c.nodes[lead].Propose(t.Context(), []byte("after")); err != nil {
			t.Fatalf("propose after failover: %v", err)
		}
		applied := c.sms[lead].snapshot()
		if !slices.ContainsFunc(applied, func(s string) bool { return s[len(s)-6:] == "before" }) {
			t.Errorf("new leader applied %v, lost the committed command", applied)
		}
	})
}

func TestRestartReplaysIntoFreshStateMachine(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newTestCluster(t, 3)
		lead := c.waitLeader(time.Second)
		for i := range 3 {
			if _, _, err := c.nodes[lead].Propose(t.Context(), []byte{'a' + byte(i)}); err != nil {
				t.Fatalf("propose: %v", err)
			}
		}
		time.Sleep(5 * testTick)
		synctest.Wait()
		follower := lead%3 + 1
		before := c.sms[follower].snapshot()
		c.stop(follower)
		c.start(follower)
		time.Sleep(5 * testTick)
		synctest.Wait()
		if got := c.sms[follower].snapshot(); !slices.Equal(got, before) {
			t.Errorf("after restart applied %v, want exactly %v once each", got, before)
		}
	})
}

func TestProposeAfterStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newTestCluster(t, 1)
		lead := c.waitLeader(time.Second)
		n := c.nodes[lead]
		c.stop(lead)
		if _, _, err := n.Propose(t.Context(), []byte("x")); !errors.Is(err, ErrStopped) {
			t.Errorf("propose after stop: err = %v, want ErrStopped", err)
		}
	})
}

// failingStorage fails every Save after the first n.
type failingStorage struct {
	*MemoryStorage
	left int
}

var errDisk = errors.New("disk on fire")

func (s *failingStorage) Save(hs raft.HardState, entries []raft.Entry) error {
	if s.left == 0 {
		return errDisk
	}
	s.left--
	return s.MemoryStorage.Save(hs, entries)
}

func TestStorageFailureStopsNode(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := newMemNetwork()
		n, err := Start(Config{Raft: raft.Config{ID: 1, Voters: []uint64{1}},
			Storage:   &failingStorage{MemoryStorage: NewMemoryStorage()},
			Transport: nw.transport(1), StateMachine: &recorder{}, TickInterval: testTick})
		if err != nil {
			t.Fatal(err)
		}
		<-n.Done()
		if err := n.Stop(); !errors.Is(err, errDisk) {
			t.Errorf("Stop() = %v, want the storage error", err)
		}
	})
}

func TestBadConfig(t *testing.T) {
	good := Config{Raft: raft.Config{ID: 1, Voters: []uint64{1}}, Storage: NewMemoryStorage(),
		Transport: newMemNetwork().transport(1), StateMachine: &recorder{}}
	tests := []struct {
		name   string
		change func(*Config)
	}{
		{"zero id", func(c *Config) { c.Raft.ID = 0 }},
		{"no voters", func(c *Config) { c.Raft.Voters = nil }},
		{"no storage", func(c *Config) { c.Storage = nil }},
		{"no transport", func(c *Config) { c.Transport = nil }},
		{"no state machine", func(c *Config) { c.StateMachine = nil }},
		{"negative tick", func(c *Config) { c.TickInterval = -1 }},
		{"id not a voter", func(c *Config) { c.Raft.Voters = []uint64{2} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good
			tt.change(&cfg)
			n, err := Start(cfg)
			if err == nil {
				n.Stop()
				t.Fatal("Start succeeded, want an error")
			}
			if !errors.Is(err, ErrBadConfig) {
				t.Errorf("err = %v, want ErrBadConfig", err)
			}
		})
	}
}

// A leader cut off with proposals in flight steps down (check-quorum);
// its callers learn ErrLeadershipLost instead of waiting for an index the
// new leader's log may never reach.
func TestDeposedLeaderAnswersItsProposals(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newTestCluster(t, 3)
		old := c.waitLeader(time.Second)
		c.nw.isolate(old)
		errs := make(chan error, 3)
		for i := range 3 {
			go func() {
				_, _, err := c.nodes[old].Propose(context.Background(), fmt.Appendf(nil, "lost%d", i))
				errs <- err
			}()
		}
		time.Sleep(50 * testTick)
		synctest.Wait()
		if st := c.nodes[old].Status(); st.Role == raft.RoleLeader {
			t.Fatalf("isolated node %d still leads term %d", old, st.Term)
		}
		for range 3 {
			select {
			case err := <-errs:
				if !errors.Is(err, ErrLeadershipLost) {
					t.Errorf("proposal on the deposed leader: %v, want ErrLeadershipLost", err)
				}
			default:
				t.Fatal("a proposal on the deposed leader is still waiting")
			}
		}
	})
}

func TestPartitionedLeaderRejoinsAsFollower(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newTestCluster(t, 3)
		old := c.waitLeader(time.Second)
		c.nw.isolate(old)
		// Check-quorum deposes the cut-off leader while the other two
		// elect one of their own.
		time.Sleep(50 * testTick)
		synctest.Wait()
		if st := c.nodes[old].Status(); st.Role == raft.RoleLeader {
			t.Fatalf("isolated node %d still leads term %d", old, st.Term)
		}
		c.nw.heal()
		lead := c.waitLeader(time.Second)
		if lead == old {
			t.Fatalf("the once isolated node %d leads again; want one of the majority", old)
		}
		if _, _, err := c.nodes[lead].Propose(t.Context(), []byte("healed")); err != nil {
			t.Fatalf("propose after heal: %v", err)
		}
		time.Sleep(5 * testTick)
		synctest.Wait()
		if got, want := c.sms[old].snapshot(), c.sms[lead].snapshot(); !slices.Equal(got, want) {
			t.Errorf("rejoined node applied %v, want %v", got, want)
		}
	})
}
