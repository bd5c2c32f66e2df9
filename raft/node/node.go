package node

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/bifrost-go/bifrost/raft"
)

// Errors a Node returns. Core errors such as raft.ErrNotLeader and
// raft.ErrProposalTooLarge pass through unchanged.
//
// An error that wraps ErrOutcomeUnknown leaves the caller not knowing
// whether its command commits: the command reached the log, and a later
// leader holding it may still commit it, or it may never commit. Check
// with errors.Is(err, ErrOutcomeUnknown). Retry only a command that is
// safe to apply twice, or deduplicate (client sessions). Every other
// error of Propose means the command did not and will not commit.
var (
	// ErrOutcomeUnknown is wrapped by every error after which a command
	// may or may not commit: ErrLeadershipLost, ErrSnapshotted, and a
	// context that ended or a node that stopped once the command was in
	// the log.
	ErrOutcomeUnknown = errors.New("node: outcome unknown")
	// ErrStopped: the node was stopped, or stopped itself after a storage
	// failure, before the call finished. A Propose it fails after the
	// command reached the log wraps ErrOutcomeUnknown too.
	ErrStopped = errors.New("node: stopped")
	// ErrLeadershipLost: the node stopped leading before the command
	// committed. Outcome unknown.
	ErrLeadershipLost = fmt.Errorf("%w: leadership lost before the command committed", ErrOutcomeUnknown)
)

// errStoppedUnknown fails the proposals in the log when the driver stops.
var errStoppedUnknown = fmt.Errorf("%w (%w)", ErrStopped, ErrOutcomeUnknown)

// StateMachine is the application replicated by the group.
type StateMachine interface {
	// Apply applies one committed entry and returns its result, which
	// reaches the caller of Propose when this node proposed it. It sees
	// every entry: commands (raft.EntryNormal, whose Data is the
	// command), and the leaders' no-ops and configuration changes
	// (raft.EntryNoop, raft.EntryConfig), which change no state but keep
	// the state machine knowing the index and term it is at. Apply is
	// called from a single goroutine, in log order, once per index for
	// the life of the Node. It may keep e.Data but must not modify it.
	Apply(e raft.Entry) []byte
}

// Transport carries raft messages between the members of a group.
type Transport interface {
	// Receive registers the function the transport calls for every
	// message that arrives for this node. Start calls it once, before any
	// Send.
	Receive(deliver func(raft.Message))
	// Send hands messages to the network, best effort: raft survives lost
	// messages, but not a driver that blocks, so Send must not wait for
	// the network.
	Send(msgs []raft.Message)
}

// AddressBook is an optional Transport capability: the address a member
// is reached at. Status reports the leader's with it.
type AddressBook interface {
	// Addr returns the address of member id, if the transport knows it.
	Addr(id uint64) (string, bool)
}

// Status is a node's view of its group as of its driver's last step.
type Status struct {
	raft.Status
	// LeaderAddr is the transport address of the leader (Lead), if the
	// transport is an AddressBook that knows it (RPCTransport knows its
	// peers'). Empty on the leader itself.
	LeaderAddr string
	// RoleChanges and TermChanges count the changes of role and of term
	// this node has seen since it started; each is logged at Info.
	RoleChanges, TermChanges uint64
}

// Node runs one member of a raft group: a driver goroutine that feeds the
// pure raft.Core with ticks, messages and proposals and runs the Ready
// protocol (raft.Driver) against storage, transport and state machine.
// Its methods are safe for concurrent use.
type Node struct {
	cfg    Config
	log    *slog.Logger
	propc  chan *proposal
	opc    chan func() // operations to run on the driver goroutine (read.go)
	recvc  chan raft.Message
	stopc  chan struct{}
	done   chan struct{}
	status atomic.Pointer[Status]

	changedMu sync.Mutex    // protects changed
	changed   chan struct{} // closed and replaced when the status changes
	once      sync.Once
	err       error    // why the driver stopped; written before done closes
	counters  counters // stats.go

	// Owned by the driver goroutine.
	core     *raft.Core
	driver   *raft.Driver
	waiting  map[uint64]*proposal // proposals by log index, until applied
	settled  []settledProposal    // apply's scratch, reused
	syncReq  chan write           // to the sync goroutine: what to write and sync; size one
	synced   chan error           // from the sync goroutine: its result; size one
	saved    raft.HardState       // the hard state last handed to storage
	applied  uint64               // the last index the state machine applied or restored
	ticks    uint64               // ticks of the driver's clock so far
	proposed bool                 // a proposal was taken this turn (gatherMoreProposals)
	reads    readQueue            // reads waiting to be confirmed and applied
	snaps    *snapshots           // snapshot.go
}

// proposal is one Propose call waiting for its entry to apply.
type proposal struct {
	cmd   []byte
	conf  *raft.ConfChange // a configuration change instead of cmd, if set
	term  uint64
	index uint64
	done  chan result // buffered 1: the driver never blocks on a caller
}

type result struct {
	index uint64
	value []byte
	err   error
}

// recvBuffer is how many incoming messages may wait for the driver. Raft
// drops nothing by itself, but a transport that has to wait here stalls
// every other group on its connection, so the buffer absorbs bursts of
// append responses from many followers and pipelined appends.
const recvBuffer = 4096

// Start loads the node's state from storage and starts its driver.
func Start(cfg Config) (*Node, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	hs, entries, err := cfg.Storage.Load()
	if err != nil {
		return nil, fmt.Errorf("node: load storage: %w", err)
	}
	snaps, entries, err := openSnapshots(cfg, entries)
	if err != nil {
		return nil, err
	}
	rc := cfg.Raft
	rc.HardState, rc.Entries, rc.Snapshot = hs, entries, snaps.meta
	core, err := raft.New(rc)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadConfig, err)
	}
	n := &Node{
		cfg: cfg, log: cfg.Logger, core: core,
		propc:   make(chan *proposal, 1),
		opc:     make(chan func()),
		recvc:   make(chan raft.Message, recvBuffer),
		stopc:   make(chan struct{}),
		done:    make(chan struct{}),
		waiting: make(map[uint64]*proposal),
		saved:   hs,
		applied: core.Status().Applied,
		reads:   newReadQueue(cmp.Or(cfg.Raft.ElectionTicks, raft.DefaultElectionTicks)),
		snaps:   snaps,
	}
	n.driver = raft.NewDriver(core, (*host)(n))
	n.publishStatus()
	n.learnSnapshotPeers(snaps.meta)
	n.learnPeers(entries, true)
	if req, ok := cfg.Transport.(ConfChangeRequester); ok {
		req.HandleConfChange(n.answerConfChange)
	}
	cfg.Transport.Receive(n.deliver)
	go n.run()
	return n, nil
}

// Propose replicates cmd and waits until it is applied on this node, then
// returns its log index and the state machine's result. It fails with
// raft.ErrNotLeader on a node that does not lead, raft.ErrTransferring
// during a leadership transfer and raft.ErrProposalTooLarge for a command
// over the core's limit (raft.Config.MaxMsgBytes), none of which
// committed; with raft.ErrProposalDropped once another entry took the
// command's index, which will not commit either. Errors that wrap
// ErrOutcomeUnknown (see there) leave the outcome unknown.
func (n *Node) Propose(ctx context.Context, cmd []byte) (index uint64, value []byte, err error) {
	p := &proposal{cmd: cmd, done: make(chan result, 1)}
	r, err := n.submit(ctx, p)
	return r.index, r.value, err
}

// submit hands p to the driver and waits for its outcome.
func (n *Node) submit(ctx context.Context, p *proposal) (result, error) {
	if err := ctx.Err(); err != nil {
		return result{}, err // select would pick at random among ready cases
	}
	select {
	case n.propc <- p:
	case <-ctx.Done():
		return result{}, ctx.Err()
	case <-n.done:
		return result{}, ErrStopped
	}
	select {
	case r := <-p.done:
		return r, r.err
	case <-ctx.Done():
		return result{}, fmt.Errorf("%w: %w", ErrOutcomeUnknown, ctx.Err())
	case <-n.done:
		return result{}, errStoppedUnknown
	}
}

// Status reports the node's role, term, leader and indexes as of the
// driver's last step.
func (n *Node) Status() Status { return *n.status.Load() }

// Stop stops the driver and waits for it. Pending proposals fail with
// ErrStopped. Stop returns the error that stopped the driver earlier, if
// one did (a storage failure), and nil otherwise.
func (n *Node) Stop() error {
	n.once.Do(func() { close(n.stopc) })
	<-n.done
	return n.err
}

// Done is closed when the driver has stopped.
func (n *Node) Done() <-chan struct{} { return n.done }

// deliver is the transport's way in. It never blocks the transport: when
// the driver is this far behind, dropping is what the network would do.
func (n *Node) deliver(m raft.Message) {
	select {
	case n.recvc <- m:
	default:
		n.log.Debug("raft message dropped: receive buffer full", "from", m.From, "type", m.Type)
	}
}

// publishStatus makes the core's status visible to Status and WaitFor,
// and logs changes of role and term. It runs after every turn of the
// driver, so it allocates only when the status changed.
func (n *Node) publishStatus() {
	st := Status{Status: n.core.Status()}
	// The core learns what was applied only when the Ready that handed
	// it out is done; entries applied early would show late.
	st.Applied = max(st.Applied, n.applied)
	old := n.status.Load()
	if old != nil {
		st.RoleChanges, st.TermChanges, st.LeaderAddr = old.RoleChanges, old.TermChanges, old.LeaderAddr
		if st.Status == old.Status {
			return
		}
		n.noteChanges(old, &st)
	}
	if old == nil || st.Lead != old.Lead || st.LeaderAddr == "" {
		st.LeaderAddr = n.addr(st.Lead)
	}
	n.status.Store(&st)
	n.changedMu.Lock()
	if n.changed != nil {
		close(n.changed)
		n.changed = nil
	}
	n.changedMu.Unlock()
}

// noteChanges counts and logs the changes of role and term from old to st.
func (n *Node) noteChanges(old, st *Status) {
	n.counters.countChanges(old, st)
	if st.Term != old.Term {
		st.TermChanges++
	}
	if st.Role != old.Role {
		st.RoleChanges++
	}
	if st.Term != old.Term || st.Role != old.Role {
		n.log.Info("raft role", "id", st.ID, "role", st.Role, "term", st.Term, "leader", st.Lead,
			"previous_role", old.Role, "previous_term", old.Term)
	}
}

// addr is member id's transport address, if the transport says.
func (n *Node) addr(id uint64) string {
	book, ok := n.cfg.Transport.(AddressBook)
	if !ok || id == 0 || id == n.cfg.Raft.ID {
		return ""
	}
	a, _ := book.Addr(id)
	return a
}

// WaitFor blocks until cond holds for the node's status, ctx ends (its
// error is returned) or the node stops (ErrStopped). Use it to wait for a
// leader or for an index to be applied without polling.
func (n *Node) WaitFor(ctx context.Context, cond func(Status) bool) error {
	for {
		n.changedMu.Lock()
		if n.changed == nil {
			n.changed = make(chan struct{})
		}
		changed := n.changed
		n.changedMu.Unlock()
		if cond(n.Status()) {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		case <-n.done:
			return ErrStopped
		}
	}
}
