package raft

import "fmt"

// This file holds leadership transfer (thesis 3.10): the leader stops
// taking proposals, brings the target's log up to date and tells it to
// campaign at once with MsgTimeoutNow.

// TransferLeadership hands this leader's leadership to node to, or, when
// to is 0, to the follower with the most of the leader's log (the lowest
// id among equals). Until the transfer ends Propose fails with
// ErrTransferring, so the target can catch up with a log that stops
// growing. Once the target holds the whole log the leader sends it
// MsgTimeoutNow; the target campaigns at once, without pre-vote, and its
// vote requests carry Transfer so that voters who heard from this leader
// recently still answer. The leader steps down when it hears of the new
// term. A transfer that has not ended within ElectionTicks is abandoned
// and proposals are taken again; Status.Transferee shows the transfer
// while it runs.
//
// It returns ErrNotLeader on a node that does not lead and ErrUnknownPeer
// for a target outside the group. Asking for the transfer already under
// way, or to this node, does nothing; asking for another target restarts
// the transfer towards it.
func (c *Core) TransferLeadership(to uint64) error {
	if c.role != RoleLeader {
		return ErrNotLeader
	}
	if to == 0 {
		to = c.mostUpToDate()
		if to == 0 {
			return fmt.Errorf("%w: no follower to transfer leadership to", ErrUnknownPeer)
		}
	}
	switch {
	case to == c.id || to == c.transferee:
		return nil
	case c.progress[to] == nil || !c.isVoter(to):
		return fmt.Errorf("%w: cannot transfer leadership to %d", ErrUnknownPeer, to)
	}
	c.transferee, c.transferElapsed = to, 0
	c.maybeTimeoutNow()
	return nil
}

// mostUpToDate returns the follower whose log matches the most of the
// leader's, the lowest id among equals; 0 in a group of one.
func (c *Core) mostUpToDate() uint64 {
	var best uint64
	c.peers(func(id uint64) {
		if best == 0 || c.progress[id].match > c.progress[best].match {
			best = id
		}
	})
	return best
}

// maybeTimeoutNow tells the transfer's target to campaign once its log
// matches the whole of the leader's. The leader's lease ends for good:
// the target's election may bypass the voters' promise it rests on.
func (c *Core) maybeTimeoutNow() {
	if c.progress[c.transferee].match != c.log.lastIndex() {
		return // flush keeps sending it entries; handleAppendResp calls again
	}
	c.leaseBroken = true
	c.send(Message{Type: MsgTimeoutNow, To: c.transferee, Term: c.term})
}

// tickTransfer abandons a transfer that did not finish within an election
// timeout, so the leader takes proposals again.
func (c *Core) tickTransfer() {
	if c.transferee == 0 {
		return
	}
	c.transferElapsed++
	if c.transferElapsed >= c.cfg.ElectionTicks {
		c.transferee, c.transferElapsed = 0, 0
	}
}

// handleTimeoutNow starts the election the leader asked for. Only a
// follower of that leader campaigns; its term is the leader's (stepTerm
// dropped an older MsgTimeoutNow).
func (c *Core) handleTimeoutNow(m Message) {
	if c.role != RoleFollower && c.role != RolePreCandidate || !c.isVoter(c.id) {
		return
	}
	c.campaignFor(false, true)
}
