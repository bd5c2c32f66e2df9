package rafttest

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/bifrost-go/bifrost/raft"
)

// logKey names an entry by index and term: by log matching, that pair
// determines the entry and every entry before it.
type logKey struct{ index, term uint64 }

// leaderID is a node in one incarnation.
type leaderID struct {
	id          uint64
	incarnation int
}

// checker holds what the invariants are checked against: the history of
// the whole run, across crashes.
type checker struct {
	leaderOf map[uint64]leaderID // term -> the node that led it
	// durable holds the terms whose leader had the term on its disk while
	// it led: only such a leadership can have left a trace.
	durable  map[uint64]bool
	complete map[uint64]bool   // terms whose leader passed checkCompleteness
	chains   map[logKey]uint64 // (index, term) -> prefix hash ending there, in any log ever written
	// commit is the highest index any leader has committed. For each index
	// up to it: the term of the leader that committed it first, and the
	// prefix hash of that leader's log there.
	commit      uint64
	commitTerm  []uint64
	commitChain []uint64
	// terms is the term of the committed entry at each index.
	terms []uint64
	// applied is the replicated state machine: the hash of the entry every
	// node must apply at each index, and state the application state
	// (appState) after it.
	applied, state []uint64
}

func newChecker() checker {
	return checker{leaderOf: map[uint64]leaderID{}, durable: map[uint64]bool{}, complete: map[uint64]bool{},
		chains: map[logKey]uint64{}}
}

// confVoters returns the voters of leader n's configuration, which decides
// what its commit needs: with single-server changes a quorum of it
// overlaps a quorum of the configuration before it.
func (n *node) confVoters() []uint64 {
	v, _ := n.core.Configuration()
	return v
}

// mayCampaign reports whether n is a voter in its configuration, or in
// the one in effect at its commit index while a later one removes it
// (thesis 4.2.2: it may be needed to commit its own removal).
func (n *node) mayCampaign() bool {
	committed, _ := n.core.ConfigurationAt(n.core.Status().Commit)
	return slices.Contains(n.confVoters(), n.id) || slices.Contains(committed, n.id)
}

// observe checks n's status after an input, and before each Ready (so
// after each Advance): term and commit index never go back, the applied
// index is what the simulator applied,
// one leader per term, and durability on a quorum for what a leader
// commits. (Leader completeness is checked in synced.)
func (c *Cluster) observe(n *node) {
	if n.core == nil {
		return
	}
	st := n.core.Status()
	switch {
	case st.Term < n.term:
		c.Fatalf("node %d: term went back from %d to %d", n.id, n.term, st.Term)
	case st.Commit < n.commit:
		c.Fatalf("node %d: commit index went back from %d to %d", n.id, n.commit, st.Commit)
	case st.Applied > n.applied || n.writing == nil && st.Applied != n.applied || n.driver.Applied() != n.applied:
		// The core learns what was applied early, during a write, only
		// when the write's Ready is done.
		c.Fatalf("node %d: Status().Applied = %d, the driver applied %d, the simulator %d (writing: %v)",
			n.id, st.Applied, n.driver.Applied(), n.applied, n.writing != nil)
	}
	if n.role == raft.RoleLeader && st.Role != raft.RoleLeader && st.Term == n.term && st.Commit > c.check.commit {
		// It committed as leader, then stepped down at once: a leader
		// whose own removal committed.
		c.leaderCommitted(n, st)
	}
	if st.Role != n.role || st.Term != n.term {
		c.trace.add(event{at: c.now, kind: evRole, node: n.id, role: st.Role, a: st.Term})
	}
	n.term, n.commit, n.role = st.Term, st.Commit, st.Role
	if voters, learners := n.core.Configuration(); fmt.Sprint(voters, learners) != n.conf {
		n.conf = fmt.Sprint(voters, learners)
		c.Note("node %d: voters %v learners %v", n.id, voters, learners)
	}
	if st.Role == raft.RoleLeader {
		c.checkLeader(n, st)
	}
}

// checkLeader runs when n is leader: election safety, and the commit
// checks when its commit index is new.
func (c *Cluster) checkLeader(n *node, st raft.Status) {
	me := leaderID{n.id, n.incarnation}
	prev, ok := c.check.leaderOf[st.Term]
	// A term may be led again, by any node, after its first leader
	// crashed before the term reached its disk: that leadership left no
	// trace. Only a single voter can lead before persisting the term (a
	// candidate persists before it asks for votes), and it sends nothing
	// as leader until then (both enforced by checkSend), so no one heard
	// from it either.
	forgotten := ok && prev != me && !c.check.durable[st.Term] && c.node(prev.id).incarnation != prev.incarnation
	if ok && prev != me && !forgotten {
		c.Fatalf("election safety: node %d (incarnation %d) and node %d (incarnation %d) both led term %d",
			prev.id, prev.incarnation, n.id, n.incarnation, st.Term)
	}
	if !ok || forgotten {
		c.check.leaderOf[st.Term] = me
	}
	if n.disk.hs.Term >= st.Term {
		c.check.durable[st.Term] = true
	}
	if st.Commit > c.check.commit {
		c.leaderCommitted(n, st)
	}
}

// checkCompleteness: a leader of term t holds every entry committed in
// an earlier term. Log matching makes checking the last one enough. It
// runs when the leader's first Ready as leader is durable: its disk then
// holds every entry its log had when it won.
func (c *Cluster) checkCompleteness(n *node, t uint64) {
	if c.check.complete[t] {
		return
	}
	c.check.complete[t] = true
	i := c.check.commit
	for i > 0 && c.check.commitTerm[i-1] >= t {
		i--
	}
	if i > 0 && (i > n.disk.lastIndex() || n.disk.chainAt(i) != c.check.commitChain[i-1]) {
		c.Fatalf("leader completeness: node %d leads term %d but its log differs from the committed log at index %d (last index %d)",
			n.id, t, i, n.disk.lastIndex())
	}
}

// leaderCommitted records indexes a leader committed for the first time
// and checks that each is durable on a quorum.
func (c *Cluster) leaderCommitted(n *node, st raft.Status) {
	for i := c.check.commit + 1; i <= st.Commit; i++ {
		t, chain, ok := n.written(i)
		if !ok {
			c.Fatalf("leader %d committed index %d, which it never wrote", n.id, i)
		}
		replicas, voters := 0, n.confVoters()
		for _, id := range voters {
			if c.node(id).disk.term(i) == t {
				replicas++
			}
		}
		if replicas < len(voters)/2+1 {
			c.Fatalf("leader %d committed index %d (term %d) durable on only %d of the voters %v",
				n.id, i, t, replicas, voters)
		}
		c.check.commitTerm = append(c.check.commitTerm, st.Term)
		c.check.commitChain = append(c.check.commitChain, chain)
		c.check.terms = append(c.check.terms, t)
	}
	c.check.commit = st.Commit
	c.trace.add(event{at: c.now, kind: evCommit, node: n.id, a: st.Commit, b: st.Term})
}

// checkRestart: a restarted core reports what its disk holds.
func (c *Cluster) checkRestart(n *node, st raft.Status) {
	hs := n.disk.hs
	// A later term than the hard state's is allowed when the log holds
	// entries of it (a torn write kept them but not the hard state), with
	// no vote in it.
	lastTerm := n.disk.term(n.disk.lastIndex())
	switch {
	case st.Term < hs.Term || st.Term == hs.Term && st.Vote != hs.Vote ||
		st.Term > hs.Term && (st.Vote != 0 || st.Term > lastTerm):
		c.Fatalf("node %d restarted with term %d vote %d, its disk has term %d vote %d, last log term %d",
			n.id, st.Term, st.Vote, hs.Term, hs.Vote, lastTerm)
	case st.Commit < hs.Commit:
		c.Fatalf("node %d restarted with commit %d below its persisted commit %d", n.id, st.Commit, hs.Commit)
	case st.LastIndex != n.disk.lastIndex():
		c.Fatalf("node %d restarted with last index %d, its disk has %d", n.id, st.LastIndex, n.disk.lastIndex())
	}
	c.trace.add(event{at: c.now, kind: evRestart, node: n.id,
		note: fmt.Sprintf("term %d vote %d commit %d last %d applied %d", hs.Term, hs.Vote, hs.Commit, n.disk.lastIndex(), n.applied)})
}

// checkReady checks the shape of a Ready before the driver acts on it.
func (c *Cluster) checkReady(n *node, rd *raft.Ready) {
	for i := 1; i < len(rd.Entries); i++ {
		if rd.Entries[i].Index != rd.Entries[i-1].Index+1 {
			c.Fatalf("node %d: Ready.Entries not contiguous: index %d after %d", n.id, rd.Entries[i].Index, rd.Entries[i-1].Index)
		}
	}
	if len(rd.Entries) > 0 {
		// The log goes on after a snapshot the Ready installs.
		last := max(n.disk.lastIndex(), rd.Snapshot.Index)
		if first := rd.Entries[0].Index; first == 0 || first > last+1 {
			c.Fatalf("node %d: Ready.Entries start at %d, the log ends at %d", n.id, first, last)
		}
	}
	// Only a voter campaigns. Judged when the Ready is taken: vote
	// requests wait in AfterPersist for the term and vote to be durable,
	// and meanwhile an append from the new leader may undo the change
	// that made this node a voter. Requests of an abandoned
	// campaign are harmless: the node no longer counts the answers.
	for _, msgs := range [][]raft.Message{rd.Messages, rd.AfterPersist} {
		for i := range msgs {
			m := &msgs[i]
			if (m.Type == raft.MsgVote || m.Type == raft.MsgPreVote) && !n.mayCampaign() {
				c.Fatalf("node %d campaigns but is no voter in its configuration %v: %s", n.id, n.confVoters(), formatMsg(m, 0))
			}
		}
	}
}

// checkSend: persist before you speak. A vote, a vote request and an
// append acknowledgement must be backed by the disk when they leave. The
// driver sends Ready.Messages before it writes, so a core that puts one
// of these there instead of in AfterPersist fails here. A vote may be
// sent again after the node moved to a later term (a duplicate request),
// so votes are checked against every vote the disk ever recorded.
func (c *Cluster) checkSend(n *node, m *raft.Message) {
	if m.From != n.id || m.To == 0 || m.To > uint64(len(c.nodes)) || m.To == n.id {
		c.Fatalf("node %d sent a misaddressed message: %s", n.id, formatMsg(m, len(m.Entries)))
	}
	hs := n.disk.hs
	switch {
	case m.Type == raft.MsgVoteResp && !m.Reject && !backsVote(&n.disk, m.Term, m.To):
		c.Fatalf("node %d granted its vote before persisting it (disk: term %d vote %d, vote in term %d: %d): %s",
			n.id, hs.Term, hs.Vote, m.Term, n.disk.votes[m.Term], formatMsg(m, 0))
	case m.Type == raft.MsgVote && !backsVote(&n.disk, m.Term, n.id):
		c.Fatalf("node %d asked for votes before persisting its own (disk: term %d vote %d): %s",
			n.id, hs.Term, hs.Vote, formatMsg(m, 0))
	case (m.Type == raft.MsgApp || m.Type == raft.MsgHeartbeat) && m.Term > hs.Term:
		c.Fatalf("node %d spoke as leader of term %d before persisting the term (disk: term %d): %s",
			n.id, m.Term, hs.Term, formatMsg(m, len(m.Entries)))
	case m.Type == raft.MsgAppResp && !m.Reject:
		c.checkAck(n, m)
	case m.Type == raft.MsgApp:
		c.checkBatch(n, m)
	case m.Type == raft.MsgSnapResp && m.SnapDone && n.disk.snap.Index < m.Index && n.disk.hs.Commit < m.Index:
		c.Fatalf("node %d acknowledged snapshot %d before persisting it (disk: snapshot %d, commit %d)",
			n.id, m.Index, n.disk.snap.Index, n.disk.hs.Commit)
	}
}

// checkBatch: a MsgApp carries at most MaxMsgEntries entries and
// MaxMsgBytes of entries (Entry.EncodedSize). Propose refuses a larger
// command, so only a configuration entry may go alone over the limit.
func (c *Cluster) checkBatch(n *node, m *raft.Message) {
	maxEntries, maxBytes := c.opts.Config.MaxMsgEntries, c.opts.Config.MaxMsgBytes
	if maxEntries == 0 {
		maxEntries = 512
	}
	if maxBytes == 0 {
		maxBytes = 1 << 20
	}
	size := 0
	for i := range m.Entries {
		size += m.Entries[i].EncodedSize()
	}
	alone := len(m.Entries) == 1 && m.Entries[0].Type == raft.EntryConfig
	if len(m.Entries) > maxEntries || size > maxBytes && !alone {
		c.Fatalf("node %d sent a MsgApp of %d entries and %d bytes, over the limits of %d and %d",
			n.id, len(m.Entries), size, maxEntries, maxBytes)
	}
}

// backsVote reports whether d backs a vote for id in term t: it recorded
// that vote, or it recorded no vote in t and a later term, so it can never
// vote for anyone else in t. (A core may queue a vote, move on to a later
// term before the next Ready, and persist only the later term.)
func backsVote(d *disk, t, id uint64) bool {
	v := d.votes[t]
	return v == id || v == 0 && d.hs.Term > t
}

// checkAck: an append acknowledgement promises that the sender's disk
// holds the leader's log up to m.Index. Checked against the leader's log
// while it still leads the term; a stale acknowledgement to a leader that
// moved on is ignored by it and is not checked.
func (c *Cluster) checkAck(n *node, m *raft.Message) {
	hs := n.disk.hs
	if n.disk.lastIndex() < m.Index || hs.Term < m.Term {
		c.Fatalf("node %d acknowledged entries up to %d before persisting them (disk: last index %d, term %d): %s",
			n.id, m.Index, n.disk.lastIndex(), hs.Term, formatMsg(m, 0))
	}
	lead := c.nodes[m.To-1]
	if lead.core == nil || lead.role != raft.RoleLeader || lead.term != m.Term {
		return
	}
	if _, chain, ok := lead.written(m.Index); ok && chain != n.disk.chainAt(m.Index) {
		c.Fatalf("node %d acknowledged index %d to leader %d, but its disk does not hold the leader's log there: %s",
			n.id, m.Index, m.To, formatMsg(m, 0))
	}
}

// save makes a Ready's writes durable, checking log matching, that no
// committed entry is overwritten, and that term, vote and commit never go
// back on disk, across restarts.
func (c *Cluster) save(n *node, rd *raft.Ready, torn bool) {
	if !rd.Snapshot.IsZero() {
		c.installSnapshot(n, rd.Snapshot)
	}
	if len(rd.Entries) > 0 {
		c.saveEntries(n, rd.Entries, rd.Term, torn)
	}
	if rd.HardStateChanged {
		c.saveHardState(n, rd.HardState)
	}
	if n.disk.hs.Commit > n.disk.lastIndex() {
		c.Fatalf("node %d persisted commit %d beyond its log (last index %d)", n.id, n.disk.hs.Commit, n.disk.lastIndex())
	}
}

func (c *Cluster) saveEntries(n *node, ents []raft.Entry, term uint64, torn bool) {
	// Truncate only on a real conflict: a Ready that shortens the log must
	// replace at least one entry with one of another term. (A torn write
	// may keep only the matching head of a conflicting Ready.)
	last, conflict := ents[len(ents)-1].Index, false
	for i := range ents {
		e := &ents[i]
		conflict = conflict || e.Index <= n.disk.lastIndex() && n.disk.term(e.Index) != e.Term
	}
	if last < n.disk.lastIndex() && !conflict && !torn {
		c.Fatalf("node %d truncated its log from %d to %d without a conflicting entry", n.id, n.disk.lastIndex(), last)
	}
	// A stale entry at a committed index may go; the committed one not.
	// Committed when the node took the Ready, that is: a follower that
	// replaced an entry from a deposed leader's append may be slow to
	// write it, and meanwhile the newer leader commits the old entry on a
	// quorum without this node (its disk stalled, say). That
	// is safe; the node's next append from that leader repairs its log.
	// And only by a leader of the term that committed it or a later one:
	// a stale leader cut off from the majority may still repair a node
	// that missed the newer terms, replacing an entry that a quorum
	// without this node committed after that leader's term began. Leader
	// completeness binds the leaders after the commit, not before.
	committed := n.writingCommit
	for i := range ents {
		e := &ents[i]
		overwrites := e.Index <= n.disk.lastIndex() && n.disk.term(e.Index) != e.Term
		if overwrites && e.Index <= committed && n.disk.chainAt(e.Index) == c.check.commitChain[e.Index-1] &&
			term >= c.check.commitTerm[e.Index-1] {
			c.Fatalf("node %d overwrote committed index %d (term %d) with term %d", n.id, e.Index, n.disk.term(e.Index), e.Term)
		}
	}
	n.disk.append(ents)
	for i := range ents {
		e := &ents[i]
		k := logKey{e.Index, e.Term}
		h := n.disk.chainAt(e.Index)
		if prev, ok := c.check.chains[k]; !ok {
			c.check.chains[k] = h
		} else if prev != h {
			c.Fatalf("log matching: node %d has an entry at index %d term %d whose log prefix differs from another node's",
				n.id, e.Index, e.Term)
		}
	}
}

func (c *Cluster) saveHardState(n *node, hs raft.HardState) {
	old := n.disk.hs
	switch {
	case hs.Term < old.Term:
		c.Fatalf("node %d persisted term %d after term %d", n.id, hs.Term, old.Term)
	case hs.Term == old.Term && old.Vote != 0 && hs.Vote != old.Vote:
		c.Fatalf("node %d changed its persisted vote in term %d from %d to %d", n.id, hs.Term, old.Vote, hs.Vote)
	case hs.Commit < old.Commit:
		c.Fatalf("node %d persisted commit %d after commit %d", n.id, hs.Commit, old.Commit)
	}
	n.disk.hs = hs
	if hs.Vote != 0 {
		if n.disk.votes == nil {
			n.disk.votes = map[uint64]uint64{}
		}
		n.disk.votes[hs.Term] = hs.Vote
	}
}

// apply hands committed entries to n's state machine: in order, exactly
// once, each the entry every other node applies at that index, and the
// client hears about the proposals n made.
func (c *Cluster) apply(n *node, ents []raft.Entry) {
	for i := range ents {
		e := &ents[i]
		switch {
		case e.Index != n.applied+1:
			c.Fatalf("node %d applied index %d after %d", n.id, e.Index, n.applied)
		case e.Index > c.check.commit:
			c.Fatalf("node %d applied index %d, no leader committed past %d", n.id, e.Index, c.check.commit)
		case e.Index > n.core.Status().Commit:
			c.Fatalf("node %d applied index %d beyond its commit index %d", n.id, e.Index, n.core.Status().Commit)
		case !n.onDisk(e):
			c.Fatalf("node %d applied index %d term %d, which is not the entry in its durable log", n.id, e.Index, e.Term)
		case n.disk.chainAt(e.Index) != c.check.commitChain[e.Index-1]:
			c.Fatalf("node %d applied index %d term %d, which is not the entry the leader committed", n.id, e.Index, e.Term)
		}
		c.applyOne(n, e)
	}
}

// onDisk reports whether e is the entry n's durable log holds.
func (n *node) onDisk(e *raft.Entry) bool {
	d, ok := n.disk.entry(e.Index)
	return ok && d.Term == e.Term && entryHash(e) == entryHash(d)
}

func (c *Cluster) applyOne(n *node, e *raft.Entry) {
	h := entryHash(e)
	n.state = appState(n.state, e)
	switch {
	case e.Index <= uint64(len(c.check.applied)):
		if c.check.applied[e.Index-1] != h || c.check.state[e.Index-1] != n.state {
			c.Fatalf("state machine safety: node %d applied a different entry at index %d (term %d)", n.id, e.Index, e.Term)
		}
	default:
		c.check.applied = append(c.check.applied, h)
		c.check.state = append(c.check.state, n.state)
	}
	n.applied = e.Index
	n.disk.applied, n.disk.state = e.Index, n.state
	c.answer(n, e)
}

// answer tells the client the outcome of n's proposal at e.Index, if any.
func (c *Cluster) answer(n *node, e *raft.Entry) {
	p, ok := n.pending[e.Index]
	if !ok {
		return
	}
	delete(n.pending, e.Index)
	if p.term != e.Term {
		return // overwritten by another leader: dropped
	}
	if !bytes.Equal(p.data, e.Data) || e.Type != raft.EntryNormal {
		c.Fatalf("node %d committed index %d term %d, which Propose returned, with different contents", n.id, e.Index, e.Term)
	}
	c.acked = append(c.acked, Ack{Index: e.Index, Term: e.Term, Leader: n.id, Data: p.data})
	c.maxAcked = max(c.maxAcked, e.Index)
	c.trace.add(event{at: c.now, kind: evAck, node: n.id, a: e.Index, b: e.Term})
}
