package node

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bifrost-go/bifrost/raft"
)

// lastApplied returns the index of the last command sm applied.
func lastApplied(sm *recorder) uint64 {
	got := sm.snapshot()
	if len(got) == 0 {
		return 0
	}
	i, _ := strconv.ParseUint(strings.SplitN(got[len(got)-1], ":", 2)[0], 10, 64)
	return i
}

func TestReadIndexSeesCompletedWrites(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newTestCluster(t, 3)
		lead := c.waitLeader(time.Second)
		idx, _, err := c.nodes[lead].Propose(t.Context(), []byte("a"))
		if err != nil {
			t.Fatal(err)
		}
		for id, n := range c.nodes {
			got, err := n.ReadIndex(t.Context())
			if err != nil {
				t.Fatalf("ReadIndex on node %d: %v", id, err)
			}
			if got < idx {
				t.Errorf("node %d: read index %d, want at least the write's %d", id, got, idx)
			}
			// The read returns only once the node applied the write.
			if a := lastApplied(c.sms[id]); a < idx {
				t.Errorf("node %d returned from ReadIndex having applied %d < %d", id, a, idx)
			}
		}
	})
}

func TestConcurrentReadsShareRounds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newTestCluster(t, 3)
		lead := c.waitLeader(time.Second)
		synctest.Wait()
		before := c.nw.count(raft.MsgHeartbeat)
		// A slow network: the first read's round is out while the other
		// 49 arrive; they share the next round.
		c.nw.hold()
		var wg sync.WaitGroup
		errs := make(chan error, 50)
		for range 50 {
			wg.Go(func() {
				_, err := c.nodes[lead].ReadIndex(t.Context())
				errs <- err
			})
		}
		synctest.Wait()
		c.nw.release()
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("ReadIndex: %v", err)
			}
		}
		// One round if all 50 reached the driver before it sent one,
		// else the first read's round and one for the rest.
		if hb := c.nw.count(raft.MsgHeartbeat) - before; hb != 2 && hb != 2*2 {
			t.Errorf("50 concurrent reads sent %d heartbeats, want 1 or 2 rounds of 2", hb)
		}
	})
}

func TestReadIndexOnCutOffLeaderFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newTestCluster(t, 3)
		lead := c.waitLeader(time.Second)
		c.nw.isolate(lead)
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		_, err := c.nodes[lead].ReadIndex(ctx)
		if !errors.Is(err, raft.ErrNotLeader) && !errors.Is(err, ErrReadTimeout) {
			t.Errorf("ReadIndex on a cut-off leader: %v, want ErrNotLeader or ErrReadTimeout", err)
		}
	})
}

func TestReadIndexWithoutLeaderFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newTestCluster(t, 3)
		_, err := c.nodes[1].ReadIndex(t.Context()) // before any election
		if !errors.Is(err, raft.ErrNotLeader) {
			t.Errorf("ReadIndex with no leader: %v, want raft.ErrNotLeader", err)
		}
	})
}

func TestLeaseReadNeedsNoRound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newTestClusterWith(t, 3, func(cfg *Config) { cfg.Raft.LeaseReads = true })
		lead := c.waitLeader(time.Second)
		idx, _, err := c.nodes[lead].Propose(t.Context(), []byte("a"))
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * testTick) // heartbeats answered: the lease holds
		synctest.Wait()
		before := c.nw.count(raft.MsgHeartbeat)
		got, err := c.nodes[lead].LeaseRead(t.Context())
		if err != nil || got < idx {
			t.Fatalf("LeaseRead = %d, %v; want at least %d", got, err, idx)
		}
		if hb := c.nw.count(raft.MsgHeartbeat) - before; hb != 0 {
			t.Errorf("lease read sent %d heartbeats, want none", hb)
		}
		before = c.nw.count(raft.MsgHeartbeat)
		if _, err := c.nodes[lead].ReadIndex(t.Context()); err != nil {
			t.Fatal(err)
		}
		if hb := c.nw.count(raft.MsgHeartbeat) - before; hb != 2 {
			t.Errorf("ReadIndex sent %d heartbeats, want a round of 2", hb)
		}
		// A follower has no lease: it asks the leader.
		if got, err := c.nodes[lead%3+1].LeaseRead(t.Context()); err != nil || got < idx {
			t.Errorf("LeaseRead on a follower = %d, %v; want at least %d", got, err, idx)
		}
	})
}

func TestFollowerRead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newTestCluster(t, 3)
		lead := c.waitLeader(time.Second)
		var idx uint64
		for i := range 3 {
			var err error
			if idx, _, err = c.nodes[lead].Propose(t.Context(), []byte{'a' + byte(i)}); err != nil {
				t.Fatal(err)
			}
		}
		follower := lead%3 + 1
		time.Sleep(3 * testTick) // the follower learns the commit index
		synctest.Wait()
		var seen uint64
		applied, err := c.nodes[follower].FollowerRead(t.Context(), idx, func(applied uint64) {
			seen = lastApplied(c.sms[follower]) // the state machine is exactly at applied
			if seen != applied {
				t.Errorf("read ran with the state machine at %d, told %d", seen, applied)
			}
		})
		if err != nil || applied < idx || seen != applied {
			t.Errorf("FollowerRead(%d) = %d, %v (read saw %d)", idx, applied, err, seen)
		}
		called := false
		got, err := c.nodes[follower].FollowerRead(t.Context(), idx+100, func(uint64) { called = true })
		if !errors.Is(err, ErrBehind) || called || got != applied {
			t.Errorf("FollowerRead ahead of the log = %d, %v (read called %v); want %d, ErrBehind, not called", got, err, called, applied)
		}
	})
}

func TestTransferLeadershipDriver(t *testing.T) {
	for _, to := range []uint64{0, 1, 2, 3} {
		t.Run("to="+strconv.FormatUint(to, 10), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := newTestCluster(t, 3)
				lead := c.waitLeader(time.Second)
				if _, _, err := c.nodes[lead].Propose(t.Context(), []byte("a")); err != nil {
					t.Fatal(err)
				}
				if err := c.nodes[lead].TransferLeadership(t.Context(), to); err != nil {
					t.Fatalf("TransferLeadership(%d) from %d: %v", to, lead, err)
				}
				want := to
				switch to {
				case 0:
					want = 0 // any follower
				case lead:
					want = lead
				}
				synctest.Wait()
				got, ok := c.leader()
				if !ok || got == 0 || (want != 0 && got != want) || (want == 0 && got == lead) {
					t.Fatalf("leader after transfer from %d to %d: %d (ok %v)", lead, to, got, ok)
				}
				if _, _, err := c.nodes[got].Propose(t.Context(), []byte("b")); err != nil {
					t.Errorf("propose on the new leader: %v", err)
				}
			})
		})
	}
}

func TestTransferToUnreachableNodeFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newTestCluster(t, 3)
		lead := c.waitLeader(time.Second)
		to := lead%3 + 1
		c.nw.isolate(to)
		done := make(chan error, 1)
		start := time.Now()
		go func() { done <- c.nodes[lead].TransferLeadership(t.Context(), to) }()
		synctest.Wait()
		if _, _, err := c.nodes[lead].Propose(t.Context(), []byte("x")); !errors.Is(err, raft.ErrTransferring) {
			t.Errorf("Propose during the transfer: %v, want raft.ErrTransferring", err)
		}
		if err := <-done; !errors.Is(err, ErrTransferFailed) {
			t.Fatalf("TransferLeadership to a cut-off node: %v, want ErrTransferFailed", err)
		}
		if took := time.Since(start); took > 2*10*testTick {
			t.Errorf("gave up after %v, want about one election timeout", took)
		}
		if _, _, err := c.nodes[lead].Propose(t.Context(), []byte("y")); err != nil {
			t.Errorf("Propose after the abandoned transfer: %v", err)
		}
	})
}

func TestTransferOnFollowerFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newTestCluster(t, 3)
		lead := c.waitLeader(time.Second)
		if err := c.nodes[lead%3+1].TransferLeadership(t.Context(), lead); !errors.Is(err, raft.ErrNotLeader) {
			t.Errorf("TransferLeadership on a follower: %v, want raft.ErrNotLeader", err)
		}
	})
}
