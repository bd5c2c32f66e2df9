package wal

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/bifrost-go/bifrost/raft"
)

// replay rebuilds the log from intact records, applying them with the same
// rules as Save. It is pure: recovery reads the files and feeds it records.
type replay struct {
	started   bool // a segment header has been seen
	hs        raft.HardState
	compacted uint64
	last      uint64
	entries   []raft.Entry // the known suffix of the log, ending at last
	// missing is the top of a range of entries (compacted, missing] that
	// no segment read holds: they were in segments deleted after a
	// compaction. A later compaction record must cover them.
	missing uint64
}

// record applies one intact record of a segment; first tells whether it is
// the segment's first record, which must be its header.
func (r *replay) record(t recordType, payload []byte, first bool, seg segment) error {
	if first != (t == recordHeader) {
		return fmt.Errorf("%w: segment header must come first, and only first", ErrCorrupt)
	}
	switch t {
	case recordHeader:
		return r.header(payload, seg)
	case recordEntry:
		var e raft.Entry
		if err := e.UnmarshalBinary(payload); err != nil {
			return fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
		return r.entry(e)
	case recordHardState:
		if err := r.hs.UnmarshalBinary(payload); err != nil {
			return fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
		return nil
	case recordCompact:
		return r.compact(payload)
	}
	return fmt.Errorf("%w: unknown record type %d", ErrCorrupt, t)
}

// header checks a segment header against its file name and, after the
// first segment, against the state replayed so far; the first segment's
// header sets the state.
func (r *replay) header(payload []byte, seg segment) error {
	var h segmentHeader
	if err := h.unmarshal(payload); err != nil {
		return err
	}
	if h.Seq != seg.seq || h.Last+1 != seg.first {
		return fmt.Errorf("%w: header (seq %d, last %d) does not match the file name", ErrCorrupt, h.Seq, h.Last)
	}
	if !r.started {
		r.started = true
		r.hs, r.compacted, r.last, r.missing = h.HardState, h.Compacted, h.Last, h.Last
		return nil
	}
	if h.Last != r.last || h.Compacted != r.compacted || h.HardState != r.hs {
		return fmt.Errorf("%w: header (last %d, compacted %d, %+v) disagrees with the log before it (last %d, compacted %d, %+v)",
			ErrCorrupt, h.Last, h.Compacted, h.HardState, r.last, r.compacted, r.hs)
	}
	return nil
}

// entry appends e, first replacing the suffix from e.Index on.
func (r *replay) entry(e raft.Entry) error {
	if e.Index <= r.compacted {
		return fmt.Errorf("%w: entry %d at or below the compaction point %d", ErrCorrupt, e.Index, r.compacted)
	}
	if e.Index > r.last+1 {
		return fmt.Errorf("%w: entry %d after last index %d leaves a gap", ErrCorrupt, e.Index, r.last)
	}
	r.truncate(e.Index)
	r.entries = append(r.entries, e)
	r.last = e.Index
	return nil
}

// truncate drops the entries from index i on.
func (r *replay) truncate(i uint64) {
	keep := 0
	if len(r.entries) > 0 && i > r.entries[0].Index {
		keep = int(i - r.entries[0].Index)
	}
	clear(r.entries[keep:]) // let the dropped commands be collected
	r.entries = r.entries[:keep]
	r.last = i - 1
	r.missing = min(r.missing, i-1)
}

// compact applies a compaction record: entries up to the index are gone.
func (r *replay) compact(payload []byte) error {
	c, n := binary.Uvarint(payload)
	if n <= 0 || n != len(payload) {
		return fmt.Errorf("%w: bad compaction record", ErrCorrupt)
	}
	if c <= r.compacted {
		return fmt.Errorf("%w: compaction to %d does not pass %d", ErrCorrupt, c, r.compacted)
	}
	r.compacted = c
	drop := 0
	for drop < len(r.entries) && r.entries[drop].Index <= c {
		drop++
	}
	r.entries = slices.Delete(r.entries, 0, drop)
	r.last = max(r.last, c)
	return nil
}

// result checks that the replayed log is whole and returns it.
func (r *replay) result() (State, error) {
	if r.missing > r.compacted {
		return State{}, fmt.Errorf("%w: entries %d to %d are in no segment", ErrCorrupt, r.compacted+1, r.missing)
	}
	if uint64(len(r.entries)) != r.last-r.compacted {
		// The rules above keep the log contiguous; this is a broken invariant.
		panic(fmt.Sprintf("wal: replay holds %d entries for (%d, %d]", len(r.entries), r.compacted, r.last))
	}
	return State{HardState: r.hs, Compacted: r.compacted, Entries: r.entries}, nil
}
