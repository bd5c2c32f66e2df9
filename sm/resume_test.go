package sm

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/bifrost-go/bifrost/raft"
)

// mapLog is a hostLog over a host carrying testMap, whose changes are
// retained, and one client session.
type mapLog struct {
	*hostLog
	client, seq uint64
}

func newMapLog(t *testing.T, cfg HostConfig) *mapLog {
	h, err := NewHost(cfg, testMap.Machine())
	if err != nil {
		t.Fatal(err)
	}
	l := &mapLog{hostLog: &hostLog{t: t, h: h}}
	l.client = l.open(0)
	return l
}

func (l *mapLog) do(op byte, machine, fn uint64, payload []byte) parsedReply {
	l.t.Helper()
	l.seq++
	r := request{client: l.client, seq: l.seq, low: l.seq, machine: machine, fn: fn, payload: payload}
	return l.apply(op, 0, r.appendBinary(nil))
}

func (l *mapLog) insert(k, v string) {
	l.t.Helper()
	p, _ := testMap.insert.req.Append(nil, Pair[string, string]{k, v})
	if r := l.do(opCommand, testMap.insert.machineID, testMap.insert.functionID, p); r.status != stOK {
		l.t.Fatalf("insert %s: status %d", k, r.status)
	}
}

func (l *mapLog) remove(k string) {
	l.t.Helper()
	p, _ := testMap.remove.req.Append(nil, k)
	if r := l.do(opCommand, testMap.remove.machineID, testMap.remove.functionID, p); r.status != stOK {
		l.t.Fatalf("remove %s: status %d", k, r.status)
	}
}

// resume subscribes to f after the event after, and returns the answer.
func (l *mapLog) resume(f fn, after EventID) parsedReply {
	l.t.Helper()
	key, _ := testMap.changed.key.Append(nil, struct{}{})
	return l.do(opSubscribe, f.machineID, f.functionID, subscribePayload{key: key, resume: true, after: after}.appendBinary(nil))
}

// changes decodes the events of testMap.Changed.
func changes(t *testing.T, evs []event) []string {
	t.Helper()
	var out []string
	for _, e := range evs {
		c, err := testMap.changed.ev.Decode(e.payload)
		if err != nil {
			t.Fatal(err)
		}
		s := fmt.Sprintf("%d:%s=%s", e.id.Index, c.K, c.V)
		if c.Removed {
			s = fmt.Sprintf("%d:-%s(%s)", e.id.Index, c.K, c.V)
		}
		out = append(out, s)
	}
	return out
}

// A retained subscription's events are recorded with nobody listening,
// and a resumed registration gets exactly those after the id it names,
// before its own index, across a snapshot; resuming a subscription that
// is not retained, or after an event the log has not reached, is
// refused.
func TestResumeOnTheHost(t *testing.T) {
	l := newMapLog(t, HostConfig{RetainEvents: 100})
	l.insert("a", "1") // index 2
	l.insert("b", "2") // 3
	l.remove("a")      // 4
	l.insert("a", "3") // 5
	l.remove("none")   // 6: removes nothing, so no change
	r := l.resume(testMap.changed.fn, EventID{Index: 3, Sub: math.MaxUint64})
	if r.status != stOK {
		t.Fatalf("resume: status %d %s", r.status, r.data)
	}
	id := l.index
	_, evs := l.pollNow(id, EventID{}) // a poll naming less than the resume point gets no more
	want := fmt.Sprint([]string{"4:-a(1)", "5:a=3"})
	if got := fmt.Sprint(changes(t, evs)); got != want {
		t.Errorf("events after 3: %s, want %s", got, want)
	}
	snap, err := l.h.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	restored := newMapLog(t, HostConfig{RetainEvents: 100})
	if err := restored.h.Restore(raft.SnapshotMeta{Index: l.index, Term: 1}, snap); err != nil {
		t.Fatal(err)
	}
	if _, evs := restored.pollNow(id, EventID{}); fmt.Sprint(changes(t, evs)) != want {
		t.Errorf("events after 3, restored: %s, want %s", changes(t, evs), want)
	}

	for _, tt := range []struct {
		name  string
		f     fn
		after EventID
		want  string
	}{
		{"not retained", testMap.inserted.fn, EventID{Index: 2}, "not retained"},
		{"future", testMap.changed.fn, EventID{Index: 1 << 40}, "not in the log yet"},
	} {
		r := l.resume(tt.f, tt.after)
		if re, err := result(r); err == nil || !errors.As(err, new(*RemoteError)) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %q, %v; want a remote error about %q", tt.name, re, err, tt.want)
		}
	}
}

// A resume from an id the window dropped is told to resync, at the
// index of the poll.
func TestResumeFromCompactedID(t *testing.T) {
	l := newMapLog(t, HostConfig{RetainEvents: 4})
	for i := range 20 {
		l.insert("k", fmt.Sprint(i))
	}
	if r := l.resume(testMap.changed.fn, EventID{Index: 2}); r.status != stOK {
		t.Fatalf("resume: status %d", r.status)
	}
	if r, _ := l.pollNow(l.index, EventID{Index: 2}); r.status != stCompacted || r.index != l.index {
		t.Errorf("poll: status %d index %d, want compacted at %d", r.status, r.index, l.index)
	}
}

// Snapshots taken before registrations knew where they resume from
// still restore: each starts at its own index.
func TestDecodeSubscriptionsWithoutFrom(t *testing.T) {
	k := subKey{machine: 1 << 20, fn: 3, param: "p"}
	b := binary.AppendUvarint(nil, 1)
	b = appendKey(binary.AppendUvarint(binary.AppendUvarint(b, 7), 2), k)
	b = appendEventID(b, EventID{})
	b = binary.AppendUvarint(b, 0)
	d := decoder{b: b}
	s := decodeSubscriptions(&d, windowLimit{events: 10, bytes: DefaultRetainBytes}, false)
	if err := d.done(); err != nil {
		t.Fatal(err)
	}
	r := s.byID[7]
	if r == nil || r.client != 2 || r.key != k || r.from != (EventID{Index: 7}) {
		t.Errorf("registration %+v, want id 7 of client 2 from index 7", r)
	}
}

// The stream of every change of a Map resumes, through another client
// and members, after a leader change, from the last event a first
// subscriber saw: each change once, in log order, puts and removals.
func TestOpenAfterResumesAcrossClientsAndLeaders(t *testing.T) {
	g := newGroup(t, 3, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	w := g.client()
	first := g.client()
	st, err := testMap.Changed().Open(ctx, first, struct{}{})
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	write := func(i int) {
		k := fmt.Sprint("k", i%3)
		if i%4 == 3 {
			if _, had, err := testMap.Remove(ctx, w, k); err != nil {
				t.Fatal(err)
			} else if had {
				want = append(want, "-"+k)
			}
			return
		}
		if _, _, err := testMap.Insert(ctx, w, k, fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
		want = append(want, k+"="+fmt.Sprint(i))
	}
	for i := range 10 {
		write(i)
	}
	var got []string
	var last EventID
	read := func(st *Stream[MapChange[string, string]], n int) {
		for range n {
			ev, err := st.Next(ctx)
			if err != nil {
				t.Fatalf("after %v: %v", got, err)
			}
			if ev.ID.Compare(last) <= 0 {
				t.Fatalf("event %v after %v: out of order", ev.ID, last)
			}
			last = ev.ID
			if ev.Value.Removed {
				got = append(got, "-"+ev.Value.K)
			} else {
				got = append(got, ev.Value.K+"="+ev.Value.V)
			}
		}
	}
	read(st, 4)
	st.Close(ctx)

	lead := g.leader(ctx)
	g.stop(lead.id)
	for i := 10; i < 20; i++ {
		write(i)
	}
	var others []string
	for _, id := range g.ids {
		if id != lead.id {
			others = append(others, g.addrs[id])
		}
	}
	resumed, err := testMap.Changed().OpenAfter(ctx, g.client(others...), struct{}{}, last)
	if err != nil {
		t.Fatal(err)
	}
	defer resumed.Close(ctx)
	read(resumed, len(want)-len(got))
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("changes seen:\n%v\nwant:\n%v", got, want)
	}
}

// On real nodes, a resume from an id the window dropped gets the
// *CompactedError from its first Next.
func TestOpenAfterCompacted(t *testing.T) {
	g := newGroupWith(t, 3, HostConfig{RetainEvents: 4}, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	c := g.client()
	for i := range 20 {
		if _, _, err := testMap.Insert(ctx, c, "k", fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	st, err := testMap.Changed().OpenAfter(ctx, c, struct{}{}, EventID{Index: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close(ctx)
	var compacted *CompactedError
	if _, err := st.Next(ctx); !errors.As(err, &compacted) || compacted.Index == 0 {
		t.Errorf("first Next: %v, want a *CompactedError naming an index", err)
	}
}
