package wal

import (
	"fmt"
	"math"
)

// Group commit. Writers append records under mu and learn their position
// in written; durability is a question of whether synced has passed it.
// One goroutine at a time runs a sync, which covers everything appended
// before it started. Writers it does not cover wait for it to end, are all
// woken at once, and the first of them to claim the next sync runs it for
// everyone appended meanwhile: one fsync per wave, not one per writer.

// waitSynced returns once the first pos bytes ever appended are durable.
func (w *WAL) waitSynced(pos uint64) error {
	for {
		done, covered, claimed := w.tryClaimSync(pos)
		switch {
		case covered:
			return nil
		case claimed:
			return w.runSync()
		}
		<-done
	}
}

// tryClaimSync reports whether pos is durable. If not and no sync runs, it
// claims the next sync for the caller; otherwise it returns a channel
// closed when the running sync ends.
func (w *WAL) tryClaimSync(pos uint64) (done <-chan struct{}, covered, claimed bool) {
	w.syncMu.Lock()
	defer w.syncMu.Unlock()
	switch {
	case w.synced >= pos:
		return nil, true, false
	case w.syncDone != nil:
		return w.syncDone, false, false
	}
	w.syncDone = make(chan struct{})
	return nil, false, true
}

// claimSync waits until no sync runs and claims the next one.
func (w *WAL) claimSync() {
	for {
		done, _, claimed := w.tryClaimSync(math.MaxUint64)
		if claimed {
			return
		}
		<-done
	}
}

// releaseSync ends the caller's sync, which made the first synced bytes
// durable (0 if it failed), and wakes everyone waiting for it.
func (w *WAL) releaseSync(synced uint64) {
	w.syncMu.Lock()
	defer w.syncMu.Unlock()
	w.synced = max(w.synced, synced)
	close(w.syncDone)
	w.syncDone = nil
}

// runSync, run by the goroutine that claimed the sync, makes everything
// appended so far durable.
func (w *WAL) runSync() error {
	synced, err := w.syncAppended()
	w.releaseSync(synced)
	return err
}

// syncAppended flushes the buffer and fsyncs the active segment; the
// segments rolled over since the last sync were fsynced then, and are
// closed here. It returns how much of written is now durable.
func (w *WAL) syncAppended() (uint64, error) {
	w.mu.Lock()
	err := w.usableLocked()
	if err == nil {
		err = w.flushLocked()
	}
	f, target, retired := w.active, w.written, w.retired
	w.retired = nil
	w.mu.Unlock()
	if err != nil {
		return 0, err
	}
	for _, r := range retired {
		r.Close() // synced at rollover; nothing left to lose
	}
	if err := w.syncFile(f); err != nil {
		w.mu.Lock()
		defer w.mu.Unlock()
		return 0, w.failLocked(fmt.Errorf("wal: fsync: %w", err))
	}
	return target, nil
}
