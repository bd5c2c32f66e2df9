package wal

import (
	"fmt"
	"path/filepath"
)

// open recovers the directory and leaves the WAL ready to append to the
// last segment. It changes nothing on disk before the whole log has been
// read and found whole.
func (w *WAL) open() error {
	if err := w.fs.MkdirAll(w.dir); err != nil {
		return fmt.Errorf("wal: create directory: %w", err)
	}
	segs, err := listSegments(w.fs, w.dir)
	if err != nil {
		return err
	}
	var r replay
	good, err := w.replaySegments(&r, segs)
	if err != nil {
		return err
	}
	if w.recovered, err = r.result(); err != nil {
		return err
	}
	w.hs, w.compacted, w.last = r.hs, r.compacted, r.last
	if err := w.openActive(segs, good, r.started); err != nil {
		return err
	}
	w.synced = w.written
	return w.removeCompacted()
}

// replaySegments feeds r every intact record. It returns the length of the
// intact prefix of the last segment, which may end in a torn write; a bad
// record anywhere else is an error.
func (w *WAL) replaySegments(r *replay, segs []segment) (int64, error) {
	var good int64
	for i, s := range segs {
		n, torn, err := w.replaySegment(r, s)
		if err != nil {
			return 0, err
		}
		isLast := i == len(segs)-1
		if !isLast && (torn != nil || n == 0) {
			if torn == nil {
				torn = fmt.Errorf("%w: empty segment", ErrCorrupt)
			}
			return 0, fmt.Errorf("%w (segment %s, offset %d, not the last segment)", torn, s.path, n)
		}
		switch {
		case torn == errZeroTail:
			w.log.Debug("wal: preallocated space after the last record", "path", s.path, "offset", n)
		case torn != nil:
			w.log.Warn("wal: truncating a torn write", "path", s.path, "offset", n, "err", torn)
		}
		good = int64(n)
	}
	return good, nil
}

// replaySegment feeds r the records of s. It returns the length of the
// intact prefix of the file and, if a bad record ends that prefix before
// the end of the file, why it is bad (torn). An intact record that
// contradicts the log before it is an error, never a torn write.
func (w *WAL) replaySegment(r *replay, s segment) (good int, torn, err error) {
	data, err := w.fs.ReadFile(s.path)
	if err != nil {
		return 0, nil, fmt.Errorf("wal: read segment: %w", err)
	}
	off := 0
	for off < len(data) {
		t, payload, n, bad := decodeRecord(data[off:])
		if bad != nil && allZero(data[off:]) {
			bad = errZeroTail
		}
		if bad != nil {
			return off, bad, nil
		}
		if err := r.record(t, payload, off == 0, s); err != nil {
			return 0, nil, fmt.Errorf("%w (segment %s, offset %d)", err, s.path, off)
		}
		off += n
	}
	return off, nil, nil
}

// openActive opens the last segment for appending, cut to its intact
// length good, or creates the first segment of an empty directory. A last
// segment without an intact header gets one again. The result is synced.
func (w *WAL) openActive(segs []segment, good int64, started bool) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(segs) == 0 {
		if err := w.createSegmentLocked(0); err != nil {
			return err
		}
		// The directory may be new too: make its own entry durable.
		if err := w.fs.SyncDir(filepath.Dir(filepath.Clean(w.dir))); err != nil {
			return fmt.Errorf("wal: sync parent directory: %w", err)
		}
		return w.syncOpenLocked()
	}
	last := segs[len(segs)-1]
	if good == 0 && (last.first != w.last+1 || !started && last.seq != 0) {
		return fmt.Errorf("%w: segment %s lost its header and does not follow the log (last index %d)", ErrCorrupt, last.path, w.last)
	}
	f, err := w.fs.OpenWrite(last.path)
	if err != nil {
		return fmt.Errorf("wal: open segment: %w", err)
	}
	w.active, w.segs, w.size, w.zeroed = f, segs, good, good
	// Cut whatever follows the intact records: a torn write, or stale
	// records that reached the disk out of order, must never reappear
	// behind new ones.
	if err := f.Truncate(good); err != nil {
		return fmt.Errorf("wal: truncate segment: %w", err)
	}
	w.preallocateLocked()
	if good == 0 {
		w.appendHeaderLocked(last.seq)
	}
	return w.syncOpenLocked()
}

// syncOpenLocked makes what Open recovered or wrote durable: the recovered
// records may so far be only in the page cache of a crashed process.
func (w *WAL) syncOpenLocked() error {
	if err := w.flushLocked(); err != nil {
		return err
	}
	if err := w.syncFile(w.active); err != nil {
		return fmt.Errorf("wal: fsync: %w", err)
	}
	if err := w.fs.SyncDir(w.dir); err != nil {
		return fmt.Errorf("wal: sync directory: %w", err)
	}
	return nil
}

// errZeroTail marks the end of the records in a segment whose remaining
// bytes are all zero: preallocated space, not a torn write.
var errZeroTail = fmt.Errorf("%w: zeros after the last record", ErrCorrupt)

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
