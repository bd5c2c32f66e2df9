package sm

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bifrost-go/bifrost/rpc"
)

// A machine's functions are typed values declared once and shared by
// server and client: Go has no type parameters on methods, so
// NewCommand and NewQuery make the descriptors, HandleCommand and
// HandleQuery attach the server's code to a Machine, and the client calls
// Command.Do and Query.Read.

// ErrDuplicate reports a machine or function registered twice, or a
// machine name whose id lies in the framework's reserved range.
var ErrDuplicate = errors.New("sm: duplicate or reserved id")

// reservedIDs is the range of machine ids kept for the framework.
const reservedIDs = 1 << 16

// machineID is the stable id of a machine name: the same hash rpc uses
// for service names, so it never changes across releases.
func machineID(name string) uint64 { return rpc.ServiceID("sm.machine." + name) }

func fnID(name string) uint64 { return rpc.MethodID(name) }

// fn names one function of one machine.
type fn struct {
	machine     string
	name        string
	machineID   uint64
	functionID  uint64
	description string
}

func newFn(machine, name string) fn {
	return fn{machine: machine, name: name, machineID: machineID(machine), functionID: fnID(name),
		description: machine + "." + name}
}

// String returns "machine.name".
func (f fn) String() string { return f.description }

// typedFn is a function with its request and answer encodings.
type typedFn[Req, Resp any] struct {
	fn
	req  rpc.Codec[Req]
	resp rpc.Codec[Resp]
}

func newTypedFn[Req, Resp any](machine, name string) typedFn[Req, Resp] {
	return typedFn[Req, Resp]{fn: newFn(machine, name), req: rpc.NewCodec[Req](), resp: rpc.NewCodec[Resp]()}
}

// Command is a function that changes a machine's state: it goes through
// the log and applies on every replica, exactly once per call. Its
// String is "machine.name".
type Command[Req, Resp any] struct{ typedFn[Req, Resp] }

// NewCommand returns the command called name of the machine called
// machine, taking Req and answering Resp.
func NewCommand[Req, Resp any](machine, name string) *Command[Req, Resp] {
	return &Command[Req, Resp]{newTypedFn[Req, Resp](machine, name)}
}

// Query is a function that reads a machine's state without changing it;
// it runs on one replica, outside the log. Its String is "machine.name".
type Query[Req, Resp any] struct{ typedFn[Req, Resp] }

// NewQuery returns the query called name of the machine called machine.
func NewQuery[Req, Resp any](machine, name string) *Query[Req, Resp] {
	return &Query[Req, Resp]{newTypedFn[Req, Resp](machine, name)}
}

// Apply is what a command handler may know besides its request: facts
// the leader stamped into the log entry, the same on every replica. A
// handler must be deterministic: it reads no clock of its own, does no
// I/O and draws no randomness, or replicas diverge.
type Apply struct {
	// Index and Term are those of the log entry being applied.
	Index, Term uint64
	// Time is the leader's clock when it proposed the entry. It never
	// goes back from one entry to the next on a replica, even across
	// leaders whose clocks disagree.
	Time time.Time

	machine uint64          // the machine whose command this is
	events  []event         // what it notified, recorded if it succeeds
	ctx     context.Context // binds Leading
}

// Context returns the context of the apply: it binds Leading, whether
// this member leads the group as it applies the command.
func (a *Apply) Context() context.Context { return a.ctx }

// Read is what a query handler may know besides its request.
type Read struct {
	// Applied is the log index the state is at.
	Applied uint64
}

// Snapshotter is the state of a machine: the host snapshots and restores
// every machine with the framework's own state.
type Snapshotter interface {
	// Snapshot encodes the whole state. Equal states must encode to equal
	// bytes (replicas are compared so): iterate maps in sorted order.
	Snapshot() ([]byte, error)
	// Restore replaces the state with a snapshot's. data is nil for a
	// machine the snapshot does not hold (one added since): the empty
	// state.
	Restore(data []byte) error
}

// Machine is one replicated state machine: its state and the handlers of
// its functions. Register its functions before adding it to a Host.
type Machine struct {
	name  string
	id    uint64
	state Snapshotter
	cmds  map[uint64]cmdHandler
	qrys  map[uint64]qryHandler
	// retained are the subscriptions whose events are recorded whether
	// anyone listens or not, by function id (Retain).
	retained map[uint64]bool
	err      error // the first registration error, reported by NewHost
}

type cmdHandler func(a *Apply, payload []byte) ([]byte, error)

type qryHandler func(r *Read, payload []byte) ([]byte, error)

// NewMachine returns the machine called name over state. Its id is a
// stable hash of the name.
func NewMachine(name string, state Snapshotter) *Machine {
	m := &Machine{name: name, id: machineID(name), state: state,
		cmds: map[uint64]cmdHandler{}, qrys: map[uint64]qryHandler{}, retained: map[uint64]bool{}}
	if m.id < reservedIDs {
		m.err = fmt.Errorf("%w: machine %q hashes into the reserved range", ErrDuplicate, name)
	}
	return m
}

// Name returns the machine's name.
func (m *Machine) Name() string { return m.name }

// HandleCommand makes h apply c on m. h changes the state and returns the
// answer; an error goes back to the caller as a RemoteError, and the
// command counts as applied (a retry gets the same error), so h must
// leave the state as it was when it fails.
func HandleCommand[Req, Resp any](m *Machine, c *Command[Req, Resp], h func(a *Apply, req Req) (Resp, error)) {
	if !m.owns(c.fn) {
		return
	}
	m.cmds[c.functionID] = func(a *Apply, payload []byte) ([]byte, error) {
		req, err := c.req.Decode(payload)
		if err != nil {
			return nil, fmt.Errorf("sm: %s: decode request: %w", c, err)
		}
		resp, err := h(a, req)
		if err != nil {
			return nil, err
		}
		return c.resp.Append(nil, resp)
	}
}

// HandleQuery makes h answer q on m. A query must not change the state:
// it runs on one replica only, concurrently with other queries (under a
// read lock; the race detector reports a query that writes), and a change
// there would make replicas diverge. Queries get no Apply, so they cannot
// see the log's time either.
func HandleQuery[Req, Resp any](m *Machine, q *Query[Req, Resp], h func(r *Read, req Req) (Resp, error)) {
	if !m.owns(q.fn) {
		return
	}
	m.qrys[q.functionID] = func(r *Read, payload []byte) ([]byte, error) {
		req, err := q.req.Decode(payload)
		if err != nil {
			return nil, fmt.Errorf("sm: %s: decode request: %w", q, err)
		}
		resp, err := h(r, req)
		if err != nil {
			return nil, err
		}
		return q.resp.Append(nil, resp)
	}
}

// Retain makes every replica record each event of s that m's commands
// notify, whether anyone subscribes or not, so that a subscriber can
// resume from any event still in the window (OpenAfter), even one it saw
// through another client or before the group's leader changed. The
// window (HostConfig.RetainEvents and RetainBytes) then holds the most recent events of
// s, payloads and all, in memory and in snapshots: retain a subscription
// whose events are small or few, or size the window for them.
func Retain[K, E any](m *Machine, s *Subscription[K, E]) {
	if s.machineID != m.id {
		m.fail(fmt.Errorf("sm: %s retained on machine %q", s, m.name))
		return
	}
	m.retained[s.functionID] = true
}

// owns checks that f belongs to m and is not registered on it yet.
func (m *Machine) owns(f fn) bool {
	switch {
	case f.machineID != m.id:
		m.fail(fmt.Errorf("sm: %s registered on machine %q", f.description, m.name))
		return false
	case m.cmds[f.functionID] != nil || m.qrys[f.functionID] != nil:
		m.fail(fmt.Errorf("%w: %s", ErrDuplicate, f.description))
		return false
	}
	return true
}

func (m *Machine) fail(err error) {
	if m.err == nil {
		m.err = err
	}
}
