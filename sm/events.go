package sm

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"maps"
	"slices"
)

// Subscriptions are replicated state: subscribing and unsubscribing are
// commands of the subscriber's session, so every replica holds every
// registration, in its snapshots too, and a session that expires takes
// its subscriptions with it. An event a command notifies is recorded by
// every replica, in the order of the log, if some registration matches
// it, into a window of the most recent events (HostConfig.RetainEvents
// and RetainBytes).
// Apply never waits for a subscriber: delivery reads the window beside
// it (server.go), so a slow or dead subscriber falls behind alone, and a
// new leader resumes a subscriber from the last event id it saw. A
// subscriber that falls behind the window is told to resync.

// EventID orders the events of a group: the log index of the command
// that notified it, and its place among that command's notifications.
type EventID struct{ Index, Sub uint64 }

// Compare orders ids.
func (a EventID) Compare(b EventID) int {
	return cmp.Or(cmp.Compare(a.Index, b.Index), cmp.Compare(a.Sub, b.Sub))
}

// subKey is what a subscription listens to: a function of a machine and
// the subscriber's encoded parameter.
type subKey struct {
	machine, fn uint64
	param       string
}

// registration is one subscription.
type registration struct {
	id, client uint64 // the id is the index of the entry that made it
	key        subKey
	// from is the id its events come after: the registration's own
	// index, or the event a resumed stream had seen (OpenAfter).
	from EventID
}

// event is one recorded notification.
type event struct {
	id      EventID
	key     subKey
	payload []byte
}

// subscriptions is the host's replicated subscription state.
type subscriptions struct {
	byID  map[uint64]*registration
	byKey map[subKey]int // registrations per key: whether to record
	// events is the retention window, oldest first; lost is the newest
	// id that fell out of it.
	events []event
	lost   EventID
	bytes  int // the events' sizes (eventSize) in all
	limit  windowLimit
}

// windowLimit is how much the window keeps: the newest events up to
// events of them and bytes of their sizes, whichever it reaches first.
type windowLimit struct{ events, bytes int }

// eventSize is what an event costs the window, near enough: its payload
// and key, and the fields around them.
func eventSize(ev event) int { return len(ev.payload) + len(ev.key.param) + 64 }

func newSubscriptions(limit windowLimit) subscriptions {
	return subscriptions{byID: map[uint64]*registration{}, byKey: map[subKey]int{}, limit: limit}
}

func (s *subscriptions) add(r *registration) {
	s.byID[r.id] = r
	s.byKey[r.key]++
}

func (s *subscriptions) remove(id uint64) {
	r := s.byID[id]
	if r == nil {
		return
	}
	delete(s.byID, id)
	if s.byKey[r.key]--; s.byKey[r.key] == 0 {
		delete(s.byKey, r.key)
	}
}

// dropClients removes the subscriptions of clients whose sessions ended.
func (s *subscriptions) dropClients(clients []uint64) {
	if len(clients) == 0 {
		return
	}
	for id, r := range s.byID {
		if slices.Contains(clients, r.client) {
			s.remove(id)
		}
	}
}

// record keeps ev if anyone listens to its key, or always if its
// subscription is retained. It reports whether it kept it. The window
// keeps the newest events up to its limit, and a quarter more at most:
// once over, the oldest go until it is back within the limit, so that
// trimming costs a copy per quarter window, not per event. The newest
// event always stays, however large. Every replica trims at the same
// events, so an id is in the window on all of them or on none.
func (s *subscriptions) record(ev event, retained bool) bool {
	if !retained && s.byKey[ev.key] == 0 {
		return false
	}
	s.events = append(s.events, ev)
	s.bytes += eventSize(ev)
	s.trim()
	return true
}

// trim drops the oldest events once the window is a quarter over its
// limit in events or in bytes, down to the limit in both.
func (s *subscriptions) trim() {
	lim := s.limit
	if len(s.events)-lim.events <= max(1, lim.events/4) && s.bytes-lim.bytes <= max(1, lim.bytes/4) {
		return
	}
	k := max(0, len(s.events)-lim.events)
	for _, ev := range s.events[:k] {
		s.bytes -= eventSize(ev)
	}
	for k < len(s.events)-1 && s.bytes > lim.bytes {
		s.bytes -= eventSize(s.events[k])
		k++
	}
	if k == 0 {
		return
	}
	s.lost = s.events[k-1].id
	n := copy(s.events, s.events[k:])
	clear(s.events[n:]) // let the dropped payloads go
	s.events = s.events[:n]
}

// pollSub is one subscription a poll asks about, and the id of the last
// event its subscriber got.
type pollSub struct {
	id    uint64
	after EventID
}

// subEvents is a poll's answer for one subscription: stOK and its next
// events (maybe none), stCompacted or stNoSubscription.
type subEvents struct {
	status byte
	events []event
}

// collect returns, for each of subs, up to most events in all after the
// id it names, or why it gets none; found reports whether there is
// anything to tell. It walks the window once from the oldest id asked
// for, so a poll of many subscriptions costs the events since, not the
// events times the subscriptions. A subscription registered at an index
// past applied is not here yet, on a replica behind (a new leader still
// applying its predecessor's log): it waits, rather than hear it is gone.
func (s *subscriptions) collect(subs []pollSub, most int, applied uint64) (res []subEvents, found bool) {
	res = make([]subEvents, len(subs))
	after := make([]EventID, len(subs))
	want := map[subKey][]int{} // the subscriptions asking, by key
	var from EventID
	for i, p := range subs {
		res[i].status = stOK
		r := s.byID[p.id]
		if r == nil && p.id > applied {
			continue
		}
		if r == nil {
			res[i].status, found = stNoSubscription, true
			continue
		}
		// Events start after the registration, or the id it resumed from.
		after[i] = maxID(p.after, r.from)
		if after[i].Compare(s.lost) < 0 {
			res[i].status, found = stCompacted, true
			continue
		}
		if len(want) == 0 || after[i].Compare(from) < 0 {
			from = after[i]
		}
		want[r.key] = append(want[r.key], i)
	}
	if len(want) == 0 {
		return res, found
	}
	start, _ := slices.BinarySearchFunc(s.events, from, func(e event, id EventID) int { return e.id.Compare(id) })
	n := 0
	for _, e := range s.events[start:] {
		for _, i := range want[e.key] {
			if e.id.Compare(after[i]) > 0 {
				res[i].events = append(res[i].events, e)
				n++
			}
		}
		if n >= most {
			break
		}
	}
	return res, found || n > 0
}

func appendPoll(b []byte, subs []pollSub) []byte {
	b = binary.AppendUvarint(b, uint64(len(subs)))
	for _, p := range subs {
		b = appendEventID(binary.AppendUvarint(b, p.id), p.after)
	}
	return b
}

func decodePoll(p []byte) ([]pollSub, error) {
	d := decoder{b: p}
	var subs []pollSub
	for n := d.count(); n > 0 && d.err == nil; n-- {
		subs = append(subs, pollSub{id: d.uvarint(), after: decodeEventID(&d)})
	}
	return subs, d.done()
}

// appendPollAnswer encodes a poll's answer: per subscription asked for,
// in order, its status and, for stOK, its events.
func appendPollAnswer(b []byte, res []subEvents) []byte {
	b = binary.AppendUvarint(b, uint64(len(res)))
	for _, r := range res {
		b = append(b, r.status)
		if r.status == stOK {
			b = appendEvents(b, r.events)
		}
	}
	return b
}

func decodePollAnswer(p []byte) ([]subEvents, error) {
	d := decoder{b: p}
	var res []subEvents
	for n := d.count(); n > 0 && d.err == nil; n-- {
		if len(d.b) == 0 {
			return nil, fmt.Errorf("%w: poll answer cut short", ErrCorrupt)
		}
		r := subEvents{status: d.b[0]}
		d.b = d.b[1:]
		switch r.status {
		case stOK:
			r.events = decodeEventList(&d)
		case stCompacted, stNoSubscription:
		default:
			return nil, fmt.Errorf("%w: poll status %d", ErrCorrupt, r.status)
		}
		res = append(res, r)
	}
	return res, d.done()
}

// appendEvents encodes events as a poll answers them: ids and payloads.
func appendEvents(b []byte, evs []event) []byte {
	b = binary.AppendUvarint(b, uint64(len(evs)))
	for _, e := range evs {
		b = appendBytes(appendEventID(b, e.id), e.payload)
	}
	return b
}

func decodeEventList(d *decoder) []event {
	var evs []event
	for n := d.count(); n > 0 && d.err == nil; n-- {
		e := event{id: decodeEventID(d)}
		e.payload = d.bytes()
		evs = append(evs, e)
	}
	return evs
}

// subscribePayload is what a subscribe command carries besides the
// machine and function: the subscriber's parameter, and the query to
// answer at the index where the subscription starts (machine 0: none),
// or, for a stream that resumes, the id of the last event it had. A
// resume takes the place of the query, which ends the payload, so that
// subscribe entries written before resumes existed decode as they did.
type subscribePayload struct {
	key                   []byte
	queryMachine, queryFn uint64
	query                 []byte
	resume                bool
	after                 EventID
}

func (p subscribePayload) appendBinary(b []byte) []byte {
	b = appendBytes(b, p.key)
	b = binary.AppendUvarint(binary.AppendUvarint(b, p.queryMachine), p.queryFn)
	if p.resume && p.queryMachine == 0 {
		return appendEventID(b, p.after)
	}
	return append(b, p.query...)
}

func decodeSubscribe(b []byte) (subscribePayload, error) {
	d := decoder{b: b}
	p := subscribePayload{key: d.bytes(), queryMachine: d.uvarint(), queryFn: d.uvarint()}
	if p.queryMachine == 0 && len(d.b) > 0 && d.err == nil {
		p.resume, p.after = true, decodeEventID(&d)
		return p, d.done()
	}
	p.query = d.rest()
	return p, d.err
}

func maxID(a, b EventID) EventID {
	if a.Compare(b) >= 0 {
		return a
	}
	return b
}

func appendKey(b []byte, k subKey) []byte {
	b = binary.AppendUvarint(binary.AppendUvarint(b, k.machine), k.fn)
	return appendBytes(b, []byte(k.param))
}

func decodeKey(d *decoder) subKey {
	return subKey{machine: d.uvarint(), fn: d.uvarint(), param: string(d.bytes())}
}

func appendEventID(b []byte, id EventID) []byte {
	return binary.AppendUvarint(binary.AppendUvarint(b, id.Index), id.Sub)
}

func decodeEventID(d *decoder) EventID { return EventID{Index: d.uvarint(), Sub: d.uvarint()} }

// appendBinary encodes the registrations in id order and the window.
func (s *subscriptions) appendBinary(b []byte) []byte {
	ids := slices.Sorted(maps.Keys(s.byID))
	b = binary.AppendUvarint(b, uint64(len(ids)))
	for _, id := range ids {
		r := s.byID[id]
		b = appendKey(binary.AppendUvarint(binary.AppendUvarint(b, r.id), r.client), r.key)
		b = appendEventID(b, r.from)
	}
	b = appendEventID(b, s.lost)
	b = binary.AppendUvarint(b, uint64(len(s.events)))
	for _, e := range s.events {
		b = appendBytes(appendKey(appendEventID(b, e.id), e.key), e.payload)
	}
	return b
}

// decodeSubscriptions decodes what appendBinary encoded; withFrom is
// false for snapshots older than resumes, whose registrations start at
// their own index.
func decodeSubscriptions(d *decoder, limit windowLimit, withFrom bool) subscriptions {
	s := newSubscriptions(limit)
	for n := d.count(); n > 0 && d.err == nil; n-- {
		r := &registration{id: d.uvarint(), client: d.uvarint()}
		r.key = decodeKey(d)
		r.from = EventID{Index: r.id}
		if withFrom {
			r.from = decodeEventID(d)
		}
		s.add(r)
	}
	s.lost = decodeEventID(d)
	for n := d.count(); n > 0 && d.err == nil; n-- {
		e := event{id: decodeEventID(d)}
		e.key = decodeKey(d)
		e.payload = slices.Clone(d.bytes())
		s.events = append(s.events, e)
		s.bytes += eventSize(e)
	}
	return s
}
