package wal

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"slices"

	"github.com/bifrost-go/bifrost/raft"
)

// segmentHeader is the payload of the first record of every segment: the
// state of the log when the segment was created. It makes each segment
// self-describing, so older segments can be deleted without losing the hard
// state or the point where the log starts.
type segmentHeader struct {
	Seq       uint64         // the segment's sequence number, as in its name
	Last      uint64         // last index of the log when it was created
	Compacted uint64         // compaction point when it was created
	HardState raft.HardState // hard state when it was created
}

// appendBinary appends the header's encoding: three uvarints, then the
// raft encoding of the hard state.
func (h *segmentHeader) appendBinary(b []byte) []byte {
	b = binary.AppendUvarint(b, h.Seq)
	b = binary.AppendUvarint(b, h.Last)
	b = binary.AppendUvarint(b, h.Compacted)
	b, _ = h.HardState.AppendBinary(b) // never fails
	return b
}

// unmarshal decodes a header that fills b exactly.
func (h *segmentHeader) unmarshal(b []byte) error {
	for _, v := range []*uint64{&h.Seq, &h.Last, &h.Compacted} {
		x, n := binary.Uvarint(b)
		if n <= 0 {
			return fmt.Errorf("%w: segment header: bad uvarint", ErrCorrupt)
		}
		*v, b = x, b[n:]
	}
	if h.Compacted > h.Last {
		return fmt.Errorf("%w: segment header: compaction point %d past last index %d", ErrCorrupt, h.Compacted, h.Last)
	}
	if err := h.HardState.UnmarshalBinary(b); err != nil {
		return fmt.Errorf("%w: segment header: %v", ErrCorrupt, err)
	}
	return nil
}

// segment is a segment file the WAL knows of.
type segment struct {
	seq   uint64 // sequence number, from the name
	first uint64 // first index it may hold, from the name: header.Last+1
	path  string
}

// segmentName is the file name of the segment with the given sequence
// number whose first entry would have the given index.
func segmentName(seq, first uint64) string {
	return fmt.Sprintf("%016x-%016x.wal", seq, first)
}

// parseSegmentName reverses segmentName; ok is false for any other name.
func parseSegmentName(name string) (seq, first uint64, ok bool) {
	if len(name) != 16+1+16+4 {
		return 0, 0, false
	}
	var tail string
	n, err := fmt.Sscanf(name, "%016x-%016x%s", &seq, &first, &tail)
	if err != nil || n != 3 || tail != ".wal" || segmentName(seq, first) != name {
		return 0, 0, false
	}
	return seq, first, true
}

// listSegments returns the segments in dir, sorted by sequence number. A
// missing sequence number means a segment was lost: ErrCorrupt. Files with
// other names are ignored.
func listSegments(fs FS, dir string) ([]segment, error) {
	names, err := fs.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var segs []segment
	for _, name := range names {
		if seq, first, ok := parseSegmentName(name); ok {
			segs = append(segs, segment{seq: seq, first: first, path: filepath.Join(dir, name)})
		}
	}
	slices.SortFunc(segs, func(a, b segment) int { return cmp.Compare(a.seq, b.seq) })
	for i := 1; i < len(segs); i++ {
		if segs[i].seq != segs[i-1].seq+1 {
			return nil, fmt.Errorf("%w: segment %d missing before %s", ErrCorrupt, segs[i-1].seq+1, segs[i].path)
		}
	}
	return segs, nil
}
