package linearizability

import (
	"errors"
	"testing"

	"github.com/bifrost-go/bifrost/raft"
	"github.com/bifrost-go/bifrost/raft/wal"
)

// TestCrashFSLosesWhatWasNotSynced checks the fault file system under a
// real WAL: entries Saved (synced) survive a crash, entries only
// Appended do not, the dying WAL's later writes fail and go nowhere, and
// with a broken disk the entries of the last sync are lost too.
func TestCrashFSLosesWhatWasNotSynced(t *testing.T) {
	entries := func(from, to uint64) []raft.Entry {
		var out []raft.Entry
		for i := from; i <= to; i++ {
			out = append(out, raft.Entry{Index: i, Term: 1, Data: []byte("command")})
		}
		return out
	}
	const dir = "/crashfs/wal"
	for _, tt := range []struct {
		name     string
		broken   bool
		wantLast uint64
	}{
		{"honest disk", false, 5},
		{"disk that acknowledges syncs early", true, 3},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fs := newCrashFS(tt.broken)
			w, err := wal.Open(wal.Config{Dir: dir, FS: fs})
			if err != nil {
				t.Fatal(err)
			}
			hs := raft.HardState{Term: 1}
			for _, batch := range [][2]uint64{{1, 3}, {4, 5}} {
				if err := w.Save(hs, entries(batch[0], batch[1])); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Append(hs, entries(6, 8)); err != nil {
				t.Fatal(err)
			}
			after, _ := fs.crash()
			if err := w.Save(hs, entries(9, 9)); !errors.Is(err, errCrashed) {
				t.Errorf("save after the crash: %v, want errCrashed", err)
			}
			w.Close()
			w, err = wal.Open(wal.Config{Dir: dir, FS: after})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			got := w.Recovered().Entries
			if n := uint64(len(got)); n != tt.wantLast || n > 0 && got[n-1].Index != tt.wantLast {
				t.Errorf("recovered %d entries, want through %d", n, tt.wantLast)
			}
		})
	}
}
