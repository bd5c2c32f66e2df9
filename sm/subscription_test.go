package sm

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/bifrost-go/bifrost/raft"
)

// Every subscriber sees every change of its key, in order, each once,
// while the leader is moved a hundred times under the writes: two
// streams share one client's poll, a third has a client of its own.
func TestSubscribersSeeEveryEventAcrossLeaderChanges(t *testing.T) {
	g := newGroup(t, 3, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	const transfers = 100
	sub, alone := g.client(), g.client()
	// Open returns once the subscriptions are registered on the group.
	one, err := testMap.keyInserted.Open(ctx, sub, "k")
	if err != nil {
		t.Fatal(err)
	}
	all, err := testMap.inserted.Open(ctx, sub, struct{}{})
	if err != nil {
		t.Fatal(err)
	}
	third, err := testMap.keyInserted.Open(ctx, alone, "k")
	if err != nil {
		t.Fatal(err)
	}
	type count struct {
		n   int
		err error
	}
	results := make(chan count, 3)
	read := func(next func() (string, error)) {
		n, err := expectValues(next)
		results <- count{n, err}
	}
	go read(func() (string, error) { ev, err := one.Next(ctx); return ev.Value, err })
	go read(func() (string, error) {
		for {
			ev, err := all.Next(ctx)
			if err != nil || ev.Value.K == "k" {
				return ev.Value.V, err
			}
		}
	})
	go read(func() (string, error) { ev, err := third.Next(ctx); return ev.Value, err })
	w := g.client()
	writes, moved := 0, 0
	firstTerm := g.leader(ctx).node.Status().Term
	for moved < transfers {
		for range 3 {
			if _, _, err := testMap.Insert(ctx, w, "k", fmt.Sprint(writes)); err != nil {
				t.Fatalf("write %d: %v", writes, err)
			}
			if _, _, err := testMap.Insert(ctx, w, "other", fmt.Sprint(writes)); err != nil {
				t.Fatalf("write %d: %v", writes, err)
			}
			writes++
		}
		lead := g.leader(ctx)
		if err := lead.node.TransferLeadership(ctx, lead.id%3+1); err == nil {
			moved++
		} else if ctx.Err() != nil {
			t.Fatalf("after %d transfers: %v", moved, err)
		}
	}
	if _, _, err := testMap.Insert(ctx, w, "k", "end"); err != nil {
		t.Fatal(err)
	}
	if terms := g.leader(ctx).node.Status().Term - firstTerm; terms < transfers {
		t.Errorf("%d terms passed in %d transfers: leaders did not change each time", terms, transfers)
	}
	for range 3 {
		if r := <-results; r.err != nil || r.n != writes {
			t.Errorf("a subscriber saw %d of %d events: %v", r.n, writes, r.err)
		}
	}
}

// expectValues reads values with next until "end" and checks they are
// "0", "1", ... in order: none lost, duplicated or reordered. It returns
// how many came before "end".
func expectValues(next func() (string, error)) (int, error) {
	for i := 0; ; i++ {
		v, err := next()
		if err != nil {
			return i, fmt.Errorf("event %d: %w", i, err)
		}
		if v == "end" {
			return i, nil
		}
		if v != fmt.Sprint(i) {
			return i, fmt.Errorf("event %d is %q, want %q: lost, duplicated or reordered", i, v, fmt.Sprint(i))
		}
	}
}

// subscriptionCount is how many subscriptions the host holds.
func (h *Host) subscriptionCount() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.subs.byID)
}

// pollNow is a poll on the host, without waiting.
func (l *hostLog) pollNow(id uint64, after EventID) (parsedReply, []event) {
	l.t.Helper()
	a, _ := l.h.events([]pollSub{{id: id, after: after}}, 100)
	if a == nil {
		return parsedReply{status: stOK}, nil
	}
	r, err := parseReply(a)
	if err != nil || r.status != stOK {
		l.t.Fatalf("poll: status %d, %v", r.status, err)
	}
	res, err := decodePollAnswer(r.data)
	if err != nil || len(res) != 1 {
		l.t.Fatalf("poll answer: %d subscriptions, %v", len(res), err)
	}
	r.status = res[0].status
	return r, res[0].events
}

func (l *hostLog) subscribe(at time.Duration, client, seq uint64) uint64 {
	l.t.Helper()
	ch := testCounter.changed
	r := request{client: client, seq: seq, low: seq, machine: ch.machineID, fn: ch.functionID,
		payload: subscribePayload{}.appendBinary(nil)}
	rep := l.apply(opSubscribe, at, r.appendBinary(nil))
	if rep.status != stOK {
		l.t.Fatalf("subscribe: status %d", rep.status)
	}
	return l.index
}

// A subscriber that falls behind the window is told where to resync; a
// subscription survives a snapshot; an expired session takes its
// subscriptions along.
func TestSubscriptionWindowSnapshotAndExpiry(t *testing.T) {
	l := newHostLog(t, HostConfig{RetainEvents: 5, SessionTimeout: time.Second})
	c := l.open(0)
	sub := l.subscribe(0, c, 1)
	for i := range 3 {
		l.add(time.Duration(i), c, uint64(i+2), uint64(i+2), 1)
	}
	if _, evs := l.pollNow(sub, EventID{}); len(evs) != 3 {
		t.Fatalf("%d events, want 3", len(evs))
	}
	for i := range 10 {
		l.add(time.Duration(i), c, uint64(i+5), uint64(i+5), 1)
	}
	r, _ := l.pollNow(sub, EventID{})
	if r.status != stCompacted || r.index != l.index {
		t.Errorf("poll from the start past the window: status %d index %d, want compacted at %d", r.status, r.index, l.index)
	}
	snap, err := l.h.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	restored := newHostLog(t, HostConfig{RetainEvents: 5, SessionTimeout: time.Second})
	if err := restored.h.Restore(raft.SnapshotMeta{Index: l.index, Term: 1}, snap); err != nil {
		t.Fatal(err)
	}
	restored.index = l.index
	_, before := l.pollNow(sub, EventID{Index: l.index - 2})
	_, after := restored.pollNow(sub, EventID{Index: l.index - 2})
	if len(before) != 2 || len(after) != 2 {
		t.Errorf("events after a restore: %d, before %d; want 2", len(after), len(before))
	}
	other := restored.open(5 * time.Second) // the subscriber's session expires
	restored.add(5*time.Second, other, 1, 1, 1)
	if r, _ := restored.pollNow(sub, EventID{}); r.status != stNoSubscription {
		t.Errorf("poll after the session expired: status %d, want no subscription", r.status)
	}
	if n := restored.h.subscriptionCount(); n != 0 {
		t.Errorf("%d subscriptions left after expiry", n)
	}
}

func TestCompactedErrorIs(t *testing.T) {
	var err error = &CompactedError{Index: 4}
	if !errors.Is(err, ErrCompacted) {
		t.Errorf("%v is not ErrCompacted", err)
	}
}

func FuzzDecodePollAnswer(f *testing.F) {
	f.Add(appendPollAnswer(nil, []subEvents{{status: stOK, events: []event{{id: EventID{3, 1}, payload: []byte("x")}}},
		{status: stCompacted}, {status: stNoSubscription}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		res, err := decodePollAnswer(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		// Varints have longer forms than the shortest: compare values.
		again, err := decodePollAnswer(appendPollAnswer(nil, res))
		if err != nil || !reflect.DeepEqual(again, res) {
			t.Fatalf("%x decodes to %v, which does not survive encoding: %v, %v", b, res, again, err)
		}
	})
}

// The leader decodes what any client sends in a poll or a subscribe.
func FuzzDecodePollAndSubscribe(f *testing.F) {
	f.Add(appendPoll(nil, []pollSub{{id: 7, after: EventID{9, 2}}}))
	f.Add(subscribePayload{key: []byte("k"), queryMachine: 1 << 20, queryFn: 3, query: []byte("q")}.appendBinary(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		if subs, err := decodePoll(b); err == nil {
			if again, err := decodePoll(appendPoll(nil, subs)); err != nil || !reflect.DeepEqual(again, subs) {
				t.Fatalf("%x decodes to %v, which does not survive encoding: %v, %v", b, subs, again, err)
			}
		} else if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("poll: error %v does not wrap ErrCorrupt", err)
		}
		if _, err := decodeSubscribe(b); err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("subscribe: error %v does not wrap ErrCorrupt", err)
		}
	})
}
