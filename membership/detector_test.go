package membership

import (
	"slices"
	"testing"
	"time"
)

// The detector's clock is the one the tests pass in: t0 plus offsets.
var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

const (
	testTimeout = 3 * time.Second
	testGrace   = 4 * time.Second
)

func leading(members ...Member) *detector {
	d := newDetector(testTimeout, testGrace)
	d.Lead(t0, members)
	return d
}

func on(id MemberID, inc uint64) Member  { return Member{ID: id, Incarnation: inc, Online: true} }
func off(id MemberID, inc uint64) Member { return Member{ID: id, Incarnation: inc} }

func TestDetectorAnswersHeartbeats(t *testing.T) {
	cases := []struct {
		name    string
		d       func() *detector
		hb      heartbeat
		want    byte
		wakeful bool
	}{
		{"not leading", func() *detector { return newDetector(testTimeout, testGrace) }, heartbeat{1, 1}, hbNotReady, false},
		{"never joined", func() *detector { return leading(on(1, 1)) }, heartbeat{2, 1}, hbUnknown, false},
		{"replaced incarnation", func() *detector { return leading(on(1, 2)) }, heartbeat{1, 1}, hbStale, false},
		{"incarnation not applied yet", func() *detector { return leading(on(1, 2)) }, heartbeat{1, 3}, hbNotReady, false},
		{"online", func() *detector { return leading(on(1, 1)) }, heartbeat{1, 1}, hbOK, false},
		{"offline: comes back", func() *detector { return leading(off(1, 1)) }, heartbeat{1, 1}, hbOK, true},
		{"after Follow", func() *detector { d := leading(on(1, 1)); d.Follow(); return d }, heartbeat{1, 1}, hbNotReady, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, wake := tc.d().Heartbeat(tc.hb.ID, tc.hb.Incarnation, at(time.Second))
			if got != tc.want || wake != tc.wakeful {
				t.Errorf("status %d, wake %v; want %d, %v", got, wake, tc.want, tc.wakeful)
			}
		})
	}
}

// A member heartbeating keeps its place; one that stops goes offline at
// its last heartbeat plus the timeout, asked for once until settled.
func TestDetectorExpiresTheSilentOnce(t *testing.T) {
	d := leading(on(1, 1), on(2, 1))
	for s := time.Duration(0); s <= 10*time.Second; s += 500 * time.Millisecond {
		d.Heartbeat(1, 1, at(s))
		if s <= 2*time.Second {
			d.Heartbeat(2, 1, at(s))
		}
		if ts := d.Tick(at(s)); len(ts) != 0 {
			t.Fatalf("at %v: %v, before anyone expired", s, ts)
		}
		if s == 4500*time.Millisecond {
			break
		}
	}
	// 2 last heard at 2s: due at 5s.
	if ts := d.Tick(at(5 * time.Second)); !slices.Equal(ts, []Transition{{ID: 2, Incarnation: 1}}) {
		t.Fatalf("at 5s: %v, want 2 offline", ts)
	}
	if ts := d.Tick(at(6 * time.Second)); len(ts) != 0 {
		t.Fatalf("asked again while pending: %v", ts)
	}
	d.Settle([]Transition{{ID: 2, Incarnation: 1}}) // failed: ask again
	if ts := d.Tick(at(6 * time.Second)); len(ts) != 1 {
		t.Fatalf("after a failed proposal: %v, want it again", ts)
	}
	d.Observe(Event{Kind: Offline, Member: off(2, 1)}, at(6*time.Second))
	d.Settle([]Transition{{ID: 2, Incarnation: 1}})
	if ts := d.Tick(at(7 * time.Second)); len(ts) != 0 {
		t.Fatalf("once offline: %v", ts)
	}
	d.Heartbeat(1, 1, at(8*time.Second))
	// Its next heartbeat brings it back, once.
	if st, wake := d.Heartbeat(2, 1, at(8*time.Second)); st != hbOK || !wake {
		t.Fatalf("heartbeat of the offline member: %d, %v", st, wake)
	}
	if ts := d.Tick(at(8 * time.Second)); !slices.Equal(ts, []Transition{{ID: 2, Incarnation: 1, Online: true}}) {
		t.Fatalf("back: %v, want 2 online", ts)
	}
	if ts := d.Tick(at(8100 * time.Millisecond)); len(ts) != 0 {
		t.Fatalf("online asked twice: %v", ts)
	}
	d.Observe(Event{Kind: Online, Member: on(2, 1)}, at(8100*time.Millisecond))
	d.Settle([]Transition{{ID: 2, Incarnation: 1, Online: true}})
	d.Heartbeat(1, 1, at(11*time.Second))
	if ts := d.Tick(at(11 * time.Second)); len(ts) != 0 {
		t.Fatalf("deadline restarts when it comes back: %v", ts)
	}
}

// A heartbeat that raced with the offline proposal does not count: the
// member comes back with the next one.
func TestDetectorHeartbeatBeforeOfflineApplied(t *testing.T) {
	d := leading(on(1, 1))
	if ts := d.Tick(at(testGrace)); len(ts) != 1 {
		t.Fatalf("%v", ts)
	}
	d.Heartbeat(1, 1, at(testGrace+time.Millisecond))
	d.Observe(Event{Kind: Offline, Member: off(1, 1)}, at(testGrace+2*time.Millisecond))
	d.Settle([]Transition{{ID: 1, Incarnation: 1}})
	if ts := d.Tick(at(testGrace + 3*time.Millisecond)); len(ts) != 0 {
		t.Fatalf("online from a heartbeat older than the offline: %v", ts)
	}
	d.Heartbeat(1, 1, at(testGrace+500*time.Millisecond))
	if ts := d.Tick(at(testGrace + 500*time.Millisecond)); len(ts) != 1 || !ts[0].Online {
		t.Fatalf("the next heartbeat: %v, want online", ts)
	}
}

// A new leader, and a leader that resumes from a pause, give every online
// member the grace before they can expire.
func TestDetectorGrace(t *testing.T) {
	d := leading(on(1, 1), off(2, 1))
	if ts := d.Tick(at(testGrace - time.Millisecond)); len(ts) != 0 {
		t.Fatalf("within the grace: %v", ts)
	}
	if ts := d.Tick(at(testGrace)); !slices.Equal(ts, []Transition{{ID: 1, Incarnation: 1}}) {
		t.Fatalf("after the grace: %v, want 1 offline and 2 left alone", ts)
	}

	d = leading(on(1, 1))
	d.Heartbeat(1, 1, at(time.Second))
	// Paused from 1s to 30s: the deadline (4s) passed while nothing ran.
	d.Resume(at(30 * time.Second))
	if ts := d.Tick(at(30*time.Second + testGrace - time.Millisecond)); len(ts) != 0 {
		t.Fatalf("within the grace after the pause: %v", ts)
	}
	d.Heartbeat(1, 1, at(31*time.Second))
	if ts := d.Tick(at(33 * time.Second)); len(ts) != 0 {
		t.Fatalf("heartbeating after the pause: %v", ts)
	}
	// Resume never shortens a deadline.
	d.Heartbeat(1, 1, at(40*time.Second))
	d.Resume(at(38 * time.Second))
	if ts := d.Tick(at(42900 * time.Millisecond)); len(ts) != 0 {
		t.Fatalf("resume shortened the deadline: %v", ts)
	}
}

// Joins, restarts and leaves applied while leading are followed.
func TestDetectorObservesChanges(t *testing.T) {
	d := leading()
	d.Observe(Event{Kind: Joined, Member: on(5, 1)}, at(time.Second))
	d.Observe(Event{Kind: Joined, Group: "g", Member: on(6, 1)}, at(time.Second)) // a group's: ignored
	if st, _ := d.Heartbeat(6, 1, at(time.Second)); st != hbUnknown {
		t.Errorf("a group event registered a member: status %d", st)
	}
	if ts := d.Tick(at(time.Second + testTimeout)); !slices.Equal(ts, []Transition{{ID: 5, Incarnation: 1}}) {
		t.Fatalf("a member that joined and never heartbeat: %v", ts)
	}
	d.Observe(Event{Kind: Joined, Member: on(5, 2)}, at(5*time.Second)) // restarted meanwhile
	d.Settle([]Transition{{ID: 5, Incarnation: 1}})                     // the old proposal ends
	if st, _ := d.Heartbeat(5, 1, at(5*time.Second)); st != hbStale {
		t.Errorf("old incarnation: status %d, want stale", st)
	}
	if ts := d.Tick(at(5*time.Second + testTimeout - time.Millisecond)); len(ts) != 0 {
		t.Fatalf("the new incarnation's deadline starts at its join: %v", ts)
	}
	d.Observe(Event{Kind: Left, Member: on(5, 2)}, at(6*time.Second))
	if st, _ := d.Heartbeat(5, 2, at(6*time.Second)); st != hbUnknown {
		t.Errorf("after leaving: status %d, want unknown", st)
	}
}

func TestDetectorBatchesInIDOrder(t *testing.T) {
	var ms []Member
	for id := range MemberID(maxBatch + 10) {
		ms = append(ms, on(id+1, 1))
	}
	d := leading(ms...)
	ts := d.Tick(at(testGrace))
	if len(ts) != maxBatch || !slices.IsSortedFunc(ts, func(a, b Transition) int { return int(a.ID) - int(b.ID) }) || ts[0].ID != 1 {
		t.Fatalf("first batch: %d transitions from %d, want %d in id order", len(ts), ts[0].ID, maxBatch)
	}
	if rest := d.Tick(at(testGrace)); len(rest) != 10 || rest[0].ID != maxBatch+1 {
		t.Fatalf("second batch: %d from %d", len(rest), rest[0].ID)
	}
}
