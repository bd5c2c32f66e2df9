package wal

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/bifrost-go/bifrost/raft"
)

// entries returns entries lo through hi of the given term, with commands
// that name their index and term.
func entries(lo, hi, term uint64) []raft.Entry {
	var es []raft.Entry
	for i := lo; i <= hi; i++ {
		es = append(es, raft.Entry{Index: i, Term: term, Data: fmt.Appendf(nil, "cmd %d@%d", i, term)})
	}
	return es
}

func openT(t testing.TB, cfg Config) *WAL {
	t.Helper()
	w, err := Open(cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return w
}

func closeT(t testing.TB, w *WAL) {
	t.Helper()
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func saveT(t testing.TB, w *WAL, hs raft.HardState, es []raft.Entry) {
	t.Helper()
	if err := w.Save(hs, es); err != nil {
		t.Fatalf("Save(%+v, %d entries): %v", hs, len(es), err)
	}
}

// reopen closes w and opens its directory again.
func reopen(t testing.TB, w *WAL, cfg Config) *WAL {
	t.Helper()
	closeT(t, w)
	return openT(t, cfg)
}

func equalEntries(a, b []raft.Entry) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Index != b[i].Index || a[i].Term != b[i].Term || a[i].Type != b[i].Type || !bytes.Equal(a[i].Data, b[i].Data) {
			return false
		}
	}
	return true
}

func checkState(t testing.TB, got, want State) {
	t.Helper()
	if got.HardState != want.HardState {
		t.Errorf("hard state = %+v, want %+v", got.HardState, want.HardState)
	}
	if got.Compacted != want.Compacted {
		t.Errorf("compacted = %d, want %d", got.Compacted, want.Compacted)
	}
	if !equalEntries(got.Entries, want.Entries) {
		t.Errorf("entries = %s, want %s", describe(got.Entries), describe(want.Entries))
	}
}

func describe(es []raft.Entry) string {
	if len(es) == 0 {
		return "[]"
	}
	return fmt.Sprintf("%d entries [%d@%d .. %d@%d]", len(es), es[0].Index, es[0].Term, es[len(es)-1].Index, es[len(es)-1].Term)
}

func segmentFiles(t testing.TB, dir string) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*.wal"))
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func TestRoundTrip(t *testing.T) {
	cfg := Config{Dir: t.TempDir()}
	w := openT(t, cfg)
	checkState(t, w.Recovered(), State{})
	hs := raft.HardState{Term: 3, Vote: 2, Commit: 4}
	saveT(t, w, raft.HardState{Term: 1}, entries(1, 3, 1))
	saveT(t, w, hs, entries(4, 5, 3))
	w = reopen(t, w, cfg)
	want := State{HardState: hs, Entries: append(entries(1, 3, 1), entries(4, 5, 3)...)}
	checkState(t, w.Recovered(), want)
	w = reopen(t, w, cfg) // a reopen with no saves changes nothing
	checkState(t, w.Recovered(), want)
	closeT(t, w)
}

func TestEntryTypesAndEmptyData(t *testing.T) {
	cfg := Config{Dir: t.TempDir()}
	w := openT(t, cfg)
	es := []raft.Entry{
		{Index: 1, Term: 1, Type: raft.EntryNoop},
		{Index: 2, Term: 1, Type: raft.EntryConfig, Data: []byte{1, 2, 3}},
		{Index: 3, Term: 1, Data: bytes.Repeat([]byte{0xff}, 100_000)},
	}
	saveT(t, w, raft.HardState{Term: 1, Vote: 1}, es)
	w = reopen(t, w, cfg)
	checkState(t, w.Recovered(), State{HardState: raft.HardState{Term: 1, Vote: 1}, Entries: es})
	closeT(t, w)
}

func TestConflictReplacementSurvivesReopen(t *testing.T) {
	cfg := Config{Dir: t.TempDir()}
	w := openT(t, cfg)
	saveT(t, w, raft.HardState{Term: 1}, entries(1, 10, 1))
	saveT(t, w, raft.HardState{Term: 2}, entries(6, 8, 2)) // replaces 6..10
	w = reopen(t, w, cfg)
	want := State{HardState: raft.HardState{Term: 2}, Entries: append(entries(1, 5, 1), entries(6, 8, 2)...)}
	checkState(t, w.Recovered(), want)
	saveT(t, w, raft.HardState{}, entries(9, 9, 2)) // continues after the replacement
	saveT(t, w, raft.HardState{Term: 3}, entries(2, 2, 3))
	w = reopen(t, w, cfg)
	want = State{HardState: raft.HardState{Term: 3}, Entries: append(entries(1, 1, 1), entries(2, 2, 3)...)}
	checkState(t, w.Recovered(), want)
	closeT(t, w)
}

func TestRolloverManySegments(t *testing.T) {
	cfg := Config{Dir: t.TempDir(), SegmentBytes: 256}
	w := openT(t, cfg)
	for i := uint64(1); i <= 300; i += 3 {
		saveT(t, w, raft.HardState{Term: 1, Commit: i - 1}, entries(i, i+2, 1))
	}
	if n := len(segmentFiles(t, cfg.Dir)); n < 20 {
		t.Fatalf("%d segment files, want many", n)
	}
	// Replace a suffix that starts several segments back.
	saveT(t, w, raft.HardState{Term: 2, Commit: 100}, entries(120, 130, 2))
	w = reopen(t, w, cfg)
	want := State{HardState: raft.HardState{Term: 2, Commit: 100}, Entries: append(entries(1, 119, 1), entries(120, 130, 2)...)}
	checkState(t, w.Recovered(), want)
	saveT(t, w, raft.HardState{}, entries(131, 200, 2))
	w = reopen(t, w, cfg)
	want.Entries = append(want.Entries, entries(131, 200, 2)...)
	checkState(t, w.Recovered(), want)
	closeT(t, w)
}

func TestCompact(t *testing.T) {
	cfg := Config{Dir: t.TempDir(), SegmentBytes: 256}
	w := openT(t, cfg)
	hs := raft.HardState{Term: 1, Vote: 1, Commit: 150}
	saveT(t, w, hs, entries(1, 200, 1))
	before := len(segmentFiles(t, cfg.Dir))
	if err := w.Compact(150); err != nil {
		t.Fatalf("Compact: %v", err)
	}
	after := len(segmentFiles(t, cfg.Dir))
	if after >= before/2 {
		t.Errorf("Compact(150) kept %d of %d segments", after, before)
	}
	if err := w.Save(raft.HardState{}, entries(150, 150, 2)); !errors.Is(err, ErrCompacted) {
		t.Errorf("Save at the compaction point: %v, want ErrCompacted", err)
	}
	if err := w.Compact(100); err != nil { // below the point: nothing to do
		t.Errorf("Compact(100) after 150: %v", err)
	}
	w = reopen(t, w, cfg)
	want := State{HardState: hs, Compacted: 150, Entries: entries(151, 200, 1)}
	checkState(t, w.Recovered(), want)

	// A compaction past the end empties the log; it resumes after it.
	if err := w.Compact(500); err != nil {
		t.Fatalf("Compact(500): %v", err)
	}
	if err := w.Save(raft.HardState{}, entries(502, 502, 3)); !errors.Is(err, ErrGap) {
		t.Errorf("Save past the compaction point plus one: %v, want ErrGap", err)
	}
	w = reopen(t, w, cfg)
	checkState(t, w.Recovered(), State{HardState: hs, Compacted: 500})
	hs.Term = 3
	saveT(t, w, hs, entries(501, 600, 3))
	if err := w.Compact(550); err != nil {
		t.Fatalf("Compact(550): %v", err)
	}
	w = reopen(t, w, cfg)
	checkState(t, w.Recovered(), State{HardState: hs, Compacted: 550, Entries: entries(551, 600, 3)})
	// The hard state saved long ago lives on in the headers of the kept
	// segments, though the segment that recorded it is gone.
	if n := len(segmentFiles(t, cfg.Dir)); n > 10 {
		t.Errorf("%d segments after compacting all but 50 entries", n)
	}
	closeT(t, w)
}

func TestSaveRefusesBadBatches(t *testing.T) {
	w := openT(t, Config{Dir: t.TempDir()})
	saveT(t, w, raft.HardState{Term: 1}, entries(1, 5, 1))
	tests := []struct {
		name string
		es   []raft.Entry
		want error
	}{
		{"gap", entries(7, 8, 1), ErrGap},
		{"not contiguous", append(entries(6, 6, 1), entries(8, 8, 1)...), ErrGap},
		{"index zero", []raft.Entry{{Index: 0, Term: 1}}, ErrCompacted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := w.Save(raft.HardState{}, tt.es); !errors.Is(err, tt.want) {
				t.Errorf("Save = %v, want %v", err, tt.want)
			}
		})
	}
	closeT(t, w)
	if err := w.Save(raft.HardState{}, entries(6, 6, 1)); !errors.Is(err, ErrClosed) {
		t.Errorf("Save after Close = %v, want ErrClosed", err)
	}
	if err := w.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close = %v, want ErrClosed", err)
	}
}

func TestOpenRefusesBadConfig(t *testing.T) {
	for _, cfg := range []Config{{}, {Dir: t.TempDir(), SegmentBytes: -1}} {
		if _, err := Open(cfg); !errors.Is(err, ErrBadConfig) {
			t.Errorf("Open(%+v) = %v, want ErrBadConfig", cfg, err)
		}
	}
}

func TestOpenCreatesDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	w := openT(t, Config{Dir: dir})
	closeT(t, w)
	if _, err := os.Stat(dir); err != nil {
		t.Fatal(err)
	}
}

func TestMissingSegmentIsCorrupt(t *testing.T) {
	cfg := Config{Dir: t.TempDir(), SegmentBytes: 128}
	w := openT(t, cfg)
	saveT(t, w, raft.HardState{Term: 1}, entries(1, 50, 1))
	closeT(t, w)
	files := segmentFiles(t, cfg.Dir)
	for _, victim := range []string{files[0], files[len(files)/2]} {
		t.Run(filepath.Base(victim), func(t *testing.T) {
			data, err := os.ReadFile(victim)
			if err != nil {
				t.Fatal(err)
			}
			os.Remove(victim)
			defer os.WriteFile(victim, data, 0o644)
			if _, err := Open(cfg); !errors.Is(err, ErrCorrupt) {
				t.Errorf("Open without %s = %v, want ErrCorrupt", filepath.Base(victim), err)
			}
		})
	}
}

func TestStickyErrorAfterFailedSync(t *testing.T) {
	m := newMemFS()
	w := openT(t, Config{Dir: "/wal", FS: m})
	saveT(t, w, raft.HardState{Term: 1}, entries(1, 1, 1))
	m.syncErr = errors.New("disk on fire")
	if err := w.Save(raft.HardState{}, entries(2, 2, 1)); err == nil {
		t.Fatal("Save with a failing fsync succeeded")
	}
	m.syncErr = nil
	if err := w.Save(raft.HardState{}, entries(2, 2, 1)); err == nil {
		t.Fatal("Save after a failed fsync succeeded")
	}
}
