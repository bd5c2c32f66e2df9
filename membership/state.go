package membership

import (
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
)

// state is the replicated membership: what every replica holds, changed
// only by commands in log order and so the same on every replica at the
// same index. Its methods are pure: they change the state and return what
// the change announces (effects), which the machine notifies; an error
// leaves the state as it was.
type state struct {
	// mu protects the following. Applies hold it to write; queries,
	// snapshots and the leader's detector, which read beside each other,
	// hold it to read.
	mu      sync.RWMutex
	version uint64
	members map[MemberID]*record
	order   []MemberID          // the members' ids, ascending
	names   map[string]MemberID // the member of each name
	groups  map[string][]MemberID

	// svc is this member's Service, linked by Serve: the leader's
	// detector hears of the changes applied here. Not replicated.
	svc atomic.Pointer[Service]
}

// record is a member, its groups in name order, and its weight in each.
// Member.Weight is always 0: a weight belongs to a group (in).
type record struct {
	Member
	groups  []string
	weights map[string]uint64 // by group, each at least 1
}

// in returns the member as group g sees it, with its weight there; as the
// cluster sees it, weight 0, for "".
func (r *record) in(g string) Member {
	m := r.Member
	m.Weight = r.weights[g]
	return m
}

// effects are the events a change announces, in order.
type effects struct {
	events  []Event
	leaders []LeaderChange
}

func newState() *state {
	return &state{members: map[MemberID]*record{}, names: map[string]MemberID{}, groups: map[string][]MemberID{}}
}

// current returns the member id if inc is its incarnation.
func (s *state) current(id MemberID, inc uint64) (*record, error) {
	r := s.members[id]
	switch {
	case r == nil:
		return nil, fmt.Errorf("%w: id %d", ErrUnknownMember, id)
	case r.Incarnation != inc:
		return nil, fmt.Errorf("%w: %v is %s now, not incarnation %d", ErrStaleIncarnation, id, r.Member, inc)
	}
	return r, nil
}

// join registers name at addr: a new member whose id is index, or a new
// incarnation of the member of that name, in the same groups.
func (s *state) join(fx *effects, index uint64, name, addr string) (Member, error) {
	if name == "" {
		return Member{}, fmt.Errorf("%w: empty member name", ErrBadRequest)
	}
	if id, ok := s.names[name]; ok {
		r := s.members[id]
		s.touch(fx, Joined, true, r, func() { r.Incarnation++; r.Addr, r.Online = addr, true })
		return r.Member, nil
	}
	if _, taken := s.members[MemberID(index)]; taken || index == 0 {
		return Member{}, fmt.Errorf("%w: join at index %d, taken", ErrBadRequest, index)
	}
	r := &record{Member: Member{ID: MemberID(index), Name: name, Addr: addr, Incarnation: 1, Online: true},
		weights: map[string]uint64{}}
	s.touch(fx, Joined, true, r, func() {
		s.members[r.ID], s.names[name] = r, r.ID
		s.order = insert(s.order, r.ID)
	})
	return r.Member, nil
}

// leave removes incarnation inc of member id from its groups and the
// cluster.
func (s *state) leave(fx *effects, id MemberID, inc uint64) error {
	r, err := s.current(id, inc)
	if err != nil {
		return err
	}
	s.touch(fx, Left, true, r, func() {
		for _, g := range r.groups {
			s.groups[g] = remove(s.groups[g], id)
		}
		delete(s.members, id)
		delete(s.names, r.Name)
		s.order = remove(s.order, id)
	})
	return nil
}

// joinGroup puts incarnation inc of member id in group g with weight w;
// if it is there already, it sets the weight (setWeight).
func (s *state) joinGroup(fx *effects, id MemberID, inc uint64, g string, w uint64) error {
	if w == 0 {
		return fmt.Errorf("%w: weight 0", ErrBadRequest)
	}
	r, err := s.inGroup(id, inc, g)
	if err != nil {
		return err
	}
	if slices.Contains(r.groups, g) {
		s.weigh(fx, r, g, w)
		return nil
	}
	s.touchGroup(fx, Joined, r, g, func() {
		r.groups = insert(r.groups, g)
		r.weights[g] = w
		s.groups[g] = insert(s.groups[g], id)
	})
	return nil
}

// setWeight sets the weight of member id in group g to w; nothing if it
// is w already. An incarnation of 0 stands for the current one, for an
// observer, which speaks for no incarnation.
func (s *state) setWeight(fx *effects, id MemberID, inc uint64, g string, w uint64) error {
	if w == 0 {
		return fmt.Errorf("%w: weight 0", ErrBadRequest)
	}
	if r := s.members[id]; r != nil && inc == 0 {
		inc = r.Incarnation
	}
	r, err := s.inGroup(id, inc, g)
	if err != nil {
		return err
	}
	if !slices.Contains(r.groups, g) {
		return fmt.Errorf("%w: %v, %q", ErrNotInGroup, r.Member, g)
	}
	s.weigh(fx, r, g, w)
	return nil
}

// weigh sets r's weight in g, announcing it in g alone. A weight is no
// part of who leads, so the leader stays.
func (s *state) weigh(fx *effects, r *record, g string, w uint64) {
	if r.weights[g] != w {
		s.touchGroup(fx, Weighted, r, g, func() { r.weights[g] = w })
	}
}

// leaveGroup takes incarnation inc of member id out of group g; nothing
// if it is not there.
func (s *state) leaveGroup(fx *effects, id MemberID, inc uint64, g string) error {
	r, err := s.inGroup(id, inc, g)
	if err != nil || !slices.Contains(r.groups, g) {
		return err
	}
	s.touchGroup(fx, Left, r, g, func() {
		r.groups = remove(r.groups, g)
		s.groups[g] = remove(s.groups[g], id)
	})
	delete(r.weights, g) // after: Left tells the weight it had
	return nil
}

func (s *state) inGroup(id MemberID, inc uint64, g string) (*record, error) {
	r, err := s.current(id, inc)
	if err != nil {
		return nil, err
	}
	if err := s.hasGroup(g); err != nil {
		return nil, err
	}
	return r, nil
}

func (s *state) hasGroup(g string) error {
	if g == "" {
		return fmt.Errorf("%w: empty group name", ErrBadRequest)
	}
	if _, ok := s.groups[g]; !ok {
		return fmt.Errorf("%w: %q", ErrNoGroup, g)
	}
	return nil
}

// createGroup makes group g; nothing if it exists.
func (s *state) createGroup(g string) error {
	if g == "" {
		return fmt.Errorf("%w: empty group name", ErrBadRequest)
	}
	if _, ok := s.groups[g]; !ok {
		s.groups[g] = []MemberID{}
		s.version++
	}
	return nil
}

// deleteGroup removes group g: each of its members leaves it.
func (s *state) deleteGroup(fx *effects, g string) error {
	if err := s.hasGroup(g); err != nil {
		return err
	}
	old := s.leader(g)
	s.version++
	for _, id := range s.groups[g] {
		r := s.members[id]
		r.groups = remove(r.groups, g)
		fx.events = append(fx.events, Event{Kind: Left, Group: g, Member: r.in(g), Version: s.version})
		delete(r.weights, g)
	}
	delete(s.groups, g)
	if old != nil {
		fx.leaders = append(fx.leaders, LeaderChange{Group: g, Old: old, Version: s.version})
	}
	return nil
}

// mark applies the leader's transitions: each changes its member only if
// it names the current incarnation and the member is not so already, so
// a batch applied twice changes nothing the second time.
func (s *state) mark(fx *effects, ts []Transition) {
	for _, t := range ts {
		r := s.members[t.ID]
		if r == nil || r.Incarnation != t.Incarnation || r.Online == t.Online {
			continue
		}
		kind := Offline
		if t.Online {
			kind = Online
		}
		s.touch(fx, kind, true, r, func() { r.Online = t.Online })
	}
}

// touch makes one change to member r in the cluster and all its groups:
// it runs change, bumps the version and notes the events of kind, then
// the groups' leader changes.
func (s *state) touch(fx *effects, kind EventKind, cluster bool, r *record, change func()) {
	s.changeIn(fx, kind, cluster, r, slices.Clone(r.groups), change)
}

// touchGroup makes one change to member r in group g alone.
func (s *state) touchGroup(fx *effects, kind EventKind, r *record, g string, change func()) {
	s.changeIn(fx, kind, false, r, []string{g}, change)
}

func (s *state) changeIn(fx *effects, kind EventKind, cluster bool, r *record, groups []string, change func()) {
	old := make([]*Member, len(groups))
	for i, g := range groups {
		old[i] = s.leader(g)
	}
	change()
	s.version++
	if cluster {
		fx.events = append(fx.events, Event{Kind: kind, Member: r.Member, Version: s.version})
	}
	for _, g := range groups {
		fx.events = append(fx.events, Event{Kind: kind, Group: g, Member: r.in(g), Version: s.version})
	}
	for i, g := range groups {
		if now := s.leader(g); !sameMember(old[i], now) {
			fx.leaders = append(fx.leaders, LeaderChange{Group: g, Old: old[i], New: now, Version: s.version})
		}
	}
}

// leader returns group g's first online member in id order, or nil.
func (s *state) leader(g string) *Member {
	for _, id := range s.groups[g] {
		if m := s.members[id].in(g); m.Online {
			return &m
		}
	}
	return nil
}

func sameMember(a, b *Member) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.ID == b.ID && a.Incarnation == b.Incarnation
}

// list returns the members of group g ("" for the cluster), all or the
// online ones, in id order.
func (s *state) list(g string, onlineOnly bool) (listing, error) {
	ids := s.order
	if g != "" {
		if err := s.hasGroup(g); err != nil {
			return listing{}, err
		}
		ids = s.groups[g]
	}
	l := listing{Members: make([]Member, 0, len(ids)), Version: s.version}
	for _, id := range ids {
		if m := s.members[id].in(g); m.Online || !onlineOnly {
			l.Members = append(l.Members, m)
		}
	}
	return l, nil
}

// groupLeader returns group g's leader, if any, as a listing.
func (s *state) groupLeader(g string) (listing, error) {
	if err := s.hasGroup(g); err != nil {
		return listing{}, err
	}
	l := listing{Version: s.version}
	if m := s.leader(g); m != nil {
		l.Members = []Member{*m}
	}
	return l, nil
}

// snapshotVersion is the first byte of a snapshot.
const snapshotVersion = 2

// appendSnapshot encodes the state: the version, the members in id order,
// the groups in name order with their members' ids in order, each with
// its weight there.
func (s *state) appendSnapshot(b []byte) []byte {
	b = appendUvarint(append(b, snapshotVersion), s.version)
	b = appendUvarint(b, uint64(len(s.order)))
	for _, id := range s.order {
		b = appendMember(b, s.members[id].Member)
	}
	names := slices.Sorted(maps.Keys(s.groups))
	b = appendUvarint(b, uint64(len(names)))
	for _, g := range names {
		b = appendUvarint(appendString(b, g), uint64(len(s.groups[g])))
		for _, id := range s.groups[g] {
			b = appendUvarint(appendUvarint(b, uint64(id)), s.members[id].weights[g])
		}
	}
	return b
}

// decodeState decodes a snapshot, checking that it is one appendSnapshot
// could have written: ids and names in order and unique, every group's
// members known, weights at least 1 in groups and 0 outside.
func decodeState(p []byte) (*state, error) {
	s := newState()
	if len(p) == 0 || p[0] != snapshotVersion {
		return nil, fmt.Errorf("%w: snapshot version", ErrCorrupt)
	}
	d := decoder{b: p[1:]}
	s.version = d.uvarint()
	for n := d.count(minMember); n > 0 && d.err == nil; n-- {
		s.addDecoded(&d, d.member())
	}
	prev := ""
	for n := d.count(2); n > 0 && d.err == nil; n-- {
		g := d.string()
		if g <= prev { // names are not empty
			d.fail("group %q out of order", g)
		}
		prev = g
		s.groups[g] = []MemberID{}
		for k := d.count(2); k > 0 && d.err == nil; k-- {
			id := MemberID(d.uvarint())
			s.addToGroup(&d, g, id, d.uvarint())
		}
	}
	return s, d.done()
}

func (s *state) addDecoded(d *decoder, m Member) {
	switch {
	case d.err != nil:
		return
	case m.ID == 0 || len(s.order) > 0 && m.ID <= s.order[len(s.order)-1]:
		d.fail("member id %d out of order", m.ID)
	case m.Name == "" || s.names[m.Name] != 0:
		d.fail("member name %q empty or repeated", m.Name)
	case m.Incarnation == 0:
		d.fail("member %d without incarnation", m.ID)
	case m.Weight != 0:
		d.fail("member %d weighs %d outside a group", m.ID, m.Weight)
	}
	s.members[m.ID], s.names[m.Name] = &record{Member: m, weights: map[string]uint64{}}, m.ID
	s.order = append(s.order, m.ID)
}

func (s *state) addToGroup(d *decoder, g string, id MemberID, w uint64) {
	ids, r := s.groups[g], s.members[id]
	switch {
	case d.err != nil:
		return
	case r == nil:
		d.fail("group %q holds unknown member %d", g, id)
		return
	case len(ids) > 0 && id <= ids[len(ids)-1]:
		d.fail("group %q: member %d out of order", g, id)
		return
	case w == 0:
		d.fail("group %q: member %d without weight", g, id)
		return
	}
	s.groups[g] = append(ids, id)
	r.groups = append(r.groups, g) // groups come in name order
	r.weights[g] = w
}

// Snapshot encodes the state (sm.Snapshotter).
func (s *state) Snapshot() ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.appendSnapshot(nil), nil
}

// Restore replaces the state with a snapshot's; nil is the empty state
// (sm.Snapshotter).
func (s *state) Restore(p []byte) error {
	n := newState()
	if p != nil {
		var err error
		if n, err = decodeState(p); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.version, s.members, s.order, s.names, s.groups = n.version, n.members, n.order, n.names, n.groups
	return nil
}

// all returns every member in id order, for the leader's detector.
func (s *state) all() []Member {
	s.mu.RLock()
	defer s.mu.RUnlock()
	l, _ := s.list("", false)
	return l.Members
}

// find returns member id, for the leader's detector.
func (s *state) find(id MemberID) (Member, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r := s.members[id]
	if r == nil {
		return Member{}, false
	}
	return r.Member, true
}

// insert adds v to the sorted slice xs, unless there.
func insert[T ~string | ~uint64](xs []T, v T) []T {
	i, found := slices.BinarySearch(xs, v)
	if found {
		return xs
	}
	return slices.Insert(xs, i, v)
}

// remove takes v out of the sorted slice xs, if there.
func remove[T ~string | ~uint64](xs []T, v T) []T {
	i, found := slices.BinarySearch(xs, v)
	if !found {
		return xs
	}
	return slices.Delete(xs, i, i+1)
}
