package sm

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/bifrost-go/bifrost/internal/leakcheck"
	"github.com/bifrost-go/bifrost/raft/node"
)

func TestMain(m *testing.M) { leakcheck.Main(m, "github.com/bifrost-go/bifrost/sm") }

// Typed commands and queries of the built-in machines, on real nodes.
func TestBuiltinsOnRealNodes(t *testing.T) {
	g := newGroup(t, 3, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	c := g.client()
	if old, err := testValue.Set(ctx, c, "a"); err != nil || old != "" {
		t.Fatalf("Set: %q, %v", old, err)
	}
	if old, err := testValue.Set(ctx, c, "b"); err != nil || old != "a" {
		t.Fatalf("second Set: %q, %v; want the old value a", old, err)
	}
	for _, mode := range []ReadMode{Linearizable, Lease, Follower} {
		if v, err := testValue.GetAs(ctx, c, mode); err != nil || v != "b" {
			t.Errorf("Get in mode %d: %q, %v; want b", mode, v, err)
		}
	}
	if v, err := testCounter.Add(ctx, c, 5); err != nil || v != 5 {
		t.Fatalf("Add: %d, %v", v, err)
	}
	if ok, err := testCounter.CompareAndSwap(ctx, c, 4, 9); err != nil || ok {
		t.Errorf("CompareAndSwap from a wrong value: %v, %v", ok, err)
	}
	if ok, err := testCounter.CompareAndSwap(ctx, c, 5, 9); err != nil || !ok {
		t.Errorf("CompareAndSwap: %v, %v", ok, err)
	}
	steps := []struct {
		name string
		do   func() (string, bool, error)
		want string
		ok   bool
	}{
		{"insert", func() (string, bool, error) { return testMap.Insert(ctx, c, "k", "1") }, "", false},
		{"insert again", func() (string, bool, error) { return testMap.Insert(ctx, c, "k", "2") }, "1", true},
		{"insert if absent", func() (string, bool, error) { return testMap.InsertIfAbsent(ctx, c, "k", "3") }, "2", false},
		{"insert if absent, absent", func() (string, bool, error) { return testMap.InsertIfAbsent(ctx, c, "j", "4") }, "4", true},
		{"get", func() (string, bool, error) { return testMap.Get(ctx, c, "k") }, "2", true},
		{"remove", func() (string, bool, error) { return testMap.Remove(ctx, c, "j") }, "4", true},
		{"get removed", func() (string, bool, error) { return testMap.Get(ctx, c, "j") }, "", false},
	}
	for _, s := range steps {
		v, ok, err := s.do()
		if err != nil || v != s.want || ok != s.ok {
			t.Errorf("%s: %q, %v, %v; want %q, %v", s.name, v, ok, err, s.want, s.ok)
		}
	}
	if ok, err := testMap.CompareAndSwap(ctx, c, "k", "2", "5"); err != nil || !ok {
		t.Errorf("map CompareAndSwap: %v, %v", ok, err)
	}
	if keys, err := testMap.Keys(ctx, c); err != nil || !slices.Equal(keys, []string{"k"}) {
		t.Errorf("Keys: %v, %v", keys, err)
	}
	if n, err := testMap.Len(ctx, c); err != nil || n != 1 {
		t.Errorf("Len: %d, %v", n, err)
	}
	g.sameState(ctx)
}

// A counter incremented N times by concurrent clients, whose replies are
// lost at the network and whose leader changes in the middle, reads N:
// every command applied exactly once.
func TestExactlyOnceUnderLostRepliesAndLeaderChange(t *testing.T) {
	g := newGroup(t, 3, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	const clients, adds = 6, 20
	var addrs []string
	for i, id := range g.ids {
		addrs = append(addrs, newLossyProxy(t, g.addrs[id], 0.25, uint64(i)).ln.Addr().String())
	}
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	started := make(chan struct{}, clients*adds)
	for i := range clients {
		c := g.client(addrs...)
		wg.Go(func() {
			for j := range adds {
				if _, err := testCounter.Add(ctx, c, 1); err != nil {
					errs <- fmt.Errorf("client %d add %d: %w", i, j, err)
					return
				}
				started <- struct{}{}
			}
		})
	}
	for range clients * adds / 2 {
		<-started
	}
	lead := g.leader(ctx)
	to := lead.id%3 + 1
	if err := lead.node.TransferLeadership(ctx, to); err != nil {
		t.Logf("transfer to %d: %v (the load goes on)", to, err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got, err := testCounter.Get(ctx, g.client()); err != nil || got != clients*adds {
		t.Errorf("counter %d, %v; want %d", got, err, clients*adds)
	}
	if st := g.members[to].node.Status(); st.TermChanges == 0 {
		t.Errorf("no leader change happened")
	}
	g.sameState(ctx)
}

// State, and sessions with it, survive snapshots and a restart of the
// whole group from its directories.
func TestStateSurvivesSnapshotsAndFullRestart(t *testing.T) {
	g := newGroup(t, 3, func(cfg *node.Config) { cfg.SnapshotEntries = 10 })
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	c := g.client()
	for i := range 40 {
		if _, _, err := testMap.Insert(ctx, c, fmt.Sprint("k", i), fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	lead := g.leader(ctx)
	if err := lead.node.WaitFor(ctx, func(st node.Status) bool { return st.Snapshot >= 20 }); err != nil {
		t.Fatalf("no snapshot: %v", err)
	}
	for _, id := range g.ids {
		g.stop(id)
	}
	for _, id := range g.ids {
		g.start(id, nil)
	}
	// The same client, its session restored from the snapshot and log.
	if _, _, err := testMap.Insert(ctx, c, "after", "restart"); err != nil {
		t.Fatalf("insert after restart: %v", err)
	}
	if n, err := testMap.Len(ctx, c); err != nil || n != 41 {
		t.Errorf("Len after restart: %d, %v; want 41", n, err)
	}
	if v, ok, err := testMap.Get(ctx, c, "k7"); err != nil || !ok || v != "7" {
		t.Errorf("k7 after restart: %q, %v, %v", v, ok, err)
	}
	g.sameState(ctx)
}

// A handler's error reaches the caller as a RemoteError; an unknown
// function is named as such.
func TestErrorsReachTheCaller(t *testing.T) {
	g := newGroup(t, 1, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	c := g.client()
	missing := NewCommand[string, string]("nowhere", "f")
	if _, err := missing.Do(ctx, c, "x"); !errors.Is(err, ErrNoFunction) {
		t.Errorf("unknown machine: %v, want ErrNoFunction", err)
	}
	var re *RemoteError
	if _, err := testMap.CompareAndSwap(ctx, c, "k", "a", "b"); err != nil {
		t.Errorf("swap of an absent key: %v", err)
	}
	bad := NewCommand[int, int]("map", "insert") // the wrong request type
	if _, err := bad.Do(ctx, c, 3); !errors.As(err, &re) {
		t.Errorf("undecodable request: %v, want a RemoteError", err)
	}
}
