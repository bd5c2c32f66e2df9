package node

import (
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/bifrost-go/bifrost/raft"
)

// AsyncStorage is an optional Storage capability: writing without waiting
// for the disk, and making everything written so far durable later. With
// it the driver writes each Ready, hands the fsync to a goroutine of its
// own and goes on stepping messages and proposals until the disk is done;
// they form the next Ready, so concurrent proposals share one fsync. A
// Storage without it is saved synchronously (Save) on the driver.
type AsyncStorage interface {
	Storage
	// Append writes hs (unless zero) and entries as Save does, without
	// waiting for them to be durable.
	Append(hs raft.HardState, entries []raft.Entry) error
	// Sync makes everything appended so far durable. The node calls
	// Append and Sync from a goroutine of its own, and Append and Compact
	// from its driver meanwhile, one write at a time.
	Sync() error
}

// run is the driver goroutine: it owns the core, the raft.Driver and
// waiting. Each turn takes one input and everything else already waiting
// (a burst becomes one batch), then runs the Ready protocol.
func (n *Node) run() {
	defer close(n.done)
	ticker := time.NewTicker(n.cfg.TickInterval)
	defer ticker.Stop()
	defer n.failWaiting(errStoppedUnknown)
	defer func() {
		if err := n.finishSnapshotSave(); err != nil && n.err == nil {
			n.log.Error("raft node stopping: snapshot save", "err", err)
		}
	}()
	if async, ok := n.cfg.Storage.(AsyncStorage); ok {
		n.syncReq, n.synced = make(chan write, 1), make(chan error, 1)
		var wg sync.WaitGroup
		wg.Go(func() { n.syncLoop(async) })
		defer wg.Wait()
		defer close(n.syncReq)
	}
	for {
		if err := n.afterInput(); err != nil {
			n.fail(err)
			return
		}
		stop, err := n.input(ticker.C)
		if err != nil {
			n.fail(err)
		}
		if stop || err != nil {
			return
		}
		n.gather()
		n.gatherMoreProposals()
	}
}

// input waits for one input and steps it into the core. It reports
// whether the node is to stop.
func (n *Node) input(tick <-chan time.Time) (stop bool, err error) {
	var synced <-chan error
	if n.driver.Writing() {
		synced = n.synced
	}
	select {
	case <-tick:
		n.core.Tick()
		n.ticks++
		n.reads.expire(n.ticks)
	case m := <-n.recvc:
		n.stepOne(m)
	case p := <-n.propc:
		n.proposeOne(p)
	case op := <-n.opc:
		n.runOps(op)
	case sv := <-n.snaps.saving:
		return false, n.snapshotSaved(sv)
	case err := <-synced:
		if err != nil {
			return false, fmt.Errorf("node: save: %w", err)
		}
		return false, n.driver.Synced()
	case <-n.stopc:
		return true, nil
	}
	return false, nil
}

// afterInput runs the Ready protocol as far as it goes, compacts into a
// held snapshot or takes one if due, answers the proposals a lost leadership settles, and
// publishes the status.
func (n *Node) afterInput() error {
	if err := n.driver.Run(); err != nil {
		return err
	}
	if err := n.compactHeld(); err != nil {
		return err
	}
	if err := n.maybeSnapshot(); err != nil {
		return err
	}
	n.failDeposed()
	n.publishStatus()
	return nil
}

func (n *Node) fail(err error) {
	n.err = err
	n.log.Error("raft node stopping", "err", err)
}

// write is a Ready's hard state and entries, for the sync goroutine.
type write struct {
	hs      raft.HardState
	entries []raft.Entry
}

// syncLoop writes and makes durable what the driver hands it, so that the
// driver goes on ticking, heartbeating and taking messages and proposals
// while the disk works: writing megabytes of entries can take longer than
// an election timeout on its own, before the fsync.
func (n *Node) syncLoop(s AsyncStorage) {
	for w := range n.syncReq {
		err := s.Append(w.hs, w.entries)
		if err == nil {
			err = s.Sync()
		}
		n.synced <- err
	}
}

// maxGather bounds how many inputs one turn of the driver takes before it
// handles a Ready, so a flood of messages cannot starve persistence and
// apply for long.
const maxGather = 4096

// gather takes every message and proposal already waiting, so one Ready
// covers a whole burst: concurrent callers share one append, one fsync and
// one round of messages, and follower answers that arrived meanwhile
// commit in the same turn.
func (n *Node) gather() {
	for range maxGather {
		select {
		case m := <-n.recvc:
			n.stepOne(m)
		case p := <-n.propc:
			n.proposeOne(p)
		default:
			return
		}
	}
}

// gatherMoreProposals lets the callers that this turn answered propose
// again before the Ready goes out, if the turn took a proposal while
// others are in flight: the goroutines woken by apply are runnable but
// have not run yet, and one yield lets their next commands join this
// batch rather than form a Ready, an append and a round of messages of
// their own. A lone caller has no one to wait for, so it does not yield.
func (n *Node) gatherMoreProposals() {
	more := n.proposed && len(n.waiting) >= 2
	n.proposed = false
	if more {
		runtime.Gosched()
		n.gather()
		n.proposed = false // these join the batch already under way
	}
}

func (n *Node) stepOne(m raft.Message) {
	if err := n.core.Step(m); err != nil {
		n.log.Debug("raft step", "from", m.From, "type", m.Type, "err", err)
	}
}

func (n *Node) proposeOne(p *proposal) {
	var index, term uint64
	var err error
	if p.conf != nil {
		index, term, err = n.core.ProposeConfChange(*p.conf)
	} else {
		index, term, err = n.core.Propose(p.cmd)
	}
	if err != nil {
		p.done <- result{err: err}
		return
	}
	p.index, p.term = index, term
	n.waiting[index] = p
	n.proposed = true
	n.counters.proposals.Inc()
}

// host is the Node as the raft.Driver sees it: the transport, the
// storage and the state machine. Its methods run on the driver goroutine.
type host Node

// Take tells the transport about members the Ready's entries add, before
// the messages to them go.
func (h *host) Take(rd *raft.Ready) { (*Node)(h).learnPeers(rd.Entries, false) }

func (h *host) Send(msgs []raft.Message) { h.cfg.Transport.Send(msgs) }

func (h *host) SendSnapshot(reqs []raft.Message) { (*Node)(h).sendSnapshot(reqs) }

// Write stores a snapshot arriving from the leader, then the hard state
// and entries. With an AsyncStorage a write that needs an fsync runs on
// the sync goroutine, and the driver hears of it in input.
func (h *host) Write(rd *raft.Ready) (durable bool, err error) {
	n := (*Node)(h)
	if err := n.receiveSnapshot(*rd); err != nil {
		return false, err
	}
	w, err := n.persist(*rd)
	if err != nil {
		return false, fmt.Errorf("node: save: %w", err)
	}
	if w != nil {
		n.syncReq <- *w
	}
	return w == nil, nil
}

func (h *host) Restore(meta raft.SnapshotMeta) error { return (*Node)(h).restoreSnapshot(meta) }

func (h *host) Apply(entries []raft.Entry) error {
	n := (*Node)(h)
	n.apply(entries)
	n.reads.release(n.applied)
	return nil
}

// Reads confirms the reads and releases those whose index is applied
// already; the others wait for Apply.
func (h *host) Reads(states []raft.ReadState) {
	h.reads.confirm(states)
	h.reads.release(h.applied)
}

// persist writes the Ready's hard state and entries, or returns them for
// the sync goroutine to write and make durable. Entries, term and vote
// must be durable before anyone hears of them; the commit index need not
// be, since a restarted node learns it again from the leader, so a Ready
// that only moves the commit index is written here without an fsync.
func (n *Node) persist(rd raft.Ready) (*write, error) {
	if !rd.HardStateChanged && len(rd.Entries) == 0 {
		return nil, nil
	}
	var hs raft.HardState
	mustSync := len(rd.Entries) > 0
	if rd.HardStateChanged {
		hs = rd.HardState
		mustSync = mustSync || hs.Term != n.saved.Term || hs.Vote != n.saved.Vote
		n.saved = hs
	}
	async, ok := n.cfg.Storage.(AsyncStorage)
	switch {
	case !ok:
		return nil, n.cfg.Storage.Save(hs, rd.Entries)
	case !mustSync:
		return nil, async.Append(hs, rd.Entries)
	}
	return &write{hs, rd.Entries}, nil
}

// apply hands committed entries to the state machine and answers the
// proposals they settle. A proposal whose index now holds an entry of
// another term lost its place to a new leader: it was dropped. The
// status is published before the answers go, so a caller that learns
// its command applied sees it applied in Status too.
func (n *Node) apply(entries []raft.Entry) {
	n.counters.applied.Add(uint64(len(entries)))
	settled := n.settled[:0]
	for _, e := range entries {
		value := n.cfg.StateMachine.Apply(e)
		n.applied = e.Index
		n.snaps.countApplied(e)
		if e.Type == raft.EntryConfig {
			n.learnPeers([]raft.Entry{e}, true)
		}
		p, ok := n.waiting[e.Index]
		if !ok {
			continue
		}
		delete(n.waiting, e.Index)
		r := result{index: e.Index, value: value}
		if p.term != e.Term {
			r = result{err: raft.ErrProposalDropped}
		}
		settled = append(settled, settledProposal{p, r})
	}
	if len(settled) > 0 {
		n.publishStatus()
		for _, s := range settled {
			s.p.done <- s.r
		}
	}
	clear(settled) // drop the references to answered proposals
	n.settled = settled[:0]
}

// settledProposal is a proposal and its answer, held back by apply until
// the status shows the entries applied.
type settledProposal struct {
	p *proposal
	r result
}

// failDeposed answers, once this node no longer leads, the proposals it
// made as leader that have not committed here: ErrLeadershipLost, the
// outcome being unknown. Waiting on would be honest but could last
// forever: the answer comes when the log reaches the proposal's index,
// and a new leader with a shorter log reaches it only with new commands,
// which may never come (callers all waiting here propose none). A
// committed proposal is left to apply, which settles it for sure.
func (n *Node) failDeposed() {
	if len(n.waiting) == 0 {
		return
	}
	st := n.core.Status()
	if st.Role == raft.RoleLeader {
		return
	}
	for i, p := range n.waiting {
		if i > st.Commit {
			p.done <- result{err: ErrLeadershipLost}
			delete(n.waiting, i)
		}
	}
}

func (n *Node) failWaiting(err error) {
	for i, p := range n.waiting {
		p.done <- result{err: err}
		delete(n.waiting, i)
	}
}
