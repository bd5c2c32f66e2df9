package sm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/bifrost-go/bifrost/raft"
	"github.com/bifrost-go/bifrost/raft/node"
	"github.com/bifrost-go/bifrost/rpc"
)

// ReadAndOpen reads the state at exactly the index where its stream
// starts: under a writer that never pauses, the first change the stream
// yields replaces the very value the read returned.
func TestReadAndOpenStartsWhereTheReadEnds(t *testing.T) {
	g := newGroup(t, 3, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	w, r := g.client(), g.client()
	if _, err := testValue.Set(ctx, w, "0"); err != nil {
		t.Fatal(err)
	}
	writing, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 1; writing.Err() == nil; i++ {
			if _, err := testValue.Set(writing, w, fmt.Sprint(i)); err != nil && writing.Err() == nil {
				t.Errorf("set %d: %v", i, err)
				return
			}
		}
	})
	defer wg.Wait()
	defer stop()
	for round := range 5 {
		v, st, err := testValue.ReadAndOpen(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			ev, err := st.Next(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if ev.Value.Old != v {
				t.Fatalf("round %d, change %d: from %q, but the value was %q: a change was lost or seen twice", round, i, ev.Value.Old, v)
			}
			v = ev.Value.New
		}
		st.Close(ctx)
	}
}

// A subscriber that dies (it neither polls nor renews its session) is
// expired by a replicated command: every replica drops its subscription
// and the leader stops recording events for it.
func TestDeadSubscriberExpires(t *testing.T) {
	const timeout = time.Second
	g := newGroupWith(t, 3, HostConfig{SessionTimeout: timeout}, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	// The doomed client's connections all go through its own pool:
	// closing that is its process dying.
	pool, err := rpc.NewPool(rpc.ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	doomed, err := NewClient(ClientConfig{Group: "g", Servers: g.serverAddrs(), Pool: pool})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		// Its session cannot be closed: stop its streams and give up.
		gone, cancel := context.WithCancel(ctx)
		cancel()
		doomed.Close(gone)
	}()
	w := g.client()
	st, err := testMap.keyInserted.Open(ctx, doomed, "k")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := testMap.Insert(ctx, w, "k", "seen"); err != nil {
		t.Fatal(err)
	}
	if ev, err := st.Next(ctx); err != nil || ev.Value != "seen" {
		t.Fatalf("first event: %v, %v", ev, err)
	}
	pool.Close()
	// Writes go on: the log's time passes the dead client's timeout.
	for i := 0; !g.allHold(func(m *member) bool { return m.host.subscriptionCount() == 0 }); i++ {
		if ctx.Err() != nil {
			t.Fatal("the dead subscriber's subscription is still held")
		}
		if _, _, err := testMap.Insert(ctx, w, "k", fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	lead := g.leader(ctx)
	before := lead.host.retained()
	if _, _, err := testMap.Insert(ctx, w, "k", "unheard"); err != nil {
		t.Fatal(err)
	}
	if after := lead.host.retained(); after != before {
		t.Errorf("the leader recorded an event nobody listens to: %d events, then %d", before, after)
	}
}

// allHold reports whether f holds on every member.
func (g *group) allHold(f func(*member) bool) bool {
	for _, m := range g.members {
		if !f(m) {
			return false
		}
	}
	return true
}

// retained is how many events the host's window holds for listeners:
// those of retained subscriptions (Retain) are left out.
func (h *Host) retained() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	n := 0
	for _, e := range h.subs.events {
		if !h.retains(e.key) { // a retained subscription's are kept unheard, by design
			n++
		}
	}
	return n
}

// A client that only listens renews its session, so its subscription
// outlives many session timeouts of the log's time.
func TestListeningClientKeepsItsSession(t *testing.T) {
	const timeout = 400 * time.Millisecond
	g := newGroupWith(t, 3, HostConfig{SessionTimeout: timeout}, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	listener, w := g.client(), g.client()
	st, err := testMap.keyInserted.Open(ctx, listener, "k")
	if err != nil {
		t.Fatal(err)
	}
	lead := g.leader(ctx)
	start := lead.host.logTime()
	for i := 0; lead.host.logTime().Sub(start) < 5*timeout; i++ {
		v := fmt.Sprint(i)
		if _, _, err := testMap.Insert(ctx, w, "k", v); err != nil {
			t.Fatal(err)
		}
		if ev, err := st.Next(ctx); err != nil || ev.Value != v {
			t.Fatalf("event %d: %q, %v", i, ev.Value, err)
		}
		if lead.node.Status().Role != raft.RoleLeader {
			lead = g.leader(ctx)
		}
	}
}

// logTime is the leader time the host has applied.
func (h *Host) logTime() time.Time {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return time.Unix(0, h.clock)
}

// A stream whose reader stalls falls behind alone: another stream of
// the same client, sharing its poll, goes on.
func TestStalledStreamHoldsBackOnlyItself(t *testing.T) {
	g := newGroup(t, 3, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	c := g.client()
	stalled, err := testMap.keyInserted.Open(ctx, c, "k")
	if err != nil {
		t.Fatal(err)
	}
	live, err := testMap.keyInserted.Open(ctx, c, "k")
	if err != nil {
		t.Fatal(err)
	}
	const n = 2*maxQueued + 100 // past the stalled stream's queue
	const writers = 8
	var wg sync.WaitGroup
	for i := range writers {
		w := g.client()
		wg.Go(func() {
			for j := i; j < n; j += writers {
				if _, _, err := testMap.Insert(ctx, w, "k", fmt.Sprint(j)); err != nil {
					t.Errorf("insert %d: %v", j, err)
					return
				}
			}
		})
	}
	for i := range n {
		if _, err := live.Next(ctx); err != nil {
			t.Fatalf("live stream, event %d: %v", i, err)
		}
	}
	wg.Wait()
	// The stalled stream lost nothing either: it resumes where it stopped.
	for i := range n {
		if _, err := stalled.Next(ctx); err != nil {
			t.Fatalf("stalled stream, event %d: %v", i, err)
		}
	}
}

// A stream open across snapshots and a restart of the whole group goes
// on where it was: its registration and the window come back from the
// snapshot and the log.
func TestStreamSurvivesSnapshotsAndFullRestart(t *testing.T) {
	g := newGroup(t, 3, func(cfg *node.Config) { cfg.SnapshotEntries = 10 })
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	c, w := g.client(), g.client()
	st, err := testMap.keyInserted.Open(ctx, c, "k")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		n, err := expectValues(func() (string, error) { ev, err := st.Next(ctx); return ev.Value, err })
		if err == nil && n != 60 {
			err = fmt.Errorf("%d events, want 60", n)
		}
		done <- err
	}()
	insert := func(from, to int) {
		for i := from; i < to; i++ {
			if _, _, err := testMap.Insert(ctx, w, "k", fmt.Sprint(i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	insert(0, 30)
	if err := g.leader(ctx).node.WaitFor(ctx, func(st node.Status) bool { return st.Snapshot >= 20 }); err != nil {
		t.Fatalf("no snapshot: %v", err)
	}
	for _, id := range g.ids {
		g.stop(id)
	}
	for _, id := range g.ids {
		g.start(id, nil)
	}
	insert(30, 60)
	if _, _, err := testMap.Insert(ctx, w, "k", "end"); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Error(err)
	}
	g.sameState(ctx)
}

// Leading is bound on the leader's applies only; Submit runs a command
// outside sessions from the leader and is refused elsewhere.
func TestLeadingAndSubmit(t *testing.T) {
	g := newGroup(t, 3, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	lead := g.leader(ctx)
	for _, m := range g.members {
		if m != lead {
			if _, err := Submit(ctx, m.sm, probeCmd, struct{}{}); !errors.Is(err, ErrNotLeader) {
				t.Errorf("Submit on follower %d: %v, want ErrNotLeader", m.id, err)
			}
		}
	}
	const n = 5
	for range n {
		if _, err := Submit(ctx, lead.sm, probeCmd, struct{}{}); err != nil {
			t.Fatalf("Submit on the leader: %v", err)
		}
	}
	g.sameState(ctx) // every member applied them
	for _, m := range g.members {
		wantLeading, wantFollowing := int64(0), int64(n)
		if m == lead {
			wantLeading, wantFollowing = n, 0
		}
		if l, f := m.probe.leading.Load(), m.probe.following.Load(); l != wantLeading || f != wantFollowing {
			t.Errorf("member %d applied %d leading and %d following, want %d and %d", m.id, l, f, wantLeading, wantFollowing)
		}
	}
}

// A member that accepts connections but never answers (hung, or behind
// a partition that drops packets) costs a client one attempt timeout per
// call at most, never the call.
func TestClientLeavesASilentMember(t *testing.T) {
	g := newGroup(t, 3, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer silent.Close()
	wg.Go(func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { io.Copy(io.Discard, c) }) // ends when the client closes
		}
	})
	pool, err := rpc.NewPool(rpc.ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	c, err := NewClient(ClientConfig{Group: "g", Servers: append([]string{silent.Addr().String()}, g.serverAddrs()...),
		Pool: pool, AttemptTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	for i := range 3 {
		if _, err := testCounter.Add(ctx, c, 1); err != nil {
			t.Fatalf("add %d with two healthy members of three: %v", i, err)
		}
		if _, err := testCounter.GetAs(ctx, c, Follower); err != nil {
			t.Fatalf("follower read %d: %v", i, err)
		}
	}
}

// A stream that falls behind the window gets the compacted signal on real
// nodes, and resyncs: reading the state and opening a new stream in one
// step picks up exactly where the state read ends.
func TestCompactedStreamResyncs(t *testing.T) {
	g := newGroupWith(t, 3, HostConfig{RetainEvents: 8}, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	c, w := g.client(), g.client()
	st, err := testValue.Changed().Open(ctx, c, struct{}{})
	if err != nil {
		t.Fatal(err)
	}
	// Nobody reads the stream: its client queues what it can hold and
	// stops asking, while the window moves on past it.
	const n = maxQueued + 100
	const writers = 8
	var wg sync.WaitGroup
	for i := range writers {
		wc := g.client()
		wg.Go(func() {
			for j := i; j < n; j += writers {
				if _, err := testValue.Set(ctx, wc, fmt.Sprint(j)); err != nil {
					t.Errorf("set %d: %v", j, err)
					return
				}
			}
		})
	}
	wg.Wait()
	var compacted *CompactedError
	for i := 0; ; i++ {
		_, err := st.Next(ctx)
		if errors.As(err, &compacted) {
			break
		}
		if err != nil || i > n {
			t.Fatalf("after %d events, no compacted signal: %v", i, err)
		}
	}
	st.Close(ctx)
	if compacted.Index == 0 {
		t.Fatal("the compacted signal names no index")
	}
	v, fresh, err := testValue.ReadAndOpen(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close(ctx)
	if fresh.Index() < compacted.Index {
		t.Errorf("resynced at index %d, before the signal's %d", fresh.Index(), compacted.Index)
	}
	if _, err := testValue.Set(ctx, w, "after"); err != nil {
		t.Fatal(err)
	}
	ev, err := fresh.Next(ctx)
	if err != nil || ev.Value.Old != v || ev.Value.New != "after" {
		t.Errorf("first event after the resync: %+v, %v; want %q -> after", ev.Value, err, v)
	}
}
