package wal

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/bifrost-go/bifrost/raft"
)

const memDir = "/wal"

// snapshot is the state after one Save and where the active segment ended.
type snapshot struct {
	state State
	path  string // the active segment
	size  int    // its length, not counting preallocated space
}

// history builds a WAL in memory, one record per Save: an entry, and every
// third time a new hard state after it. It returns the state after each
// Save.
func history(t *testing.T, segmentBytes int64, saves int) (*memFS, []snapshot) {
	t.Helper()
	m := newMemFS()
	w := openT(t, Config{Dir: memDir, FS: m, SegmentBytes: segmentBytes})
	var st State
	hist := []snapshot{w.snapshot(st)}
	for i := uint64(1); i <= uint64(saves); i++ {
		e := entries(i, i, i)
		saveT(t, w, raft.HardState{}, e)
		st.Entries = append(slices.Clone(st.Entries), e...)
		hist = append(hist, w.snapshot(st))
		if i%3 == 0 {
			st.HardState = raft.HardState{Term: i, Vote: 1, Commit: i - 1}
			saveT(t, w, st.HardState, nil)
			hist = append(hist, w.snapshot(st))
		}
	}
	closeT(t, w)
	return m, hist
}

func (w *WAL) snapshot(st State) snapshot {
	w.mu.Lock()
	defer w.mu.Unlock()
	return snapshot{state: st, path: w.segs[len(w.segs)-1].path, size: int(w.size)}
}

// withFile returns a copy of m's durable files with path replaced by data.
func withFile(m *memFS, path string, data []byte) *memFS {
	c := m.crash(nil)
	c.put(path, data)
	return c
}

func TestKillBetweenWriteAndFsync(t *testing.T) {
	for _, segBytes := range []int64{DefaultSegmentBytes, 512} {
		killBetweenWriteAndFsync(t, segBytes)
	}
}

// killBetweenWriteAndFsync saves some entries, appends more and writes them
// to the file without an fsync, then crashes. Recovery must keep every
// synced record and may keep only a prefix of the others: a rollover in
// the middle of the unsynced batch syncs the segment it closes.
func killBetweenWriteAndFsync(t *testing.T, segBytes int64) {
	m := newMemFS()
	w := openT(t, Config{Dir: memDir, FS: m, SegmentBytes: segBytes})
	hs := raft.HardState{Term: 2, Vote: 1, Commit: 3}
	saveT(t, w, hs, entries(1, 20, 2))
	synced := State{HardState: hs, Entries: entries(1, 20, 2)}
	unsynced := entries(21, 40, 2)
	if err := w.Append(raft.HardState{Term: 3}, unsynced); err != nil {
		t.Fatal(err)
	}
	w.mu.Lock()
	w.flushLocked() // the write reaches the file; the fsync never happens
	w.mu.Unlock()

	if segBytes == DefaultSegmentBytes {
		w2 := openT(t, Config{Dir: memDir, FS: m.crash(nil)})
		checkState(t, w2.Recovered(), synced)
	}
	for seed := range uint64(300) {
		rng := rand.New(rand.NewPCG(seed, 1))
		w2, err := Open(Config{Dir: memDir, FS: m.crash(rng)})
		if err != nil {
			t.Fatalf("seed %d: Open: %v", seed, err)
		}
		got := w2.Recovered()
		n := len(got.Entries) - len(synced.Entries)
		if n < 0 || !equalEntries(got.Entries, append(slices.Clone(synced.Entries), unsynced[:n]...)) {
			t.Fatalf("segments of %d bytes, seed %d: entries %s, want the synced ones and a prefix of the rest", segBytes, seed, describe(got.Entries))
		}
		if got.HardState != hs && (got.HardState != raft.HardState{Term: 3} || n != len(unsynced)) {
			t.Fatalf("segments of %d bytes, seed %d: hard state %+v with %d unsynced entries", segBytes, seed, got.HardState, n)
		}
	}
}

func TestTruncateLastSegmentAtEveryOffset(t *testing.T) {
	for _, segBytes := range []int64{DefaultSegmentBytes, 300} {
		m, hist := history(t, segBytes, 40)
		last := hist[len(hist)-1]
		data, _ := m.ReadFile(last.path)
		for cut := range len(data) + 1 {
			w, err := Open(Config{Dir: memDir, FS: withFile(m, last.path, data[:cut])})
			if err != nil {
				t.Fatalf("segments of %d bytes, cut at %d: Open: %v", segBytes, cut, err)
			}
			want := expectedAt(hist, last.path, cut)
			checkState(t, w.Recovered(), want)
			// The WAL goes on from what it recovered.
			next := entries(uint64(len(want.Entries))+1, uint64(len(want.Entries))+1, 99)
			saveT(t, w, raft.HardState{}, next)
			w = reopen(t, w, Config{Dir: memDir, FS: w.fs})
			want.Entries = append(want.Entries, next...)
			checkState(t, w.Recovered(), want)
			if t.Failed() {
				t.Fatalf("segments of %d bytes, cut at %d of %d", segBytes, cut, len(data))
			}
		}
	}
}

// expectedAt is the newest state whose records all lie in the first cut
// bytes of the last segment.
func expectedAt(hist []snapshot, path string, cut int) State {
	for i := len(hist) - 1; i >= 0; i-- {
		if hist[i].path != path || hist[i].size <= cut {
			return hist[i].state
		}
	}
	return State{}
}

func TestFlipBitInLastRecord(t *testing.T) {
	m, hist := history(t, 400, 20)
	last, prev := hist[len(hist)-1], hist[len(hist)-2]
	if last.path != prev.path {
		t.Fatal("the last save started a segment; pick another size")
	}
	data, _ := m.ReadFile(last.path)
	for bit := prev.size * 8; bit < last.size*8; bit++ {
		bad := bytes.Clone(data)
		bad[bit/8] ^= 1 << (bit % 8)
		fs := withFile(m, last.path, bad)
		w := openT(t, Config{Dir: memDir, FS: fs})
		checkState(t, w.Recovered(), prev.state)
		closeT(t, w)
		if got, _ := fs.ReadFile(last.path); !bytes.Equal(got[:prev.size], data[:prev.size]) || !allZero(got[prev.size:]) {
			t.Errorf("bit %d: segment not truncated at the bad record", bit)
		}
		if t.Failed() {
			t.Fatalf("bit %d flipped", bit)
		}
	}
}

func TestFlipBitInEarlierSegmentIsCorrupt(t *testing.T) {
	m, hist := history(t, 300, 30)
	first := hist[0].path
	if hist[len(hist)-1].path == first {
		t.Fatal("one segment only; pick a smaller size")
	}
	data, _ := m.ReadFile(first)
	for bit := range len(data) * 8 {
		bad := bytes.Clone(data)
		bad[bit/8] ^= 1 << (bit % 8)
		if _, err := Open(Config{Dir: memDir, FS: withFile(m, first, bad)}); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("bit %d of the first segment flipped: Open = %v, want ErrCorrupt", bit, err)
		}
	}
}

// The records are followed on disk by zeros written ahead of them (fsyncs
// then flush data only). The zeros read as preallocated space: a reopen
// keeps every record, appends over them, and a crash among them loses
// nothing that was synced.
func TestZerosWrittenAheadOfRecords(t *testing.T) {
	m := newMemFS()
	cfg := Config{Dir: memDir, FS: m}
	w := openT(t, cfg)
	var want []raft.Entry
	rng := rand.New(rand.NewPCG(7, 7))
	entry := func(i int) []raft.Entry { // past the preallocation in a few
		return []raft.Entry{{Index: uint64(i), Term: 1, Data: fmt.Appendf(nil, "%0100d", i)}}
	}
	for round := 1; round <= 40; round++ {
		es := entry(len(want) + 1)
		saveT(t, w, raft.HardState{Term: 1}, es)
		want = append(want, es...)
		path, records := w.segs[len(w.segs)-1].path, int(w.size)
		disk := m.durable[path].synced
		if len(disk) < records+memZeroAhead/2 || !allZero(disk[records:]) {
			t.Fatalf("after entry %d the segment holds %d bytes for %d of records, want records then at least %d zeros",
				len(want), len(disk), records, memZeroAhead/2)
		}
		switch {
		case round%10 == 0:
			w = reopen(t, w, cfg)
		case round%7 == 0: // a crash tears the unsynced record and zeros at random
			unsynced := entry(len(want) + 1)
			if err := w.Append(raft.HardState{}, unsynced); err != nil {
				t.Fatal(err)
			}
			m = m.crash(rng)
			closeT(t, w)
			cfg.FS = m
			w = openT(t, cfg)
			if len(w.Recovered().Entries) > len(want) {
				want = append(want, unsynced...)
			}
		default:
			continue
		}
		checkState(t, w.Recovered(), State{HardState: raft.HardState{Term: 1}, Entries: want})
	}
	closeT(t, w)
}
