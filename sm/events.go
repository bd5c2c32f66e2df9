package sm

import (
	"cmp"
	"encoding/binary"
	"maps"
	"slices"
)

// Subscriptions are replicated state: subscribing and unsubscribing are
// commands of the subscriber's session, so every replica holds every
// registration, in its snapshots too, and a session that expires takes
// its subscriptions with it. An event a command notifies is recorded by
// every replica, in the order of the log, if some registration matches
// it, into a window of the most recent events (HostConfig.RetainEvents).
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
	retain int
}

func newSubscriptions(retain int) subscriptions {
	return subscriptions{byID: map[uint64]*registration{}, byKey: map[subKey]int{}, retain: retain}
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

// record keeps ev if anyone listens to its key, dropping the oldest event
// past the window. It reports whether it kept it.
func (s *subscriptions) record(ev event) bool {
	if s.byKey[ev.key] == 0 {
		return false
	}
	if k := 1 + len(s.events) - s.retain; k > 0 {
		s.lost = s.events[k-1].id
		s.events = slices.Delete(s.events, 0, k)
	}
	s.events = append(s.events, ev)
	return true
}

// after returns up to max events of r after id, or compacted if some of
// them fell out of the window.
func (s *subscriptions) after(r *registration, id EventID, most int) (evs []event, compacted bool) {
	id = maxID(id, EventID{Index: r.id})
	if id.Compare(s.lost) < 0 {
		return nil, true
	}
	i, _ := slices.BinarySearchFunc(s.events, id, func(e event, id EventID) int { return e.id.Compare(id) })
	for ; i < len(s.events) && len(evs) < most; i++ {
		if e := s.events[i]; e.key == r.key && e.id.Compare(id) > 0 {
			evs = append(evs, e)
		}
	}
	return evs, false
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
	}
	b = appendEventID(b, s.lost)
	b = binary.AppendUvarint(b, uint64(len(s.events)))
	for _, e := range s.events {
		b = appendBytes(appendKey(appendEventID(b, e.id), e.key), e.payload)
	}
	return b
}

func decodeSubscriptions(d *decoder, retain int) subscriptions {
	s := newSubscriptions(retain)
	for n := d.count(); n > 0 && d.err == nil; n-- {
		r := &registration{id: d.uvarint(), client: d.uvarint()}
		r.key = decodeKey(d)
		s.add(r)
	}
	s.lost = decodeEventID(d)
	for n := d.count(); n > 0 && d.err == nil; n-- {
		e := event{id: decodeEventID(d)}
		e.key = decodeKey(d)
		e.payload = slices.Clone(d.bytes())
		s.events = append(s.events, e)
	}
	return s
}
