package wal

import (
	"testing"

	"github.com/bifrost-go/bifrost/raft"
)

// Stats counts every fsync of a segment into its latency histogram, and
// the bytes of what was appended.
func TestStatsCountSyncsAndBytes(t *testing.T) {
	w := openT(t, Config{Dir: t.TempDir(), FS: newMemFS()})
	defer closeT(t, w)
	before := w.Stats()
	saveT(t, w, raft.HardState{Term: 1}, entries(1, 3, 1))
	saveT(t, w, raft.HardState{}, entries(4, 4, 1))
	got := w.Stats()
	if n := got.Syncs - before.Syncs; n < 2 {
		t.Errorf("syncs: got %d more, want at least 2 (two Saves)", n)
	}
	if got.SyncSeconds.Count != got.Syncs {
		t.Errorf("fsync histogram counts %d, want every fsync, %d", got.SyncSeconds.Count, got.Syncs)
	}
	var payload uint64
	for _, e := range entries(1, 4, 1) {
		payload += uint64(len(e.Data))
	}
	if n := got.BytesAppended - before.BytesAppended; n <= payload {
		t.Errorf("bytes appended: got %d more, want over the %d bytes of commands", n, payload)
	}
}
