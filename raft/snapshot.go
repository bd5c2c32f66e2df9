package raft

import (
	"errors"
	"fmt"
	"hash/crc32"
	"maps"
	"slices"
)

// This file holds snapshots: compaction of the log under a snapshot the
// application took, and InstallSnapshot for a follower whose next entry
// the leader no longer holds. The snapshot's bytes never pass through the
// core on the leader: the core names the chunk a follower needs, and the
// driver reads it from its own copy (Ready.SnapshotRequests).

var (
	// ErrCompacted is returned by Compact for an index at or below the
	// last compaction point.
	ErrCompacted = errors.New("raft: index already compacted")
	// ErrUnapplied is returned by Compact for an index the application
	// has not applied yet.
	ErrUnapplied = errors.New("raft: index not applied yet")
)

// castagnoli is the CRC32C table for snapshot checksums.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// SnapshotChecksum returns the CRC32C (Castagnoli) of a whole snapshot, as
// MsgSnap carries it in SnapChecksum.
func SnapshotChecksum(data []byte) uint32 { return crc32.Checksum(data, castagnoli) }

// SnapshotMeta names a snapshot of the application's state: the index and
// term of the last entry it covers, and the configuration in effect
// there. The core needs nothing else of it.
type SnapshotMeta struct {
	Index uint64
	Term  uint64
	// Voters and Learners are the configuration at Index. Both empty
	// means unknown (a snapshot written before configuration changes): the
	// node keeps the configuration it has.
	Voters   []uint64
	Learners []uint64
	// Addrs are the transport addresses of members at Index that the log
	// carried (ConfChange.Addr), so that a node restarting from the
	// snapshot, or installing it, still knows where members added before
	// it are. Members without one are missing; opaque to raft.
	Addrs map[uint64]string
}

// IsZero reports whether m names no snapshot.
func (m SnapshotMeta) IsZero() bool { return m.Index == 0 && m.Term == 0 }

// Same reports whether m and o name the same snapshot: the same index and
// term.
func (m SnapshotMeta) Same(o SnapshotMeta) bool { return m.Index == o.Index && m.Term == o.Term }

// SnapshotMetaAt returns the meta a snapshot of the application's state
// at index, the entry of term, must be saved with: the configuration in
// effect there and the member addresses it carries. A driver calls it
// before Compact(index).
func (c *Core) SnapshotMetaAt(index, term uint64) SnapshotMeta { return c.snapMeta(index, term) }

// snapMeta names the snapshot at index (of term) with the configuration
// in effect there.
func (c *Core) snapMeta(index, term uint64) SnapshotMeta {
	ms := c.confAt(index)
	return SnapshotMeta{Index: index, Term: term, Voters: slices.Clone(ms.voters), Learners: slices.Clone(ms.learners),
		Addrs: maps.Clone(ms.addrs)}
}

// SnapshotChunk is a piece of a snapshot this node receives from its
// leader, to be stored by the driver at Offset. A chunk at Offset 0
// starts a new snapshot: the driver drops any piece it held before.
// Chunks of one snapshot come in order and without gaps.
type SnapshotChunk struct {
	Meta     SnapshotMeta
	Offset   uint64 // where Data goes in the snapshot
	Total    uint64 // size of the whole snapshot in bytes
	Checksum uint32 // CRC32C of the whole snapshot
	Data     []byte
}

// snapshotRecv is a follower's view of the snapshot it is receiving.
type snapshotRecv struct {
	meta     SnapshotMeta
	total    uint64
	checksum uint32
	offset   uint64 // bytes received so far: the next offset wanted
	crc      uint32 // CRC32C of those bytes
}

// snapshots is the snapshot state of a Core.
type snapshots struct {
	meta      SnapshotMeta    // the newest snapshot Compact reported (see newest)
	recv      *snapshotRecv   // follower: the snapshot being received, if any
	chunks    []SnapshotChunk // received chunks for the next Ready
	requests  []Message       // leader: MsgSnap for the driver to fill, for the next Ready
	installed SnapshotMeta    // a snapshot received whole, for the next Ready
}

// Compact tells the core that the application holds a durable snapshot
// of its state at index, which it has applied: the log up to index,
// except the last Config.SnapshotCatchUpEntries entries, is dropped from
// memory, and a follower that needs a dropped entry is sent the
// snapshot instead. The driver must keep the snapshot's bytes for that
// (see Ready.SnapshotRequests) and may compact its own storage up to
// index. A follower in the middle of receiving an older snapshot goes on
// with it, so the driver keeps the snapshot a transfer started with.
func (c *Core) Compact(index uint64) error {
	switch {
	case index <= c.newest().Index:
		return fmt.Errorf("%w: %d, snapshot at %d", ErrCompacted, index, c.newest().Index)
	case index > c.log.applied:
		return fmt.Errorf("%w: %d, applied through %d", ErrUnapplied, index, c.log.applied)
	}
	c.snaps.meta = c.snapMeta(index, c.log.at(index).Term)
	c.compactConf(index)
	if keep := uint64(c.cfg.SnapshotCatchUpEntries); index > c.log.offset+keep {
		c.log.compact(index - keep)
	}
	return nil
}

// newest is the newest snapshot this node holds: the last one Compact
// reported, or one received from the leader or restarted from, which
// the log's compaction point then names.
func (c *Core) newest() SnapshotMeta {
	if c.snaps.meta.Index < c.log.offset {
		return c.snapMeta(c.log.offset, c.log.offsetTerm)
	}
	return c.snaps.meta
}

// compact drops the entries up to i, which lies in (offset, lastIndex].
// The kept entries move to a fresh array, so the dropped ones can be
// collected while slices handed out earlier stay intact.
func (l *raftLog) compact(i uint64) {
	l.offsetTerm = l.at(i).Term
	l.entries.dropFront(int(i - l.offset))
	l.offset = i
	l.stable = max(l.stable, i)
	l.handed = max(l.handed, i)
}

// restore makes the log start after a snapshot received from the leader.
// Entries after it that agree with it stay; a log that disagrees at the
// snapshot's index is dropped whole, since every entry after it belongs
// to another history.
func (l *raftLog) restore(m SnapshotMeta) {
	if l.matchTerm(m.Index, m.Term) && m.Index > l.offset {
		l.entries.dropFront(int(m.Index - l.offset))
	} else {
		l.entries = chunkedEntries{}
		l.stable, l.handed = m.Index, m.Index
	}
	l.offset, l.offsetTerm = m.Index, m.Term
	l.stable = max(l.stable, m.Index)
	l.handed = max(l.handed, m.Index)
	l.committed = max(l.committed, m.Index)
	l.applying = max(l.applying, m.Index)
}

// sendSnapshot asks the driver to send the follower the chunk of the
// leader's snapshot at pr.snapOffset. One chunk is out at a time: the
// follower's answer (or a timeout, see handleHeartbeatResp) lets the next
// one go. It reports whether it sent.
func (c *Core) sendSnapshot(to uint64, pr *progress) bool {
	if pr.state != stateSnapshot || pr.snapOffset == 0 && !pr.snap.Same(c.newest()) {
		// A new transfer, or one the follower has acknowledged nothing
		// of yet, sends the newest snapshot; one under way goes on with
		// its own.
		pr.becomeSnapshot(c.newest())
	}
	if pr.probeSent {
		return false
	}
	c.snaps.requests = append(c.snaps.requests, Message{Type: MsgSnap, From: c.id, To: to, Term: c.term,
		Index: pr.snap.Index, LogTerm: pr.snap.Term, SnapOffset: pr.snapOffset,
		SnapVoters: pr.snap.Voters, SnapLearners: pr.snap.Learners, SnapAddrs: pr.snap.Addrs})
	pr.probeSent, pr.snapSentAt = true, c.ticks
	return true
}

// handleSnap is the follower's side of a chunk of the leader's snapshot.
// Each chunk is answered once stored (AfterPersist) with the offset
// wanted next, so a lost chunk or answer costs a resend from there, and
// the last one once the snapshot is whole: the answer does not wait for
// the application to restore it (hashicorp/raft #212).
func (c *Core) handleSnap(m Message) {
	if !c.followLeader(m.From) || !snapWellFormed(m) {
		return
	}
	meta := SnapshotMeta{Index: m.Index, Term: m.LogTerm, Voters: m.SnapVoters, Learners: m.SnapLearners, Addrs: m.SnapAddrs}
	if meta.Index <= c.log.committed {
		// The log already holds all the snapshot covers.
		c.snaps.recv = nil
		c.send(Message{Type: MsgAppResp, To: m.From, Term: c.term, Index: c.log.committed})
		return
	}
	if !c.snaps.installed.IsZero() {
		// A snapshot completed since the last Ready and is not handed out
		// yet. Chunks of another one must not follow it in the same Ready,
		// where the driver could not tell whose bytes they are: ask for
		// this one again from its start, in a later Ready.
		c.answerSnap(m.From, meta, 0, false)
		return
	}
	r := c.snaps.recv
	same := r != nil && r.meta.Same(meta) && r.total == m.SnapTotal && r.checksum == m.SnapChecksum
	switch {
	case same && m.SnapOffset == r.offset:
	case same:
		// A gap, a duplicate, or a new leader starting over a snapshot
		// this node already holds the start of: tell the leader where
		// to go on from.
		c.answerSnap(m.From, meta, r.offset, false)
		return
	case m.SnapOffset == 0:
		r = &snapshotRecv{meta: meta, total: m.SnapTotal, checksum: m.SnapChecksum}
		c.snaps.recv = r
	default:
		c.answerSnap(m.From, meta, 0, false) // the middle of an unknown snapshot
		return
	}
	c.receiveChunk(m, r)
}

// receiveChunk hands the chunk to the driver and, once the snapshot is
// whole and its checksum right, installs it.
func (c *Core) receiveChunk(m Message, r *snapshotRecv) {
	c.snaps.chunks = append(c.snaps.chunks, SnapshotChunk{Meta: r.meta, Offset: m.SnapOffset,
		Total: r.total, Checksum: r.checksum, Data: m.SnapData})
	r.offset += uint64(len(m.SnapData))
	r.crc = crc32.Update(r.crc, castagnoli, m.SnapData)
	if !m.SnapDone {
		c.answerSnap(m.From, r.meta, r.offset, false)
		return
	}
	c.snaps.recv = nil
	if r.crc != r.checksum {
		c.answerSnap(m.From, r.meta, 0, false) // corrupt: start over
		return
	}
	c.log.restore(r.meta)
	c.installConf(r.meta)
	c.snaps.installed = r.meta
	c.answerSnap(m.From, r.meta, r.offset, true)
}

func (c *Core) answerSnap(to uint64, meta SnapshotMeta, offset uint64, done bool) {
	c.send(Message{Type: MsgSnapResp, To: to, Term: c.term, Index: meta.Index, LogTerm: meta.Term,
		SnapOffset: offset, SnapDone: done})
}

// snapWellFormed reports whether a MsgSnap's chunk fits in its snapshot
// and says Done exactly when it ends it.
func snapWellFormed(m Message) bool {
	end := m.SnapOffset + uint64(len(m.SnapData))
	return end >= m.SnapOffset && end <= m.SnapTotal &&
		m.SnapDone == (end == m.SnapTotal) && m.Index > 0
}

// handleSnapResp is the leader's side of a follower's answer to a chunk.
func (c *Core) handleSnapResp(m Message) {
	pr := c.progress[m.From]
	if c.role != RoleLeader || pr == nil {
		return
	}
	pr.heardAt = c.ticks
	if pr.state != stateSnapshot || m.Index != pr.snap.Index || m.LogTerm != pr.snap.Term {
		return // an answer about another snapshot
	}
	if m.SnapDone {
		pr.match = max(pr.match, m.Index)
		pr.becomeReplicate()
		c.maybeCommit()
		return
	}
	if m.SnapOffset != 0 && m.SnapOffset <= pr.snapOffset || m.SnapOffset == 0 && pr.snapOffset == 0 && pr.probeSent {
		// A duplicate of the answer that sent the chunk now out, or an
		// older one: a follower's offset only grows, unless it starts
		// over at 0. Each answer must send one chunk at most, or
		// duplicated answers multiply the chunks without end. The chunk
		// out is answered, or resent on its own clock (resumeSnapshot).
		return
	}
	pr.snapOffset, pr.probeSent = m.SnapOffset, false
}

// snapshotReady reports whether Ready has snapshot work.
func (c *Core) snapshotReady() bool {
	s := &c.snaps
	return len(s.chunks) > 0 || len(s.requests) > 0 || !s.installed.IsZero()
}

// readySnapshot moves the snapshot work into rd.
func (c *Core) readySnapshot(rd *Ready) {
	s := &c.snaps
	rd.Snapshot, rd.SnapshotChunks, rd.SnapshotRequests = s.installed, s.chunks, s.requests
	s.installed, s.chunks, s.requests = SnapshotMeta{}, nil, nil
}

// advanceSnapshot records that rd's snapshot is restored.
func (c *Core) advanceSnapshot(rd Ready) {
	if !rd.Snapshot.IsZero() {
		c.log.appliedTo(rd.Snapshot.Index)
	}
}

// resumeSnapshot resends the chunk a follower that answers heartbeats has
// not acknowledged within half an election timeout: the chunk or its
// answer was lost. Waiting that long keeps a slow transfer of a large
// chunk from being duplicated at every heartbeat.
func (c *Core) resumeSnapshot(to uint64, pr *progress) {
	if pr.probeSent && c.ticks-pr.snapSentAt >= uint64(max(1, c.cfg.ElectionTicks/2)) {
		pr.probeSent = false
		c.sendSnapshot(to, pr)
	}
}
