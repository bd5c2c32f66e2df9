package membership

import (
	"cmp"
	"slices"
	"time"
)

// detector is the leader's failure detector: plain code over values, with
// the clock passed in, no goroutines and no I/O. The Service drives it on
// the leader: Lead once the leader has applied its whole log, Heartbeat
// for each heartbeat, Observe for each change applied, Tick on a timer,
// and Settle when the transitions Tick asked for were proposed. It is not
// safe for concurrent use.
//
// It keeps, for every member of the cluster, a deadline: the time of its
// last heartbeat plus the timeout, or, after Lead or Resume, at least the
// time then plus the grace. Tick asks for an online member past its
// deadline to go offline, and for an offline member heard from since it
// went offline to come back online. It asks once: a member with a
// transition being proposed is left alone until Settle.
type detector struct {
	timeout, grace time.Duration
	ready          bool // leading, with the state caught up (Lead)
	watches        map[MemberID]*watch
}

// watch is what the detector knows of one member.
type watch struct {
	inc      uint64
	online   bool      // as the replicated state has it
	deadline time.Time // while online: when it expires without a heartbeat
	heard    time.Time // the last heartbeat, zero for none since Lead
	offSince time.Time // while offline: when this leader saw it go offline, zero if before Lead
	pending  bool      // a transition for it is being proposed
}

// maxBatch bounds the transitions of one tick, so that one batch fits in
// one log entry whatever the cluster's size; the rest go next tick.
const maxBatch = 1024

func newDetector(timeout, grace time.Duration) *detector {
	return &detector{timeout: timeout, grace: grace, watches: map[MemberID]*watch{}}
}

// Lead starts detecting over members, the cluster as the leader applied
// it once caught up. Every online member gets a fresh deadline, now plus
// the grace: the leader has heard nobody yet, and must not take the
// time it was not leading for their silence.
func (d *detector) Lead(now time.Time, members []Member) {
	d.ready = true
	clear(d.watches)
	for _, m := range members {
		w := &watch{inc: m.Incarnation, online: m.Online}
		if m.Online {
			w.deadline = now.Add(d.grace)
		}
		d.watches[m.ID] = w
	}
}

// Follow stops detecting: this member no longer leads.
func (d *detector) Follow() {
	d.ready = false
	clear(d.watches)
}

// Ready reports whether the detector leads, since Lead.
func (d *detector) Ready() bool { return d.ready }

// Resume gives every online member at least the grace again, after the
// leader noticed it had been paused: heartbeats that came meanwhile are
// only now being read, and a clock that jumped must not expire anyone.
func (d *detector) Resume(now time.Time) {
	for _, w := range d.watches {
		if w.online {
			w.deadline = later(w.deadline, now.Add(d.grace))
		}
	}
}

// Observe takes in a change of the cluster the leader applied: an event
// of Group "" (the others are ignored).
func (d *detector) Observe(e Event, now time.Time) {
	if !d.ready || e.Group != "" {
		return
	}
	id := e.Member.ID
	w := d.watches[id]
	switch {
	case e.Kind == Left:
		delete(d.watches, id)
	case e.Kind == Joined || w == nil:
		d.Track(e.Member, now)
	case e.Kind == Online:
		w.online, w.deadline = true, now.Add(d.timeout)
	case e.Kind == Offline:
		w.online, w.offSince = false, now
	}
}

// Track starts watching incarnation m.Incarnation of member m afresh, as
// a join does: an online member's deadline is now plus the timeout.
func (d *detector) Track(m Member, now time.Time) {
	d.watches[m.ID] = &watch{inc: m.Incarnation, online: m.Online, deadline: now.Add(d.timeout)}
}

// Heartbeat records a heartbeat of incarnation inc of member id and
// returns the answer's status, and whether Tick now has a member to bring
// back online.
func (d *detector) Heartbeat(id MemberID, inc uint64, now time.Time) (status byte, wake bool) {
	w := d.watches[id]
	switch {
	case !d.ready:
		return hbNotReady, false
	case w == nil:
		return hbUnknown, false
	case inc < w.inc:
		return hbStale, false
	case inc > w.inc:
		return hbNotReady, false // its join has not applied here yet
	}
	w.heard = now
	if w.online {
		w.deadline = now.Add(d.timeout)
	}
	return hbOK, !w.online && !w.pending
}

// Tick returns the transitions due at now, in id order, and marks them
// pending.
func (d *detector) Tick(now time.Time) []Transition {
	if !d.ready {
		return nil
	}
	var ts []Transition
	for id, w := range d.watches {
		if t, due := d.due(id, w, now); due {
			ts = append(ts, t)
		}
	}
	slices.SortFunc(ts, func(a, b Transition) int { return cmp.Compare(a.ID, b.ID) })
	if len(ts) > maxBatch {
		ts = ts[:maxBatch]
	}
	for _, t := range ts {
		d.watches[t.ID].pending = true
	}
	return ts
}

func (d *detector) due(id MemberID, w *watch, now time.Time) (Transition, bool) {
	t := Transition{ID: id, Incarnation: w.inc, Online: !w.online}
	switch {
	case w.pending:
		return t, false
	case w.online:
		return t, !now.Before(w.deadline)
	}
	// Offline: back if heard since it went, recently enough to be alive.
	return t, w.heard.After(w.offSince) && now.Sub(w.heard) < d.timeout
}

// Heard returns how long ago member id last heartbeat (since Lead), or
// -1 if it did not.
func (d *detector) Heard(id MemberID, now time.Time) time.Duration {
	if w := d.watches[id]; w != nil && !w.heard.IsZero() {
		return now.Sub(w.heard)
	}
	return -1
}

// Settle ends the pending state of transitions Tick returned, once their
// proposal applied or failed: a failed one is asked for again if still
// due.
func (d *detector) Settle(ts []Transition) {
	for _, t := range ts {
		if w := d.watches[t.ID]; w != nil && w.inc == t.Incarnation {
			w.pending = false
		}
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
