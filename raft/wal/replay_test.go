package wal

import (
	"encoding/binary"
	"errors"
	"slices"
	"testing"

	"github.com/bifrost-go/bifrost/raft"
)

func hdr(seq, last, compacted uint64) []byte {
	h := segmentHeader{Seq: seq, Last: last, Compacted: compacted, HardState: raft.HardState{Term: 1}}
	return record(recordHeader, h.appendBinary(nil))
}

func ent(i uint64) []byte {
	b, _ := (&raft.Entry{Index: i, Term: 1}).AppendBinary(nil)
	return record(recordEntry, b)
}

func cmpRec(c uint64) []byte { return record(recordCompact, binary.AppendUvarint(nil, c)) }

// seg is a segment file made of the given records.
type seg struct {
	seq, first uint64
	recs       [][]byte
}

func openSegments(segs ...seg) (State, error) {
	m := newMemFS()
	for _, s := range segs {
		m.put(memDir+"/"+segmentName(s.seq, s.first), slices.Concat(s.recs...))
	}
	w, err := Open(Config{Dir: memDir, FS: m})
	if err != nil {
		return State{}, err
	}
	defer w.Close()
	return w.Recovered(), nil
}

// TestReplayRefusesInconsistentRecords feeds recovery intact records (good
// CRCs) that no WAL writes: each is corruption, even in the last segment.
func TestReplayRefusesInconsistentRecords(t *testing.T) {
	tests := []struct {
		name string
		segs []seg
	}{
		{"header seq differs from name", []seg{{0, 1, [][]byte{hdr(1, 0, 0)}}}},
		{"header last differs from name", []seg{{0, 1, [][]byte{hdr(0, 5, 0)}}}},
		{"header compacted past last", []seg{{0, 1, [][]byte{hdr(0, 0, 3)}}}},
		{"header disagrees with log", []seg{{0, 1, [][]byte{hdr(0, 0, 0), ent(1)}}, {1, 3, [][]byte{hdr(1, 2, 0)}}}},
		{"header not first", []seg{{0, 1, [][]byte{ent(1), hdr(0, 0, 0)}}}},
		{"second header", []seg{{0, 1, [][]byte{hdr(0, 0, 0), hdr(0, 0, 0)}}}},
		{"entry gap", []seg{{0, 1, [][]byte{hdr(0, 0, 0), ent(1), ent(3)}}}},
		{"entry below compaction", []seg{{0, 1, [][]byte{hdr(0, 0, 0), ent(1), ent(2), cmpRec(2), ent(2)}}}},
		{"compaction not advancing", []seg{{0, 1, [][]byte{hdr(0, 0, 0), cmpRec(2), cmpRec(2)}}}},
		{"bad compaction payload", []seg{{0, 1, [][]byte{hdr(0, 0, 0), record(recordCompact, []byte{0x80})}}}},
		{"unknown type", []seg{{0, 1, [][]byte{hdr(0, 0, 0), record(9, nil)}}}},
		{"undecodable entry", []seg{{0, 1, [][]byte{hdr(0, 0, 0), record(recordEntry, []byte{1})}}}},
		{"undecodable hard state", []seg{{0, 1, [][]byte{hdr(0, 0, 0), record(recordHardState, []byte{1, 1, 1, 1})}}}},
		{"undecodable header", []seg{{0, 1, [][]byte{record(recordHeader, []byte{0x80})}}}},
		{"entries in no segment", []seg{{3, 11, [][]byte{hdr(3, 10, 4), ent(11)}}}},
		{"lost header of an only segment", []seg{{3, 11, nil}}},
		{"empty earlier segment", []seg{{0, 1, nil}, {1, 1, [][]byte{hdr(1, 0, 0)}}}},
		{"zeros after an earlier segment", []seg{{0, 1, [][]byte{hdr(0, 0, 0), ent(1), make([]byte, 20)}}, {1, 2, [][]byte{hdr(1, 1, 0)}}}},
		{"missing segment", []seg{{0, 1, [][]byte{hdr(0, 0, 0)}}, {2, 1, [][]byte{hdr(2, 0, 0)}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := openSegments(tt.segs...)
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Open = %v, want ErrCorrupt", err)
			}
			t.Log(err)
		})
	}
}

// TestReplayAfterDeletedSegments starts from a segment whose predecessors
// were deleted: the compaction record later in the log covers them.
func TestReplayAfterDeletedSegments(t *testing.T) {
	got, err := openSegments(
		seg{3, 11, [][]byte{hdr(3, 10, 4), ent(11), ent(9)}}, // 9 replaces 9..11
		seg{4, 10, [][]byte{hdr(4, 9, 4), ent(10), cmpRec(8)}},
	)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	want := State{HardState: raft.HardState{Term: 1}, Compacted: 8, Entries: []raft.Entry{{Index: 9, Term: 1}, {Index: 10, Term: 1}}}
	checkState(t, got, want)
}
