package rafttest

import (
	"github.com/bifrost-go/bifrost/raft"
)

// disk is a node's simulated stable storage: what survived the last sync.
// Writes of a Ready become durable together at a sync point; a crash
// between write and sync keeps only a prefix of them (see Faults.TornWrite).
type disk struct {
	hs raft.HardState
	// log holds the entries after the snapshot: log[i] holds index
	// snap.Index+i+1. terms and chain cover every index from 1, compacted
	// or not, so the checks can compare prefixes across snapshots.
	log   []raft.Entry
	terms []uint64 // terms[i] is the term of index i+1
	chain []uint64 // chain[i] hashes entries 1..i+1: equal chains mean equal prefixes
	// snap and snapData are the newest durable snapshot (taken or
	// installed): the application state at snap.Index, encoded.
	snap     raft.SnapshotMeta
	snapData []byte
	// state is the durable application state (a hash of every entry
	// applied, see appState) at applied.
	state uint64
	// votes is every vote hs ever recorded, by term: a node may repeat a
	// vote after moving on to a later term.
	votes map[uint64]uint64
	// applied is the application's own durable progress: the state machine
	// keeps its applied index with its state, so a restart resumes there
	// (unless Options.VolatileApp).
	applied uint64
}

func (d *disk) lastIndex() uint64 { return uint64(len(d.chain)) }

// term returns the term of the entry at index i, or 0 if there is none.
func (d *disk) term(i uint64) uint64 {
	if i == 0 || i > d.lastIndex() {
		return 0
	}
	return d.terms[i-1]
}

// entry returns the entry at index i, if the log (not the snapshot) holds it.
func (d *disk) entry(i uint64) (*raft.Entry, bool) {
	if i <= d.snap.Index || i > d.lastIndex() {
		return nil, false
	}
	return &d.log[i-d.snap.Index-1], true
}

// chainAt returns the prefix hash up to index i (0 for the empty prefix).
func (d *disk) chainAt(i uint64) uint64 {
	if i == 0 {
		return 0
	}
	return d.chain[i-1]
}

// append replaces the log from ents[0].Index on with ents, as the Ready
// contract says. Entries the snapshot covers are skipped.
func (d *disk) append(ents []raft.Entry) {
	for len(ents) > 0 && ents[0].Index <= d.snap.Index {
		ents = ents[1:] // covered by the snapshot, and committed: the same
	}
	if len(ents) == 0 {
		return
	}
	first := ents[0].Index
	d.log = d.log[:first-1-d.snap.Index]
	d.chain = d.chain[:first-1]
	d.terms = d.terms[:first-1]
	for _, e := range ents {
		d.chain = append(d.chain, chainHash(d.chainAt(e.Index-1), &e))
		d.terms = append(d.terms, e.Term)
		d.log = append(d.log, e)
	}
}

// compact drops the log up to the snapshot the node just took at meta.
func (d *disk) compact(meta raft.SnapshotMeta, data []byte) {
	d.log = append([]raft.Entry(nil), d.log[meta.Index-d.snap.Index:]...)
	d.snap, d.snapData = meta, data
}

// install makes a snapshot received from the leader durable: the log
// goes on after it if it agrees at the snapshot's index, else it restarts
// there, with the committed terms and chain hashes up to it.
func (d *disk) install(meta raft.SnapshotMeta, data []byte, terms, chain []uint64) {
	if meta.Index <= d.lastIndex() && d.term(meta.Index) == meta.Term && meta.Index >= d.snap.Index {
		d.log = append([]raft.Entry(nil), d.log[meta.Index-d.snap.Index:]...)
	} else {
		d.log = nil
		d.terms = append([]uint64(nil), terms[:meta.Index]...)
		d.chain = append([]uint64(nil), chain[:meta.Index]...)
	}
	d.snap, d.snapData = meta, data
}

// entries returns a copy of the durable log after the snapshot, for a
// restart.
func (d *disk) entries() []raft.Entry {
	return append([]raft.Entry(nil), d.log...)
}

// FNV-1a, written out so hashing an entry allocates nothing.
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func fnvUint(h, v uint64) uint64 {
	for range 8 {
		h ^= v & 0xff
		h *= fnvPrime
		v >>= 8
	}
	return h
}

func fnvBytes(h uint64, b []byte) uint64 {
	for _, c := range b {
		h ^= uint64(c)
		h *= fnvPrime
	}
	return h
}

// entryHash hashes one entry's term, type and data.
func entryHash(e *raft.Entry) uint64 {
	h := fnvUint(fnvOffset, e.Term)
	h = fnvUint(h, uint64(e.Type))
	h = fnvUint(h, uint64(len(e.Data)))
	return fnvBytes(h, e.Data)
}

// chainHash extends the hash of a log prefix by one entry.
func chainHash(prev uint64, e *raft.Entry) uint64 {
	return fnvUint(fnvUint(fnvOffset, prev), entryHash(e))
}

// written returns the term and prefix hash of the entry at index i in the
// log n has written: its disk with the write in flight, if any, applied.
func (n *node) written(i uint64) (term, chain uint64, ok bool) {
	if w := n.writing; w != nil && len(w.Entries) > 0 && i >= w.Entries[0].Index {
		first := w.Entries[0].Index
		if i-first >= uint64(len(w.Entries)) {
			return 0, 0, false
		}
		chain = n.disk.chainAt(first - 1)
		for j := range w.Entries[:i-first+1] {
			chain = chainHash(chain, &w.Entries[j])
		}
		return w.Entries[i-first].Term, chain, true
	}
	if i == 0 || i > n.disk.lastIndex() {
		return 0, 0, false
	}
	return n.disk.term(i), n.disk.chainAt(i), true
}
