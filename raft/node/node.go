package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bifrost-go/bifrost/raft"
)

// Errors a Node returns. Core errors such as raft.ErrNotLeader pass
// through unchanged.
var (
	// ErrStopped: the node was stopped, or stopped itself after a storage
	// failure, before the call finished.
	ErrStopped = errors.New("node: stopped")
)

// StateMachine is the application replicated by the group.
type StateMachine interface {
	// Apply applies one committed command and returns its result, which
	// reaches the caller of Propose when this node proposed it. Apply is
	// called from a single goroutine, in log order, once per index for the
	// life of the Node.
	Apply(index uint64, cmd []byte) []byte
}

// Transport carries raft messages between the members of a group.
type Transport interface {
	// Receive registers the function the transport calls for every
	// message that arrives for this node. Start calls it once, before any
	// Send.
	Receive(deliver func(raft.Message))
	// Send hands messages to the network, best effort: raft survives lost
	// messages, but not a driver that blocks, so Send must not wait for
	// the network. Messages to one peer should arrive in the order sent.
	Send(msgs []raft.Message)
}

// Node runs one member of a raft group: a driver goroutine that feeds the
// pure raft.Core with ticks, messages and proposals, persists what it must,
// sends what it may, and applies what committed. Its methods are safe for
// concurrent use.
type Node struct {
	cfg    Config
	log    *slog.Logger
	propc  chan *proposal
	recvc  chan raft.Message
	stopc  chan struct{}
	done   chan struct{}
	status atomic.Pointer[raft.Status]

	changedMu sync.Mutex    // protects changed
	changed   chan struct{} // closed and replaced when the status changes
	once      sync.Once
	err       error // why the driver stopped; written before done closes

	// Owned by the driver goroutine.
	core    *raft.Core
	waiting map[uint64]*proposal // proposals by log index, until applied
}

// proposal is one Propose call waiting for its entry to apply.
type proposal struct {
	cmd   []byte
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
	core, err := raft.New(raft.Config{
		ID: cfg.ID, Voters: cfg.Voters,
		ElectionTicks: cfg.ElectionTicks, HeartbeatTicks: cfg.HeartbeatTicks,
		MaxInflight: cfg.MaxInflight, Seed: cfg.Seed,
		HardState: hs, Entries: entries, Applied: cfg.Applied,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadConfig, err)
	}
	n := &Node{
		cfg: cfg, log: cfg.Logger, core: core,
		propc:   make(chan *proposal, 1),
		recvc:   make(chan raft.Message, recvBuffer),
		stopc:   make(chan struct{}),
		done:    make(chan struct{}),
		waiting: make(map[uint64]*proposal),
	}
	n.publishStatus()
	cfg.Transport.Receive(n.deliver)
	go n.run()
	return n, nil
}

// Propose replicates cmd and waits until it is applied on this node, then
// returns its log index and the state machine's result. On a node that is
// not the leader it fails with raft.ErrNotLeader. If ctx ends first, the
// command may still commit later: the outcome is unknown to the caller.
func (n *Node) Propose(ctx context.Context, cmd []byte) (index uint64, value []byte, err error) {
	p := &proposal{cmd: cmd, done: make(chan result, 1)}
	select {
	case n.propc <- p:
	case <-ctx.Done():
		return 0, nil, ctx.Err()
	case <-n.done:
		return 0, nil, ErrStopped
	}
	select {
	case r := <-p.done:
		return r.index, r.value, r.err
	case <-ctx.Done():
		return 0, nil, ctx.Err()
	case <-n.done:
		return 0, nil, ErrStopped
	}
}

// Status reports the node's role, term, leader and indexes as of the
// driver's last step.
func (n *Node) Status() raft.Status { return *n.status.Load() }

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

// run is the driver goroutine: it owns core and waiting.
func (n *Node) run() {
	defer close(n.done)
	ticker := time.NewTicker(n.cfg.TickInterval)
	defer ticker.Stop()
	defer n.failWaiting(ErrStopped)
	for {
		select {
		case <-ticker.C:
			n.core.Tick()
		case m := <-n.recvc:
			n.step(m)
		case p := <-n.propc:
			n.propose(p)
		case <-n.stopc:
			return
		}
		if err := n.drainReady(); err != nil {
			n.err = err
			n.log.Error("raft node stopping", "err", err)
			return
		}
	}
}

// step hands m and every other message already waiting to the core, so
// one Ready covers a burst.
func (n *Node) step(m raft.Message) {
	for {
		if err := n.core.Step(m); err != nil {
			n.log.Debug("raft step", "from", m.From, "type", m.Type, "err", err)
		}
		select {
		case m = <-n.recvc:
		default:
			return
		}
	}
}

// propose appends p and every other waiting proposal, so concurrent
// callers share one append, one fsync and one round of messages.
func (n *Node) propose(p *proposal) {
	for {
		n.proposeOne(p)
		select {
		case p = <-n.propc:
		default:
			return
		}
	}
}

func (n *Node) proposeOne(p *proposal) {
	index, term, err := n.core.Propose(p.cmd)
	if err != nil {
		p.done <- result{err: err}
		return
	}
	p.index, p.term = index, term
	n.waiting[index] = p
}

// drainReady handles every Ready the core has: send what may go early,
// persist, send the rest, apply, advance.
func (n *Node) drainReady() error {
	for n.core.HasReady() {
		rd := n.core.Ready()
		if len(rd.Messages) > 0 {
			n.cfg.Transport.Send(rd.Messages)
		}
		if rd.HardStateChanged || len(rd.Entries) > 0 {
			hs := raft.HardState{}
			if rd.HardStateChanged {
				hs = rd.HardState
			}
			if err := n.cfg.Storage.Save(hs, rd.Entries); err != nil {
				return fmt.Errorf("node: save: %w", err)
			}
		}
		if len(rd.AfterPersist) > 0 {
			n.cfg.Transport.Send(rd.AfterPersist)
		}
		n.apply(rd.Committed)
		n.core.Advance(rd)
		n.publishStatus()
	}
	return nil
}

// apply hands committed commands to the state machine and answers the
// proposals they settle. A proposal whose index now holds an entry of
// another term lost its place to a new leader: it was dropped.
func (n *Node) apply(entries []raft.Entry) {
	for _, e := range entries {
		var value []byte
		if e.Type == raft.EntryNormal {
			value = n.cfg.StateMachine.Apply(e.Index, e.Data)
		}
		p, ok := n.waiting[e.Index]
		if !ok {
			continue
		}
		delete(n.waiting, e.Index)
		if p.term != e.Term {
			p.done <- result{err: raft.ErrProposalDropped}
			continue
		}
		p.done <- result{index: e.Index, value: value}
	}
}

func (n *Node) failWaiting(err error) {
	for i, p := range n.waiting {
		p.done <- result{err: err}
		delete(n.waiting, i)
	}
}

func (n *Node) publishStatus() {
	st := n.core.Status()
	if old := n.status.Load(); old != nil && *old == st {
		return
	}
	n.status.Store(&st)
	n.changedMu.Lock()
	if n.changed != nil {
		close(n.changed)
		n.changed = nil
	}
	n.changedMu.Unlock()
}

// WaitFor blocks until cond holds for the node's status, ctx ends (its
// error is returned) or the node stops (ErrStopped). Use it to wait for a
// leader or for an index to be applied without polling.
func (n *Node) WaitFor(ctx context.Context, cond func(raft.Status) bool) error {
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
