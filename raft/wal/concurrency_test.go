package wal

import (
	"runtime"
	"sync"
	"testing"

	"github.com/bifrost-go/bifrost/raft"
)

// TestGroupCommitSharesFsyncs holds the first fsync open while 63 more
// Saves append, then lets it go: one more fsync must serve all 63.
func TestGroupCommitSharesFsyncs(t *testing.T) {
	m := newMemFS()
	w := openT(t, Config{Dir: memDir, FS: m})
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	m.syncHook = func() { once.Do(func() { close(entered); <-release }) }
	base := w.syncs.Load()

	const callers = 64
	errs := make(chan error, callers)
	save := func(i uint64) { errs <- w.Save(raft.HardState{Term: 1, Commit: i}, nil) }
	var wg sync.WaitGroup
	wg.Go(func() { save(0) })
	<-entered
	w.mu.Lock()
	start := w.written
	w.mu.Unlock()
	for i := uint64(1); i < callers; i++ {
		wg.Go(func() { save(i) })
	}
	// Each hard state record is 12 bytes; wait until all are buffered.
	for appended := uint64(0); appended < (callers-1)*12; runtime.Gosched() {
		w.mu.Lock()
		appended = w.written - start
		w.mu.Unlock()
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Save: %v", err)
		}
	}
	if got := w.syncs.Load() - base; got != 2 {
		t.Errorf("%d Saves took %d fsyncs, want 2", callers, got)
	}
	closeT(t, w)
}

// TestConcurrentSaves runs writers of entries (Append under the caller's
// lock, then Sync) and of hard states (Save) at once, under -race.
func TestConcurrentSaves(t *testing.T) {
	cfg := Config{Dir: t.TempDir(), SegmentBytes: 4096}
	w := openT(t, cfg)
	base := w.syncs.Load()
	const writers, rounds = 32, 30
	var (
		mu   sync.Mutex // protects next; orders Appends as the raft driver would
		next = uint64(1)
		wg   sync.WaitGroup
	)
	for g := range writers {
		wg.Go(func() {
			for r := range rounds {
				var err error
				if g%2 == 0 {
					err = w.Save(raft.HardState{Term: 1, Vote: uint64(g), Commit: uint64(r)}, nil)
				} else {
					mu.Lock()
					err = w.Append(raft.HardState{}, entries(next, next, 1))
					next++
					mu.Unlock()
					if err == nil {
						err = w.Sync()
					}
				}
				if err != nil {
					t.Errorf("writer %d: %v", g, err)
					return
				}
			}
		})
	}
	wg.Wait()
	syncs := w.syncs.Load() - base
	t.Logf("%d calls, %d fsyncs", writers*rounds, syncs)
	if syncs > writers*rounds {
		t.Errorf("%d fsyncs for %d calls", syncs, writers*rounds)
	}
	w = reopen(t, w, cfg)
	if got := w.Recovered().Entries; !equalEntries(got, entries(1, next-1, 1)) {
		t.Errorf("entries = %s, want 1 to %d", describe(got), next-1)
	}
	closeT(t, w)
}
