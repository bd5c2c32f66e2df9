package raft

// This file holds term handling and leader election: pre-vote, vote, the
// up-to-date check and the disruptive-server rules.

// stepTerm applies the term rules to m and reports whether m should be
// handled further.
func (c *Core) stepTerm(m Message) bool {
	switch {
	case m.Term > c.term:
		return c.stepHigherTerm(m)
	case m.Term < c.term:
		c.answerStale(m)
		return false
	}
	return true
}

// stepHigherTerm handles a message from a term beyond this node's.
func (c *Core) stepHigherTerm(m Message) bool {
	transfer := m.Type == MsgVote && m.Transfer
	if (m.Type == MsgPreVote || m.Type == MsgVote) && !transfer && c.inLease() {
		// Thesis 4.2.3: a leader was heard from within the minimum
		// election timeout, so this candidate is disrupting a healthy
		// group (it may be partitioned from the leader only). Neither
		// adopt its term nor vote. A transfer's candidate is exempt: the
		// leader asked it to campaign (MsgTimeoutNow).
		return false
	}
	switch {
	case m.Type == MsgPreVote:
		// A pre-vote carries the term the sender would campaign in;
		// answering it must change nothing here.
		return true
	case m.Type == MsgPreVoteResp && !m.Reject:
		// A granted pre-vote carries the term we would campaign in.
		return true
	}
	var lead uint64
	if m.Type == MsgApp || m.Type == MsgHeartbeat {
		lead = m.From
	}
	c.becomeFollower(m.Term, lead)
	return true
}

// answerStale replies to some messages of an older term so the sender
// learns the current term: a deposed leader steps down, a candidate that
// cannot win stops asking. Anything else from an old term is dropped.
func (c *Core) answerStale(m Message) {
	switch m.Type {
	case MsgApp, MsgHeartbeat:
		// A heartbeat answer, not an append answer: should it reach the
		// sender only after the sender reached this term, it then claims
		// nothing about the logs.
		c.send(Message{Type: MsgHeartbeatResp, To: m.From, Term: c.term})
	case MsgPreVote:
		c.send(Message{Type: MsgPreVoteResp, To: m.From, Term: c.term, Reject: true})
	case MsgVote:
		c.send(Message{Type: MsgVoteResp, To: m.From, Term: c.term, Reject: true})
	case MsgReadIndex:
		// The asker follows a deposed leader; refuse so it fails fast.
		c.send(Message{Type: MsgReadIndexResp, To: m.From, Term: c.term, Context: m.Context, Reject: true})
	}
}

// inLease reports whether this node heard from a current leader (or is
// one) within the minimum election timeout. A leader counts itself as
// heard from: while check-quorum keeps it leading, a quorum follows it.
func (c *Core) inLease() bool {
	if c.role == RoleLeader {
		return true
	}
	if c.cfg.LeaseReads && c.ticks < uint64(c.cfg.ElectionTicks) {
		// Just started: a leader's lease may count on this node's
		// earlier promise not to vote (see Config.LeaseReads).
		return true
	}
	return c.lead != 0 && c.electionElapsed < c.cfg.ElectionTicks
}

// handlePreVote answers a pre-vote without touching term, vote or timers:
// granting it promises nothing.
func (c *Core) handlePreVote(m Message) {
	grant := m.Term > c.term && c.log.isUpToDate(m.Index, m.LogTerm)
	resp := Message{Type: MsgPreVoteResp, To: m.From, Term: c.term, Reject: !grant}
	if grant {
		resp.Term = m.Term
	}
	c.send(resp)
}

// handleVote answers a vote request of the current term. A node votes at
// most once per term (the vote is in the hard state, persisted before the
// answer leaves) and only for a log at least as up to date as its own.
//
// A node answers whether or not it is a voter in its own view: a learner
// whose promotion has not reached it yet may be the vote a candidate
// needs, and the candidate counts only the votes of its own voters.
func (c *Core) handleVote(m Message) {
	canVote := c.vote == m.From || (c.vote == 0 && c.lead == 0)
	grant := canVote && c.log.isUpToDate(m.Index, m.LogTerm)
	if grant {
		c.vote = m.From
		c.electionElapsed = 0 // paper 5.2: granting a vote restarts the timer
	}
	c.send(Message{Type: MsgVoteResp, To: m.From, Term: c.term, Reject: !grant})
}

// handleVoteResp counts an answer to this node's campaign.
func (c *Core) handleVoteResp(m Message) {
	switch {
	case m.Type == MsgPreVoteResp && c.role != RolePreCandidate,
		m.Type == MsgVoteResp && c.role != RoleCandidate:
		return // an answer to a campaign that is over
	case m.Type == MsgPreVoteResp && !m.Reject && m.Term != c.term+1:
		return // granted for another round
	}
	c.votes[m.From] = !m.Reject
	granted, rejected := c.tally()
	switch {
	case granted >= c.quorum():
		c.handleWin(c.role == RolePreCandidate)
	case rejected >= c.quorum():
		c.becomeFollower(c.term, 0)
	}
}

// tally counts the grants and rejections of this round by voters, self
// included if it votes: a node campaigning to commit its own removal
// (see promotable) does not count itself.
func (c *Core) tally() (granted, rejected int) {
	for id, ok := range c.votes {
		switch {
		case !c.isVoter(id):
		case ok:
			granted++
		default:
			rejected++
		}
	}
	return granted, rejected
}

// campaign starts a pre-vote round (pre) or an election.
func (c *Core) campaign(pre bool) { c.campaignFor(pre, false) }

// campaignFor starts a pre-vote round (pre) or an election; transfer
// marks the vote requests of an election the leader asked for.
func (c *Core) campaignFor(pre, transfer bool) {
	typ, term := MsgVote, c.term+1
	if pre {
		c.becomePreCandidate()
		typ = MsgPreVote
	} else {
		c.becomeCandidate()
		term = c.term
	}
	if granted, _ := c.tally(); granted >= c.quorum() {
		c.handleWin(pre) // a group of one
		return
	}
	c.peers(func(id uint64) {
		c.send(Message{Type: typ, To: id, Term: term, Index: c.log.lastIndex(), LogTerm: c.log.lastTerm(), Transfer: transfer})
	})
}

// handleWin moves on from a won round.
func (c *Core) handleWin(pre bool) {
	if pre {
		c.campaign(false)
		return
	}
	c.becomeLeader()
}

// reset starts a new role in term: fresh timers, a fresh randomized
// election timeout, no campaign or replication state.
func (c *Core) reset(term uint64) {
	if c.term != term {
		c.term, c.vote = term, 0
		c.dropStale()
	}
	c.electionElapsed, c.heartbeatElapsed = 0, 0
	c.randomizedTimeout = c.cfg.ElectionTicks + c.rng.IntN(c.cfg.ElectionTicks)
	c.votes, c.progress = nil, nil
	c.dropReads()
	c.round, c.roundTicks = 0, nil
	c.transferee, c.transferElapsed, c.leaseBroken = 0, 0, false
}

func (c *Core) becomeFollower(term, lead uint64) {
	c.reset(term)
	c.role, c.lead = RoleFollower, lead
}

// becomePreCandidate keeps term and vote: a pre-vote round must leave no
// trace if it fails.
func (c *Core) becomePreCandidate() {
	c.reset(c.term)
	c.role, c.lead = RolePreCandidate, 0
	c.votes = map[uint64]bool{c.id: true}
}

func (c *Core) becomeCandidate() {
	c.reset(c.term + 1)
	c.role, c.lead, c.vote = RoleCandidate, 0, c.id
	c.votes = map[uint64]bool{c.id: true}
}

// becomeLeader starts replicating with every follower in probe, and
// appends a no-op so that entries of earlier terms commit promptly
// (Figure 8: they cannot commit by counting alone).
func (c *Core) becomeLeader() {
	c.reset(c.term)
	c.role, c.lead = RoleLeader, c.id
	next := c.log.lastIndex() + 1
	c.progress = make(map[uint64]*progress, len(c.voters))
	c.members(func(id uint64) { c.progress[id] = newProgress(next, c.ticks) })
	c.log.append(Entry{Index: next, Term: c.term, Type: EntryNoop})
}

// tickLeader checks the quorum and counts towards the next heartbeat.
func (c *Core) tickLeader() {
	if !c.checkQuorum() || c.writeStalled() {
		c.becomeFollower(c.term, 0)
		return
	}
	c.tickTransfer()
	c.heartbeatElapsed++
	if c.heartbeatElapsed >= c.cfg.HeartbeatTicks {
		c.heartbeatElapsed = 0
		c.bcastHeartbeat()
	}
}

// writeStalled reports whether this leader's write has been in flight for
// longer than WriteStallTicks: its disk hangs, and it could commit
// nothing of its own while it held the group.
func (c *Core) writeStalled() bool {
	return c.cfg.WriteStallTicks > 0 && c.writeTicks >= c.cfg.WriteStallTicks
}

// checkQuorum reports whether a quorum (this node included) answered
// within the last ElectionTicks ticks. A leader that fails it steps down:
// it cannot commit, and its clients should find another.
func (c *Core) checkQuorum() bool {
	if c.cfg.DisableCheckQuorum {
		return true
	}
	active := c.selfVote()
	c.peers(func(id uint64) {
		if c.ticks-c.progress[id].heardAt < uint64(c.cfg.ElectionTicks) {
			active++
		}
	})
	return active >= c.quorum()
}
