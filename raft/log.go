package raft

import (
	"fmt"
	"math"
)

// raftLog is the in-memory log of one node, with the indexes that say
// which part of it is durable, committed and applied:
//
//	applied <= applying <= committed <= lastIndex, stable <= handed <= lastIndex
//
// Entries never get rewritten in place (chunkedEntries copies what it
// cuts into), so a slice handed out in a Ready or a Message keeps its
// contents while the log moves on.
//
// A snapshot covers the prefix up to offset (snapshot.go): entries[0]
// follows it, and the entry at offset is known by its term only.
type raftLog struct {
	entries    chunkedEntries // entry at position i has index offset+i+1
	offset     uint64         // index of the last entry covered by the snapshot; 0 for none
	offsetTerm uint64         // term of the entry at offset
	stable     uint64         // highest index known durable (reported by Advance)
	handed     uint64         // highest index handed out in Ready.Entries
	committed  uint64         // highest index known committed on a quorum
	applying   uint64         // highest index handed out in Ready.Committed
	applied    uint64         // highest index whose application Advance confirmed
}

// restoreLog rebuilds the log of a restarting node from its snapshot and
// the entries after it, checking that the persisted pieces fit together.
// The application holds the snapshot's state, so applied is at least
// snap.Index.
func restoreLog(snap SnapshotMeta, ents []Entry, commit, applied uint64) (raftLog, error) {
	prevTerm := snap.Term
	for i := range ents {
		if want := snap.Index + uint64(i) + 1; ents[i].Index != want {
			return raftLog{}, fmt.Errorf("raft: config: entry %d has index %d, want %d", i, ents[i].Index, want)
		}
		if ents[i].Term < prevTerm {
			return raftLog{}, fmt.Errorf("raft: config: entry %d has term %d below its predecessor's %d", ents[i].Index, ents[i].Term, prevTerm)
		}
		prevTerm = ents[i].Term
	}
	n := len(ents)
	last := snap.Index + uint64(n)
	if commit > last || applied > last {
		return raftLog{}, fmt.Errorf("raft: config: commit %d or applied %d beyond the last entry %d", commit, applied, last)
	}
	// What the application applied was committed, even if the hard state
	// carrying that commit index did not reach the disk.
	applied = max(applied, snap.Index)
	commit = max(commit, applied)
	return raftLog{
		entries: entriesOf(ents), offset: snap.Index, offsetTerm: snap.Term, stable: last, handed: last,
		committed: commit, applying: applied, applied: applied,
	}, nil
}

func (l *raftLog) lastIndex() uint64 { return l.offset + uint64(l.entries.len()) }

// at returns the entry at index i, which must lie in (offset, lastIndex].
func (l *raftLog) at(i uint64) *Entry { return l.entries.at(int(i - l.offset - 1)) }

func (l *raftLog) lastTerm() uint64 {
	t, _ := l.term(l.lastIndex())
	return t
}

// term returns the term of the entry at i; index 0 has term 0, the
// snapshot's last index the snapshot's term. ok is false for an index
// past the end or compacted away.
func (l *raftLog) term(i uint64) (t uint64, ok bool) {
	switch {
	case i == l.offset:
		return l.offsetTerm, true
	case i < l.offset || i > l.lastIndex():
		return 0, false
	}
	return l.at(i).Term, true
}

// matchTerm reports whether the log holds an entry at i with term t.
func (l *raftLog) matchTerm(i, t uint64) bool {
	lt, ok := l.term(i)
	return ok && lt == t
}

// isUpToDate is the election restriction (paper 5.4.1): a log whose last
// entry has a higher term is more up to date, whatever its length; only on
// equal terms does the longer log win.
func (l *raftLog) isUpToDate(lastIndex, lastTerm uint64) bool {
	myTerm := l.lastTerm()
	return lastTerm > myTerm || (lastTerm == myTerm && lastIndex >= l.lastIndex())
}

// append adds entries that directly follow the last one.
func (l *raftLog) append(ents ...Entry) {
	l.entries.append(ents...)
}

// maybeAppend applies a leader's MsgApp: if the log matches at
// (prevIndex, prevTerm) it adds ents, cutting the log only where an entry
// really conflicts (same index, other term), and commits up to what this
// message proves matches. It returns the index of the last entry known to
// match the leader's log.
func (l *raftLog) maybeAppend(prevIndex, prevTerm, commit uint64, ents []Entry) (lastNew uint64, ok bool) {
	if !l.matchTerm(prevIndex, prevTerm) {
		return 0, false
	}
	lastNew = prevIndex + uint64(len(ents))
	if ci := l.findConflict(ents); ci != 0 {
		l.truncateAndAppend(ents[ci-prevIndex-1:])
	}
	l.commitTo(min(commit, lastNew))
	return lastNew, true
}

// findConflict returns the index of the first of ents that the log does
// not hold (a different term or past the end), or 0 if it holds them all.
// A stale or duplicated MsgApp thus finds no conflict and changes nothing.
func (l *raftLog) findConflict(ents []Entry) uint64 {
	for i := range ents {
		if !l.matchTerm(ents[i].Index, ents[i].Term) {
			return ents[i].Index
		}
	}
	return 0
}

// truncateAndAppend replaces everything from ents[0].Index on with ents.
func (l *raftLog) truncateAndAppend(ents []Entry) {
	after := ents[0].Index - 1
	if after == l.lastIndex() {
		l.append(ents...)
		return
	}
	if after < l.committed {
		panic(fmt.Sprintf("raft: truncating committed entry %d (commit %d)", after+1, l.committed))
	}
	l.entries.truncate(int(after - l.offset))
	l.entries.append(ents...)
	l.stable = min(l.stable, after)
	l.handed = min(l.handed, after)
}

// findConflictByTerm returns the highest index at or below i whose term is
// at most t, with that term. Both sides of the fast backup use it: the
// follower to hint where its log may match, the leader to jump past a
// whole term the follower does not share.
func (l *raftLog) findConflictByTerm(i, t uint64) (uint64, uint64) {
	i = min(i, l.lastIndex())
	for i > l.offset && l.at(i).Term > t {
		i--
	}
	lt, _ := l.term(i)
	return i, lt
}

// commitTo raises the commit index; it never lowers it, and never past the
// end of the log.
func (l *raftLog) commitTo(i uint64) {
	if i > l.committed {
		if i > l.lastIndex() {
			panic(fmt.Sprintf("raft: commit %d beyond last index %d", i, l.lastIndex()))
		}
		l.committed = i
	}
}

// slice returns the entries in [lo, hi), capped so that appending to the
// result cannot write into the log. lo must be above the offset.
func (l *raftLog) slice(lo, hi uint64) []Entry {
	if lo >= hi {
		return nil
	}
	if lo <= l.offset {
		panic(fmt.Sprintf("raft: slice from %d, compacted through %d", lo, l.offset))
	}
	return l.entries.slice(int(lo-l.offset-1), int(hi-l.offset-1))
}

func (l *raftLog) hasUnstable() bool { return l.lastIndex() > l.stable }

// unstable returns the entries not yet reported durable, at most
// maxBytes of them but at least one, for a Ready to hand out (handed).
func (l *raftLog) unstable(maxBytes int) []Entry {
	return l.batch(l.stable+1, l.lastIndex(), math.MaxInt, maxBytes)
}

// stableTo records that ents (a Ready's Entries) are durable. Entries the
// log has replaced since count for nothing: the durable copy is of the old
// entry. The last one still in the log marks the durable prefix, since an
// entry with the same index and term implies the same log before it.
func (l *raftLog) stableTo(ents []Entry) {
	for i := len(ents) - 1; i >= 0; i-- {
		if l.matchTerm(ents[i].Index, ents[i].Term) {
			l.stable = max(l.stable, ents[i].Index)
			return
		}
	}
}

func (l *raftLog) hasNextCommitted() bool { return min(l.committed, l.handed) > l.applying }

// nextCommitted returns the committed entries not yet handed out, up to
// the last entry handed out for writing: every one of them is durable or
// in the same Ready's Entries.
func (l *raftLog) nextCommitted() []Entry {
	return l.slice(l.applying+1, min(l.committed, l.handed)+1)
}

// appliedTo records that the application applied up to i.
func (l *raftLog) appliedTo(i uint64) {
	l.applied = max(l.applied, i)
	l.applying = max(l.applying, i)
}

// batch returns the entries from lo up to last (or the end of the log)
// for one MsgApp or Ready: at most maxEntries of them and maxBytes of
// encoding, but always at least one if any exist.
func (l *raftLog) batch(lo, last uint64, maxEntries, maxBytes int) []Entry {
	hi := min(last, l.lastIndex()) + 1
	if lo >= hi {
		return nil
	}
	hi = min(hi, lo+uint64(min(maxEntries, math.MaxInt32)))
	size := 0
	for i := lo; i < hi; i++ {
		size += l.at(i).EncodedSize()
		if size > maxBytes && i > lo {
			hi = i
			break
		}
	}
	return l.slice(lo, hi)
}
