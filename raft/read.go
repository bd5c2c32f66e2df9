package raft

// This file holds linearizable reads: ReadIndex (a heartbeat round
// confirms leadership) and LeaseRead (a lease stands in for the round).

// ReadState is the outcome of a read request: once this node has applied
// up to Index, a read of its state machine reflects every write that
// completed before the request was made. Index 0 means the read was
// refused: leadership was lost before the read could be confirmed.
type ReadState struct {
	ID    uint64 // the request's id, as passed to ReadIndex or LeaseRead
	Index uint64 // the read index; 0 if refused
}

// readRequest is a read the leader has accepted.
type readRequest struct {
	id    uint64
	from  uint64 // the node that asked: this one, or a follower that forwarded
	index uint64 // the read index: the commit index when accepted
	round uint64 // the heartbeat round whose confirmation serves the read
}

// roundTick says that heartbeat rounds from round on were sent at tick.
type roundTick struct{ tick, round uint64 }

// ReadIndex asks for a linearizable read (thesis 6.4). The leader takes
// its commit index as the read index and confirms that it still leads by
// a round of heartbeats answered by a quorum. A round confirms every read
// queued before it was sent; at most one round is out at a time, so the
// reads that arrive meanwhile share the next one. A leader that has not yet committed an entry of its
// own term holds reads until it has (its commit index may lag the last
// leader's until then). The outcome comes in Ready.ReadStates under id.
//
// id names the request. The caller must never reuse one, not even to
// retry: a late answer to the old request would be taken for the new one.
//
// A follower forwards the request to the leader it knows (MsgReadIndex)
// and reports the leader's answer in its own Ready; a node that knows no
// leader returns ErrNotLeader. A forwarded request or its answer may be
// lost: the caller gives up after a timeout of its own and retries with a
// new id.
func (c *Core) ReadIndex(id uint64) error {
	switch {
	case c.role == RoleLeader:
		c.acceptRead(readRequest{id: id, from: c.id})
		return nil
	case c.role == RoleFollower && c.lead != 0:
		c.send(Message{Type: MsgReadIndex, To: c.lead, Term: c.term, Context: id})
		return nil
	}
	return ErrNotLeader
}

// LeaseRead is ReadIndex without the heartbeat round while the leader
// holds its lease: the read is served at once, in the next Ready, with
// the commit index as read index. It needs Config.LeaseReads; without it,
// outside the lease, on a follower (which forwards a ReadIndex request)
// and during a leadership transfer it behaves as ReadIndex.
//
// The lease holds while a quorum, the leader included, answered within
// the last ElectionTicks-LeaseMarginTicks ticks a heartbeat sent at that
// time or later. Such a follower will not vote for another candidate for
// ElectionTicks of its own ticks after receiving it (thesis 4.2.3), so no
// other leader can exist before the lease runs out. That rests on an
// assumption that the rest of raft does not make: clocks are bounded in
// drift, so that ElectionTicks-LeaseMarginTicks ticks of the leader never
// last longer than ElectionTicks-1 ticks of a follower. A paused process
// or a clock that jumps breaks it; prefer ReadIndex unless reads must
// avoid the round trip. A leader that asked for a leadership transfer
// (MsgTimeoutNow lets the target bypass that rule) holds no lease for the
// rest of its term.
func (c *Core) LeaseRead(id uint64) error {
	if c.role != RoleLeader || !c.leaseHolds() || !c.committedInTerm() {
		return c.ReadIndex(id)
	}
	c.readStates = append(c.readStates, ReadState{ID: id, Index: c.log.committed})
	return nil
}

// acceptRead queues r until the leader has committed an entry of its
// term, then until a heartbeat round sent from now on is confirmed.
func (c *Core) acceptRead(r readRequest) {
	if !c.committedInTerm() {
		c.readsHeld = append(c.readsHeld, r)
		return
	}
	r.index, r.round = c.log.committed, c.round+1
	c.reads = append(c.reads, r)
}

// committedInTerm reports whether the leader committed an entry of its
// term. Only then is its commit index at least every earlier leader's
// (Figure 8 and etcd #7331): no read is served before.
func (c *Core) committedInTerm() bool {
	return c.log.matchTerm(c.log.committed, c.term)
}

// flushReads moves the leader's reads along: held reads are accepted once
// the term's first entry committed, a round goes out for reads waiting for
// one unless one is already out, and reads whose round a quorum confirmed
// are served.
func (c *Core) flushReads() {
	if len(c.readsHeld) > 0 && c.committedInTerm() {
		held := c.readsHeld
		c.readsHeld = nil
		for _, r := range held {
			c.acceptRead(r)
		}
	}
	confirmed := c.confirmedRound()
	if n := len(c.reads); n > 0 && c.reads[n-1].round > c.round && confirmed == c.round {
		// No round is out: send one. Otherwise these reads wait for the
		// answers to it, meanwhile more reads join them, and then one
		// round serves them all. A lost round is replaced by the next
		// periodic heartbeat.
		c.bcastHeartbeat()
		confirmed = c.confirmedRound()
	}
	i := 0
	for ; i < len(c.reads) && c.reads[i].round <= confirmed; i++ {
		c.serveRead(c.reads[i].id, c.reads[i].from, c.reads[i].index)
	}
	c.reads = c.reads[i:]
}

// confirmedRound is the highest heartbeat round a quorum answered, the
// leader (which answers its own rounds at once) included.
func (c *Core) confirmedRound() uint64 {
	return c.quorumValue(c.round, func(pr *progress) uint64 { return pr.ackedRound })
}

// serveRead answers a read with index (0: refused): in this node's Ready
// for its own reads, to the follower for a forwarded one.
func (c *Core) serveRead(id, from, index uint64) {
	if from == c.id {
		c.readStates = append(c.readStates, ReadState{ID: id, Index: index})
		return
	}
	c.send(Message{Type: MsgReadIndexResp, To: from, Term: c.term, Index: index, Context: id, Reject: index == 0})
}

// dropReads refuses every read still waiting, for a leader that steps
// down: a new round could no longer confirm them.
func (c *Core) dropReads() {
	for _, rs := range [2][]readRequest{c.readsHeld, c.reads} {
		for _, r := range rs {
			c.serveRead(r.id, r.from, 0)
		}
	}
	c.reads, c.readsHeld = nil, nil
}

// handleReadIndex is the leader's side of a follower's forwarded read.
func (c *Core) handleReadIndex(m Message) {
	if c.role != RoleLeader {
		c.send(Message{Type: MsgReadIndexResp, To: m.From, Term: c.term, Context: m.Context, Reject: true})
		return
	}
	c.acceptRead(readRequest{id: m.Context, from: m.From})
}

// handleReadIndexResp reports the leader's answer to a forwarded read.
func (c *Core) handleReadIndexResp(m Message) {
	index := m.Index
	if m.Reject {
		index = 0
	}
	c.readStates = append(c.readStates, ReadState{ID: m.Context, Index: index})
}

// ackRound records a follower's answer to heartbeat round r of this term.
func (c *Core) ackRound(pr *progress, r uint64) {
	if r <= pr.ackedRound || r > c.round {
		return // stale, or not a round this leader sent
	}
	pr.ackedRound = r
	if t, ok := c.roundSentAt(r); ok {
		pr.ackedAt = max(pr.ackedAt, t)
	}
}

// recordRound notes the tick at which round c.round goes out. Only rounds
// recent enough to matter for the lease are kept.
func (c *Core) recordRound() {
	if !c.cfg.LeaseReads {
		return
	}
	if n := len(c.roundTicks); n == 0 || c.roundTicks[n-1].tick != c.ticks {
		c.roundTicks = append(c.roundTicks, roundTick{tick: c.ticks, round: c.round})
	}
	i := 0
	for i < len(c.roundTicks)-1 && c.roundTicks[i].tick+uint64(c.cfg.ElectionTicks) <= c.ticks {
		i++
	}
	c.roundTicks = c.roundTicks[i:]
}

// roundSentAt returns the tick at which round r was sent, if still known.
func (c *Core) roundSentAt(r uint64) (uint64, bool) {
	for i := len(c.roundTicks) - 1; i >= 0; i-- {
		if c.roundTicks[i].round <= r {
			return c.roundTicks[i].tick, true
		}
	}
	return 0, false
}

// leaseHolds reports whether the leader may serve a read without a round;
// see LeaseRead.
func (c *Core) leaseHolds() bool {
	if !c.cfg.LeaseReads || c.leaseBroken || c.transferee != 0 {
		return false
	}
	lease := uint64(c.cfg.ElectionTicks - c.cfg.LeaseMarginTicks)
	active := c.selfVote()
	c.peers(func(id uint64) {
		pr := c.progress[id]
		if pr.ackedAt != 0 && c.ticks-pr.ackedAt < lease {
			active++
		}
	})
	return active >= c.quorum()
}
