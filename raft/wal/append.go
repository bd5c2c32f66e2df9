package wal

import (
	"encoding/binary"
	"fmt"

	"github.com/bifrost-go/bifrost/raft"
)

// append buffers the records for entries and hs and returns the position
// in written that a sync must reach for them to be durable.
func (w *WAL) append(hs raft.HardState, entries []raft.Entry) (uint64, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usableLocked(); err != nil {
		return 0, err
	}
	if err := w.checkLocked(entries); err != nil {
		return 0, err
	}
	for i := range entries {
		if err := w.appendEntryLocked(&entries[i]); err != nil {
			return 0, err
		}
	}
	if !hs.IsZero() && hs != w.hs {
		if err := w.appendHardStateLocked(hs); err != nil {
			return 0, err
		}
	}
	if len(w.buf) >= flushBytes {
		if err := w.flushLocked(); err != nil {
			return 0, err
		}
	}
	return w.written, nil
}

// checkLocked refuses, before anything is buffered, a batch that would
// break the log: one that leaves a gap, reaches into the compacted prefix,
// or holds an entry too large for a record.
func (w *WAL) checkLocked(entries []raft.Entry) error {
	if len(entries) == 0 {
		return nil
	}
	first := entries[0].Index
	if first <= w.compacted {
		return fmt.Errorf("%w: entry %d, compacted through %d", ErrCompacted, first, w.compacted)
	}
	if first > w.last+1 {
		return fmt.Errorf("%w: entry %d after last index %d", ErrGap, first, w.last)
	}
	for i := range entries {
		if entries[i].Index != first+uint64(i) {
			return fmt.Errorf("%w: entry %d at position %d of a batch starting at %d", ErrGap, entries[i].Index, i, first)
		}
		if int64(entries[i].EncodedSize()) >= maxRecordBody {
			return fmt.Errorf("%w: entry %d holds %d bytes", ErrTooLarge, entries[i].Index, len(entries[i].Data))
		}
	}
	return nil
}

func (w *WAL) appendEntryLocked(e *raft.Entry) error {
	if err := w.maybeRolloverLocked(); err != nil {
		return err
	}
	b, start := beginRecord(w.buf, recordEntry)
	b, _ = e.AppendBinary(b) // never fails
	w.bufferedLocked(finishRecord(b, start), start)
	w.last = e.Index
	return nil
}

func (w *WAL) appendHardStateLocked(hs raft.HardState) error {
	if err := w.maybeRolloverLocked(); err != nil {
		return err
	}
	b, start := beginRecord(w.buf, recordHardState)
	b, _ = hs.AppendBinary(b) // never fails
	w.bufferedLocked(finishRecord(b, start), start)
	w.hs = hs
	return nil
}

// appendCompactLocked records the compaction point.
func (w *WAL) appendCompactLocked(index uint64) error {
	if err := w.maybeRolloverLocked(); err != nil {
		return err
	}
	b, start := beginRecord(w.buf, recordCompact)
	b = binary.AppendUvarint(b, index)
	w.bufferedLocked(finishRecord(b, start), start)
	w.compacted = index
	w.last = max(w.last, index)
	return nil
}

// bufferedLocked adopts b, the buffer with a new record from start on.
func (w *WAL) bufferedLocked(b []byte, start int) {
	n := len(b) - start
	w.buf = b
	w.size += int64(n)
	w.written += uint64(n)
}

// flushLocked writes the buffered records to the active segment.
func (w *WAL) flushLocked() error {
	if w.err != nil {
		return w.err
	}
	if len(w.buf) == 0 {
		return nil
	}
	if _, err := w.active.WriteAt(w.buf, w.size-int64(len(w.buf))); err != nil {
		return w.failLocked(fmt.Errorf("wal: write: %w", err))
	}
	if err := w.zeroAheadLocked(); err != nil {
		return w.failLocked(fmt.Errorf("wal: write zeros ahead: %w", err))
	}
	if cap(w.buf) > 4*flushBytes {
		w.buf = nil // one huge batch should not pin its memory forever
	} else {
		w.buf = w.buf[:0]
	}
	return nil
}

// zeroAheadLocked keeps the zeroAheadBytes after the records written with
// zeros, topping them up once half are used: the next fsync carries the
// zeros and their metadata once, and the fsyncs after it carry records
// only. Zeros after the last record are what replay already takes for
// preallocated space.
func (w *WAL) zeroAheadLocked() error {
	ahead := min(w.fs.ZeroAhead(), zeroAheadBytes)
	if ahead <= 0 {
		return nil
	}
	end := min(w.size+ahead, max(w.segmentBytes, w.size))
	from := max(w.zeroed, w.size)
	if w.zeroed-w.size >= ahead/2 || end <= from {
		return nil
	}
	if _, err := w.active.WriteAt(zeros[:end-from], from); err != nil {
		return err
	}
	w.zeroed = end
	return nil
}

// maybeRolloverLocked starts a new segment if the active one is full. The
// old segment loses its preallocated tail and is fsynced first: only the
// last segment may end torn or in zeros.
func (w *WAL) maybeRolloverLocked() error {
	if w.size < w.segmentBytes {
		return nil
	}
	if err := w.flushLocked(); err != nil {
		return err
	}
	if err := w.active.Truncate(w.size); err != nil {
		return w.failLocked(fmt.Errorf("wal: truncate before rollover: %w", err))
	}
	if err := w.syncFile(w.active); err != nil {
		return w.failLocked(fmt.Errorf("wal: fsync before rollover: %w", err))
	}
	w.retired = append(w.retired, w.active)
	w.active = nil
	prev := w.segs[len(w.segs)-1]
	if err := w.createSegmentLocked(prev.seq + 1); err != nil {
		return w.failLocked(err)
	}
	w.log.Info("wal: new segment", "path", w.segs[len(w.segs)-1].path)
	return nil
}

// createSegmentLocked creates segment seq, buffers its header and makes
// the file's existence durable.
func (w *WAL) createSegmentLocked(seq uint64) error {
	seg := segment{seq: seq, first: w.last + 1, path: w.segmentPath(seq, w.last+1)}
	f, err := w.fs.Create(seg.path)
	if err != nil {
		return fmt.Errorf("wal: create segment: %w", err)
	}
	w.active, w.size, w.zeroed = f, 0, 0
	w.segs = append(w.segs, seg)
	w.preallocateLocked()
	w.appendHeaderLocked(seq)
	if err := w.fs.SyncDir(w.dir); err != nil {
		return fmt.Errorf("wal: sync directory: %w", err)
	}
	return nil
}

// appendHeaderLocked buffers the header of the active segment, seq.
func (w *WAL) appendHeaderLocked(seq uint64) {
	h := segmentHeader{Seq: seq, Last: w.last, Compacted: w.compacted, HardState: w.hs}
	b, start := beginRecord(w.buf, recordHeader)
	w.bufferedLocked(finishRecord(h.appendBinary(b), start), start)
}

// preallocateLocked reserves the active segment's space. Failing to is not
// an error: appends then allocate as they go, only more slowly.
func (w *WAL) preallocateLocked() {
	if err := w.active.Preallocate(w.segmentBytes); err != nil {
		w.log.Warn("wal: cannot preallocate segment", "err", err)
	}
}
