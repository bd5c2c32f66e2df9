package raft

// progressState is how a leader sends to one follower.
type progressState uint8

const (
	// stateProbe: the leader does not know where the follower's log
	// matches. It sends one MsgApp and waits for its answer (or a heartbeat
	// answer) before sending again, so a lagging or unreachable follower
	// costs one message per round trip, not a flood.
	stateProbe progressState = iota
	// stateReplicate: the logs are known to match up to match. The leader
	// pipelines: it advances next optimistically and keeps up to
	// MaxInflight MsgApp unacknowledged, so each entry goes once.
	stateReplicate
	// stateSnapshot: the follower needs entries the leader compacted
	// away. The leader sends its snapshot in chunks, one at a time
	// (probeSent says one is out), resuming at the offset the follower
	// last acknowledged; once the follower has it whole, replication
	// goes on after it.
	stateSnapshot
)

// progress is a leader's view of one follower's log.
type progress struct {
	match uint64 // highest index known to match the leader's log
	next  uint64 // index of the next entry to send
	state progressState

	probeSent bool     // probe: a MsgApp is out and unanswered
	inflight  []uint64 // replicate: last index of each unacknowledged MsgApp, oldest first

	// heardAt is the leader's tick count when the follower last answered;
	// check-quorum counts the followers heard from within ElectionTicks.
	heardAt uint64
	// sentCommit is the highest commit index sent, so the leader sends a
	// commit-only MsgApp just once per advance.
	sentCommit uint64
	// matchAtHeartbeat is match when the previous heartbeat answer came. A
	// replicating follower whose match has not moved between two answers
	// while entries are outstanding may have lost a MsgApp.
	matchAtHeartbeat uint64
	// snap is the snapshot being sent, snapOffset the offset of the next
	// chunk, snapSentAt the tick the last chunk went.
	snap                   SnapshotMeta
	snapOffset, snapSentAt uint64
	// ackedRound is the highest heartbeat round the follower answered
	// (0 for none) and ackedAt the tick that round was sent at, when
	// known: the follower promised at ackedAt or later not to vote for
	// anyone else for an election timeout, on which the lease rests.
	ackedRound, ackedAt uint64
}

// newProgress starts a follower in probe, guessing that its log matches
// the whole of the leader's. A new leader counts every follower as heard
// from at its start, giving each a full election timeout to answer.
func newProgress(next, now uint64) *progress {
	return &progress{next: next, heardAt: now}
}

// paused reports whether the leader must wait before sending more.
func (p *progress) paused(maxInflight int) bool {
	if p.state != stateReplicate {
		return p.probeSent
	}
	return len(p.inflight) >= maxInflight
}

// sentEntries records a MsgApp carrying entries up to last.
func (p *progress) sentEntries(last uint64) {
	if p.state == stateProbe {
		p.probeSent = true
		return
	}
	p.next = last + 1
	p.inflight = append(p.inflight, last)
}

// update records an acknowledgement that the logs match up to n. It
// returns false for a stale one that tells nothing new.
func (p *progress) update(n uint64) bool {
	p.probeSent = false
	if n <= p.match && !(p.state == stateProbe && n == p.match) {
		return false
	}
	p.match = max(p.match, n)
	p.next = max(p.next, n+1)
	p.freeInflight(n)
	return true
}

// freeInflight forgets the MsgApp acknowledged by a match up to n.
func (p *progress) freeInflight(n uint64) {
	i := 0
	for i < len(p.inflight) && p.inflight[i] <= n {
		i++
	}
	p.inflight = append(p.inflight[:0], p.inflight[i:]...)
}

// becomeProbe restarts the follower at next, which is never at or below
// an index known to match.
func (p *progress) becomeProbe(next uint64) {
	p.state = stateProbe
	p.next = max(next, p.match+1)
	p.probeSent = false
	p.inflight = p.inflight[:0]
}

// becomeSnapshot starts sending snapshot s from its start.
func (p *progress) becomeSnapshot(s SnapshotMeta) {
	p.state = stateSnapshot
	p.snap, p.snapOffset = s, 0
	p.probeSent = false
	p.inflight = p.inflight[:0]
}

// becomeReplicate starts pipelining right after the known match.
func (p *progress) becomeReplicate() {
	p.state = stateReplicate
	p.next = p.match + 1
	p.probeSent = false
	p.inflight = p.inflight[:0]
}
