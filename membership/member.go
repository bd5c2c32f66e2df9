package membership

import (
	"errors"
	"fmt"
	"strings"

	"github.com/bifrost-go/bifrost/sm"
)

// MemberID identifies a member for its whole life in the cluster: the log
// index of the first join of its name, the same on every replica, kept
// across its restarts.
type MemberID uint64

// Member is a server registered with the cluster. (ID, Incarnation) names
// one run of it: Incarnation grows by one on every join of the same name,
// so a restarted member is told from its old self.
type Member struct {
	ID          MemberID
	Name, Addr  string
	Incarnation uint64
	Online      bool
	// Weight is the member's weight in a group, at least 1, in the
	// group's listings and events; 0 in the cluster's (Group "").
	Weight uint64
}

// String returns "name#incarnation(id)".
func (m Member) String() string { return fmt.Sprintf("%s#%d(%d)", m.Name, m.Incarnation, m.ID) }

// AppendBinary appends the member's wire encoding to b.
func (m Member) AppendBinary(b []byte) ([]byte, error) { return appendMember(b, m), nil }

// UnmarshalBinary decodes what AppendBinary encoded.
func (m *Member) UnmarshalBinary(p []byte) error {
	d := decoder{b: p}
	v := d.member()
	if err := d.done(); err != nil {
		return err
	}
	*m = v
	return nil
}

// EventKind is what happened to a member.
type EventKind uint8

// Kinds of events.
const (
	// Joined: the member joined the cluster or the group. For a member
	// already there it announces a restart: the new incarnation, maybe at
	// a new address, replaces the old one, in the cluster and in the same
	// groups.
	Joined EventKind = 1 + iota
	// Left: the member left the cluster or the group (or the group was
	// deleted).
	Left
	// Online: the member is back: the leader heard from it again.
	Online
	// Offline: the leader heard nothing from it for Config.Timeout.
	Offline
	// Weighted: the member's weight in the group changed; Member carries
	// the new one. Only a group's stream announces it.
	Weighted
)

var kindNames = [...]string{Joined: "joined", Left: "left", Online: "online", Offline: "offline", Weighted: "weighted"}

func (k EventKind) String() string {
	if k < Joined || k > Weighted {
		return fmt.Sprintf("EventKind(%d)", uint8(k))
	}
	return kindNames[k]
}

// Event is a change of a member: in one group, or in the cluster for Group
// "". Member is the member as the change left it (as it was, for Left);
// Version is the membership's version after the change.
type Event struct {
	Kind    EventKind
	Group   string
	Member  Member
	Version uint64
}

// AppendBinary appends the event's wire encoding to b.
func (e Event) AppendBinary(b []byte) ([]byte, error) { return appendEvent(b, e), nil }

// UnmarshalBinary decodes what AppendBinary encoded.
func (e *Event) UnmarshalBinary(p []byte) error {
	d := decoder{b: p}
	v := d.event()
	if err := d.done(); err != nil {
		return err
	}
	*e = v
	return nil
}

// LeaderChange is a change of a group's leader, the first online member
// of the group in ID order: Old or New is nil when the group had or has
// no online member. A leader that restarts changes too (a new
// incarnation, maybe a new address).
type LeaderChange struct {
	Group    string
	Old, New *Member
	Version  uint64
}

// AppendBinary appends the change's wire encoding to b.
func (c LeaderChange) AppendBinary(b []byte) ([]byte, error) { return appendLeaderChange(b, c), nil }

// UnmarshalBinary decodes what AppendBinary encoded.
func (c *LeaderChange) UnmarshalBinary(p []byte) error {
	d := decoder{b: p}
	v := d.leaderChange()
	if err := d.done(); err != nil {
		return err
	}
	*c = v
	return nil
}

// Errors. Those a command or a heartbeat answers with arrive as
// themselves: errors.Is holds on the caller's side too.
var (
	// ErrUnknownMember: no member of that id is in the cluster: it never
	// joined, or it left.
	ErrUnknownMember = errors.New("membership: unknown member")
	// ErrStaleIncarnation: the member has joined again since; the caller
	// speaks for an incarnation that was replaced.
	ErrStaleIncarnation = errors.New("membership: stale incarnation")
	// ErrNoGroup: no group of that name exists.
	ErrNoGroup = errors.New("membership: no such group")
	// ErrBadRequest: an empty member name or group name, or a weight of 0.
	ErrBadRequest = errors.New("membership: bad request")
	// ErrNotInGroup: the member is not in that group.
	ErrNotInGroup = errors.New("membership: not in group")
	// ErrCorrupt: bytes from the network or disk that do not decode.
	ErrCorrupt = errors.New("membership: corrupt data")
	// ErrClosed: the handle or service was closed.
	ErrClosed = errors.New("membership: closed")
)

// remoteErrors are the errors a handler's answer may carry.
var remoteErrors = []error{ErrUnknownMember, ErrStaleIncarnation, ErrNoGroup, ErrBadRequest, ErrNotInGroup}

// fromRemote turns a handler's error, which crosses the wire as its text
// in an *sm.RemoteError, back into the error it was, so that errors.Is
// works for the caller.
func fromRemote(err error) error {
	var re *sm.RemoteError
	if !errors.As(err, &re) {
		return err
	}
	for _, e := range remoteErrors {
		if rest, ok := strings.CutPrefix(re.Message, e.Error()); ok {
			return fmt.Errorf("%w%s", e, rest)
		}
	}
	return err
}
