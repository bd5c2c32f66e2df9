package wal

import (
	"bytes"
	"errors"
	"testing"

	"github.com/bifrost-go/bifrost/raft"
)

func FuzzDecodeRecord(f *testing.F) {
	f.Add(record(recordEntry, []byte{1, 1, 0, 3, 'a', 'b', 'c'}))
	f.Add(record(recordHardState, []byte{2, 1, 1}))
	f.Add(record(recordCompact, []byte{9}))
	f.Add([]byte{})
	f.Add(make([]byte, 12))
	f.Fuzz(func(t *testing.T, b []byte) {
		typ, payload, n, err := decodeRecord(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		if n < recordPrefix+1 || n > len(b) {
			t.Fatalf("used %d of %d bytes", n, len(b))
		}
		if again := record(typ, payload); !bytes.Equal(again, b[:n]) {
			t.Fatalf("re-encoding gives %x, input was %x", again, b[:n])
		}
	})
}

// fuzzSegments returns two valid segments of a small log, for seeds and as
// the intact first segment when the fuzzer writes the second.
func fuzzSegments(f *testing.F) (first, second []byte, secondName string) {
	m := newMemFS()
	w := openT(f, Config{Dir: memDir, FS: m, SegmentBytes: 120})
	saveT(f, w, raft.HardState{Term: 1, Vote: 1}, entries(1, 4, 1))
	saveT(f, w, raft.HardState{Term: 2, Vote: 2, Commit: 3}, entries(3, 6, 2))
	if err := w.Compact(2); err != nil {
		f.Fatal(err)
	}
	closeT(f, w)
	w.mu.Lock()
	segs := w.segs
	w.mu.Unlock()
	if len(segs) < 2 {
		f.Fatalf("%d segments, want 2 or more", len(segs))
	}
	first, _ = m.ReadFile(segs[0].path)
	second, _ = m.ReadFile(segs[1].path)
	return first, second, segs[1].path
}

// FuzzOpen feeds arbitrary bytes to recovery as the only segment, or as the
// second after an intact first. Open must not panic, must report anything
// but a clean or torn log as ErrCorrupt, must return only entries whose
// records are in the input, and must leave a WAL that works.
func FuzzOpen(f *testing.F) {
	first, second, secondPath := fuzzSegments(f)
	f.Add(first, false)
	f.Add(second, true)
	f.Add(first[:len(first)-3], false)
	f.Add(second[:20], true)
	f.Add([]byte{}, false)
	firstPath := memDir + "/" + segmentName(0, 1)
	f.Fuzz(func(t *testing.T, data []byte, asSecond bool) {
		m := newMemFS()
		input := data
		if asSecond {
			m.put(firstPath, first)
			m.put(secondPath, data)
			input = append(bytes.Clone(first), data...)
		} else {
			m.put(firstPath, data)
		}
		w, err := Open(Config{Dir: memDir, FS: m, SegmentBytes: 200})
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Open error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		got := w.Recovered()
		checkRecovered(t, got, input)
		next := got.Compacted + uint64(len(got.Entries)) + 1
		saveT(t, w, raft.HardState{Term: 7, Vote: 7, Commit: 7}, entries(next, next, 7))
		w = reopen(t, w, Config{Dir: memDir, FS: m, SegmentBytes: 200})
		want := State{HardState: raft.HardState{Term: 7, Vote: 7, Commit: 7}, Compacted: got.Compacted,
			Entries: append(got.Entries, entries(next, next, 7)...)}
		checkState(t, w.Recovered(), want)
		closeT(t, w)
	})
}

// checkRecovered checks that the entries are contiguous and that each came
// from an intact record of the input.
func checkRecovered(t *testing.T, got State, input []byte) {
	t.Helper()
	for i, e := range got.Entries {
		if e.Index != got.Compacted+1+uint64(i) {
			t.Fatalf("entry %d has index %d after compaction point %d", i, e.Index, got.Compacted)
		}
		b, start := beginRecord(nil, recordEntry)
		b, _ = e.AppendBinary(b)
		if !bytes.Contains(input, finishRecord(b, start)) {
			t.Fatalf("entry %d@%d is not a record of the input", e.Index, e.Term)
		}
	}
	if !got.HardState.IsZero() {
		hs, _ := got.HardState.AppendBinary(nil)
		if !bytes.Contains(input, hs) {
			t.Fatalf("hard state %+v is not in the input", got.HardState)
		}
	}
}
