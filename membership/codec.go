package membership

import (
	"encoding/binary"
	"fmt"
)

// The wire and log encodings: unsigned varints, and strings as a varint
// length then the bytes. Every type that crosses the network, the log or a
// snapshot implements encoding.BinaryAppender and
// encoding.BinaryUnmarshaler, so rpc and sm take their fast path and the
// encoding of equal values is equal. A decoder refuses trailing bytes and
// values outside their range (a flag that is neither 0 nor 1, an unknown
// kind), so that what decodes encodes back to the same value.

func appendUvarint(b []byte, v uint64) []byte { return binary.AppendUvarint(b, v) }

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

func appendMember(b []byte, m Member) []byte {
	b = appendUvarint(b, uint64(m.ID))
	b = appendString(appendString(b, m.Name), m.Addr)
	return appendUvarint(appendBool(appendUvarint(b, m.Incarnation), m.Online), m.Weight)
}

func appendOptMember(b []byte, m *Member) []byte {
	if m == nil {
		return append(b, 0)
	}
	return appendMember(append(b, 1), *m)
}

func appendEvent(b []byte, e Event) []byte {
	b = appendString(append(b, byte(e.Kind)), e.Group)
	return appendUvarint(appendMember(b, e.Member), e.Version)
}

func appendLeaderChange(b []byte, c LeaderChange) []byte {
	b = appendOptMember(appendOptMember(appendString(b, c.Group), c.Old), c.New)
	return appendUvarint(b, c.Version)
}

// decoder reads the encodings, remembering the first error.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: "+format, append([]any{ErrCorrupt}, args...)...)
	}
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) == 0 {
		d.fail("cut short")
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) bool() bool {
	switch d.byte() {
	case 0:
		return false
	case 1:
		return true
	}
	d.fail("flag neither 0 nor 1")
	return false
}

// string reads a string; it copies, so the input may be reused.
func (d *decoder) string() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.b)) {
		d.fail("%d bytes wanted, %d left", n, len(d.b))
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

// count reads a count of items of at least min bytes each, refusing one
// the input cannot hold, so that a corrupt count allocates nothing.
func (d *decoder) count(min int) int {
	n := d.uvarint()
	if d.err == nil && n > uint64(len(d.b)/min) {
		d.fail("count %d", n)
		return 0
	}
	return int(n)
}

func (d *decoder) done() error {
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d trailing bytes", len(d.b))
	}
	return d.err
}

func (d *decoder) member() Member {
	m := Member{ID: MemberID(d.uvarint()), Name: d.string(), Addr: d.string()}
	m.Incarnation = d.uvarint()
	m.Online = d.bool()
	m.Weight = d.uvarint()
	return m
}

func (d *decoder) optMember() *Member {
	if !d.bool() || d.err != nil {
		return nil
	}
	m := d.member()
	return &m
}

func (d *decoder) event() Event {
	e := Event{Kind: EventKind(d.byte()), Group: d.string(), Member: d.member(), Version: d.uvarint()}
	if d.err == nil && (e.Kind < Joined || e.Kind > Weighted) {
		d.fail("event kind %d", e.Kind)
	}
	return e
}

func (d *decoder) leaderChange() LeaderChange {
	c := LeaderChange{Group: d.string(), Old: d.optMember(), New: d.optMember()}
	c.Version = d.uvarint()
	return c
}

// request is the argument of every command a client sends: which fields
// count depends on the command (join: Name, Addr; leave: ID,
// Incarnation; join a group and set a weight: ID, Incarnation, Group,
// Weight; leave a group: ID, Incarnation, Group; create and delete a
// group: Group).
type request struct {
	ID                MemberID
	Incarnation       uint64
	Name, Addr, Group string
	Weight            uint64
}

func (r request) AppendBinary(b []byte) ([]byte, error) {
	b = appendUvarint(appendUvarint(b, uint64(r.ID)), r.Incarnation)
	b = appendString(appendString(appendString(b, r.Name), r.Addr), r.Group)
	return appendUvarint(b, r.Weight), nil
}

func (r *request) UnmarshalBinary(p []byte) error {
	d := decoder{b: p}
	v := request{ID: MemberID(d.uvarint()), Incarnation: d.uvarint()}
	v.Name, v.Addr, v.Group = d.string(), d.string(), d.string()
	v.Weight = d.uvarint()
	if err := d.done(); err != nil {
		return err
	}
	*r = v
	return nil
}

// list asks for the members of Group ("" for the cluster's), all or the
// online ones; or for the group's leader, or the version alone.
type list struct {
	Group      string
	OnlineOnly bool
}

func (l list) AppendBinary(b []byte) ([]byte, error) {
	return appendBool(appendString(b, l.Group), l.OnlineOnly), nil
}

func (l *list) UnmarshalBinary(p []byte) error {
	d := decoder{b: p}
	v := list{Group: d.string(), OnlineOnly: d.bool()}
	if err := d.done(); err != nil {
		return err
	}
	*l = v
	return nil
}

// listing answers every query: members in ID order and the version.
type listing struct {
	Members []Member
	Version uint64
}

// minMember is the fewest bytes a member encodes to.
const minMember = 6

func (l listing) AppendBinary(b []byte) ([]byte, error) {
	b = appendUvarint(b, uint64(len(l.Members)))
	for _, m := range l.Members {
		b = appendMember(b, m)
	}
	return appendUvarint(b, l.Version), nil
}

func (l *listing) UnmarshalBinary(p []byte) error {
	d := decoder{b: p}
	var v listing
	for n := d.count(minMember); n > 0 && d.err == nil; n-- {
		v.Members = append(v.Members, d.member())
	}
	v.Version = d.uvarint()
	if err := d.done(); err != nil {
		return err
	}
	*l = v
	return nil
}

// Transition is an online or offline mark the leader proposes for one
// incarnation of a member. Applying it is idempotent: it changes the
// member only if the incarnation is still current and the member is not
// already so.
type Transition struct {
	ID          MemberID
	Incarnation uint64
	Online      bool
}

// marks is a batch of transitions, the argument of the leader's command.
// An empty batch changes nothing: a new leader's barrier.
type marks []Transition

func (m marks) AppendBinary(b []byte) ([]byte, error) {
	b = appendUvarint(b, uint64(len(m)))
	for _, t := range m {
		b = appendBool(appendUvarint(appendUvarint(b, uint64(t.ID)), t.Incarnation), t.Online)
	}
	return b, nil
}

func (m *marks) UnmarshalBinary(p []byte) error {
	d := decoder{b: p}
	var v marks
	for n := d.count(3); n > 0 && d.err == nil; n-- {
		v = append(v, Transition{ID: MemberID(d.uvarint()), Incarnation: d.uvarint(), Online: d.bool()})
	}
	if err := d.done(); err != nil {
		return err
	}
	*m = v
	return nil
}

// groupKey is the parameter of the subscriptions: a group, "" for the
// cluster. Its encoding is the name's bytes.
type groupKey string

func (k groupKey) AppendBinary(b []byte) ([]byte, error) { return append(b, k...), nil }

func (k *groupKey) UnmarshalBinary(p []byte) error { *k = groupKey(p); return nil }

// heartbeat is a member's proof of life: one incarnation of one member.
type heartbeat struct {
	ID          MemberID
	Incarnation uint64
}

func (h heartbeat) AppendBinary(b []byte) ([]byte, error) {
	return appendUvarint(appendUvarint(b, uint64(h.ID)), h.Incarnation), nil
}

func (h *heartbeat) UnmarshalBinary(p []byte) error {
	d := decoder{b: p}
	v := heartbeat{ID: MemberID(d.uvarint()), Incarnation: d.uvarint()}
	if err := d.done(); err != nil {
		return err
	}
	*h = v
	return nil
}

// Statuses of a heartbeat's answer.
const (
	hbOK        byte = 1 + iota // heard
	hbNotLeader                 // ask the leader, whose address, if known, follows
	hbNotReady                  // the leader is catching up: ask again shortly
	hbUnknown                   // ErrUnknownMember
	hbStale                     // ErrStaleIncarnation
)

// heartbeatAnswer is the leader's answer, or a follower's pointer to it.
type heartbeatAnswer struct {
	Status byte
	Leader string
}

func (a heartbeatAnswer) AppendBinary(b []byte) ([]byte, error) {
	return appendString(append(b, a.Status), a.Leader), nil
}

func (a *heartbeatAnswer) UnmarshalBinary(p []byte) error {
	d := decoder{b: p}
	v := heartbeatAnswer{Status: d.byte(), Leader: d.string()}
	if d.err == nil && (v.Status < hbOK || v.Status > hbStale) {
		d.fail("heartbeat status %d", v.Status)
	}
	if err := d.done(); err != nil {
		return err
	}
	*a = v
	return nil
}
