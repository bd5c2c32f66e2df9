package raft

import "slices"

// This file holds log replication: the leader's sending and commit rule,
// the follower's log-matching check and the fast conflict backup.

// flush sends every follower what it is owed: new entries (pipelined in
// replicate, one probe at a time in probe) and a commit index it has not
// seen yet; then it moves the reads on (flushReads).
func (c *Core) flush() {
	if c.role != RoleLeader {
		return
	}
	c.members(func(id uint64) {
		pr := c.progress[id]
		for c.sendAppend(id, pr, false) {
		}
		if c.owesCommit(pr) {
			c.sendAppend(id, pr, true)
		}
	})
	c.flushReads()
}

// owesCommit reports whether a follower should get a MsgApp with no entries
// just to learn a new commit index. Not while appends to it are in flight:
// under load the next MsgApp carries the commit index anyway, and an empty
// one per acknowledgement would double the messages. A heartbeat carries
// it within a tick if no MsgApp comes.
func (c *Core) owesCommit(pr *progress) bool {
	return min(c.log.committed, pr.next-1) > pr.sentCommit &&
		!(pr.state == stateReplicate && len(pr.inflight) > 0)
}

// sendAppend sends one MsgApp starting at pr.next, unless the follower is
// paused or, when empty is false, there is nothing new to send. It reports
// whether it sent.
func (c *Core) sendAppend(to uint64, pr *progress, empty bool) bool {
	prev := pr.next - 1
	prevTerm, ok := c.log.term(prev)
	if pr.state == stateSnapshot || !ok && prev < c.log.offset {
		return c.sendSnapshot(to, pr) // the follower needs what was compacted
	}
	if !ok {
		panic("raft: follower's next index is past the leader's log")
	}
	if pr.paused(c.cfg.MaxInflight) {
		return false
	}
	// Only entries a Ready handed out: they never leave before the write
	// that makes them durable here has begun.
	ents := c.log.batch(pr.next, c.log.handed, c.cfg.MaxMsgEntries, c.cfg.MaxMsgBytes)
	if len(ents) == 0 && !empty {
		return false
	}
	last := prev + uint64(len(ents))
	commit := min(c.log.committed, last)
	c.send(Message{Type: MsgApp, To: to, Term: c.term, Index: prev, LogTerm: prevTerm, Entries: ents, Commit: commit})
	pr.sentCommit = max(pr.sentCommit, commit)
	if len(ents) > 0 || pr.state == stateProbe {
		pr.sentEntries(last)
	}
	return true
}

// bcastHeartbeat tells every follower the leader is alive. Heartbeats carry
// no entries (a healthy follower gets each entry once); their commit is
// capped at what the follower is known to hold. Each broadcast is a new
// round, numbered in Context: a quorum's answers to it confirm the reads
// queued before it and renew the lease.
func (c *Core) bcastHeartbeat() {
	c.round++
	c.recordRound()
	c.members(func(id uint64) {
		commit := min(c.log.committed, c.progress[id].match)
		c.send(Message{Type: MsgHeartbeat, To: id, Term: c.term, Commit: commit, Context: c.round})
	})
}

// maybeCommit raises the commit index to the highest index a quorum holds,
// counting the leader's own log only as far as it is durable. It commits
// only an entry of the current term (Figure 8); earlier ones commit with
// it.
func (c *Core) maybeCommit() {
	n := c.quorumValue(c.log.stable, func(pr *progress) uint64 { return pr.match })
	if n <= c.log.committed || !c.log.matchTerm(n, c.term) {
		return
	}
	c.log.commitTo(n)
	c.maybeStepDownRemoved()
}

// quorumValue returns the highest value that a quorum of voters has
// reached: self for this node, of(progress) for the others. Commit and
// read confirmation both rest on it.
func (c *Core) quorumValue(self uint64, of func(*progress) uint64) uint64 {
	c.matchBuf = c.matchBuf[:0]
	for _, id := range c.voters {
		if id == c.id {
			c.matchBuf = append(c.matchBuf, self)
		} else {
			c.matchBuf = append(c.matchBuf, of(c.progress[id]))
		}
	}
	slices.Sort(c.matchBuf)
	return c.matchBuf[len(c.matchBuf)-c.quorum()]
}

// handleAppend is the follower's side of MsgApp from the leader of the
// current term.
func (c *Core) handleAppend(m Message) {
	if !wellFormed(m) || !c.followLeader(m.From) {
		return
	}
	m = c.skipCommitted(m)
	if last, ok := c.log.maybeAppend(m.Index, m.LogTerm, m.Commit, m.Entries); ok {
		c.appendedConf(m.Entries)
		c.send(Message{Type: MsgAppResp, To: m.From, Term: c.term, Index: last})
		return
	}
	hint, hintTerm := c.log.findConflictByTerm(m.Index, m.LogTerm)
	c.send(Message{Type: MsgAppResp, To: m.From, Term: c.term, Index: m.Index,
		Reject: true, RejectHint: hint, LogTerm: hintTerm})
}

// wellFormed reports whether a MsgApp's entries follow its Index without a
// gap and with terms that never fall and never pass the message's term.
// Anything else is a sender's bug that must not reach the log.
func wellFormed(m Message) bool {
	prevTerm := m.LogTerm
	for i, e := range m.Entries {
		if e.Index != m.Index+uint64(i)+1 || e.Term < prevTerm || e.Term > m.Term {
			return false
		}
		prevTerm = e.Term
	}
	return true
}

// followLeader records a message from the leader of the current term,
// which restarts the election timer. It reports false on a leader, which
// can only get such a message through a bug elsewhere (one leader a term).
func (c *Core) followLeader(from uint64) bool {
	if c.role == RoleLeader {
		return false
	}
	if c.role != RoleFollower {
		c.becomeFollower(c.term, from)
	}
	c.lead = from
	c.electionElapsed = 0
	return true
}

// skipCommitted drops from a MsgApp the entries at or below the commit
// index. Committed entries are the same on every log (the leader holds
// them all), so the check can start from the commit index, and a delayed
// MsgApp that starts below it still delivers its newer entries.
func (c *Core) skipCommitted(m Message) Message {
	commit := c.log.committed
	if m.Index >= commit {
		return m
	}
	skip := min(commit-m.Index, uint64(len(m.Entries)))
	m.Entries = m.Entries[skip:]
	m.Index = commit
	m.LogTerm, _ = c.log.term(commit)
	return m
}

// handleAppendResp is the leader's side of a follower's answer.
func (c *Core) handleAppendResp(m Message) {
	pr := c.progress[m.From]
	if c.role != RoleLeader || pr == nil || m.Index > c.log.lastIndex() {
		return // the last: no follower can hold more than its leader sent
	}
	pr.heardAt = c.ticks
	if m.Reject {
		c.handleAppendReject(m, pr)
		return
	}
	if !pr.update(m.Index) {
		return
	}
	if pr.state == stateProbe || pr.state == stateSnapshot && pr.match >= pr.snap.Index {
		pr.becomeReplicate()
	}
	c.maybeCommit()
	if c.role != RoleLeader {
		return // its own removal committed
	}
	if m.From == c.transferee {
		c.maybeTimeoutNow()
	}
	c.maybePromote(m.From, pr)
}

// handleAppendReject backs the follower up after a failed log-matching
// check, skipping a whole term the follower does not share per round trip.
func (c *Core) handleAppendReject(m Message, pr *progress) {
	stale := m.Index <= pr.match || pr.state == stateSnapshot
	if pr.state == stateProbe {
		stale = m.Index != pr.next-1
	}
	if stale {
		return // an answer to a MsgApp sent before a later decision
	}
	next, _ := c.log.findConflictByTerm(m.RejectHint, m.LogTerm)
	pr.becomeProbe(min(next+1, m.Index))
}

// handleHeartbeat is the follower's side of a heartbeat: it keeps the
// follower from campaigning and may raise its commit index, but never
// past its own log.
func (c *Core) handleHeartbeat(m Message) {
	if !c.followLeader(m.From) {
		return
	}
	c.log.commitTo(min(m.Commit, c.log.lastIndex()))
	c.send(Message{Type: MsgHeartbeatResp, To: m.From, Term: c.term, Context: m.Context})
}

// handleHeartbeatResp resumes sending to a follower that answered: a probe
// whose MsgApp may have been lost goes again, and a replicating follower
// whose match has not moved since the last answer gets an empty MsgApp,
// whose rejection reveals a lost MsgApp without resending any entry.
func (c *Core) handleHeartbeatResp(m Message) {
	pr := c.progress[m.From]
	if c.role != RoleLeader || pr == nil {
		return
	}
	pr.heardAt = c.ticks
	c.ackRound(pr, m.Context)
	c.maybePromote(m.From, pr)
	if pr.state != stateSnapshot {
		pr.probeSent = false // a chunk is resent on its own clock (resumeSnapshot)
	}
	stalled := pr.match < c.log.lastIndex() && pr.match == pr.matchAtHeartbeat
	pr.matchAtHeartbeat = pr.match
	switch {
	case pr.state == stateSnapshot:
		c.resumeSnapshot(m.From, pr)
	case pr.state == stateProbe:
		c.sendAppend(m.From, pr, true)
	case stalled:
		if len(pr.inflight) > 0 && pr.paused(c.cfg.MaxInflight) {
			pr.inflight = pr.inflight[1:]
		}
		c.sendAppend(m.From, pr, true)
	}
}
