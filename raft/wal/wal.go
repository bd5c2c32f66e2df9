package wal

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bifrost-go/bifrost/internal/metrics"
	"github.com/bifrost-go/bifrost/raft"
)

var (
	// ErrCorrupt reports a directory whose contents cannot be trusted: a bad
	// record before the last segment, a missing segment, a gap in indices.
	ErrCorrupt = errors.New("wal: corrupt")
	// ErrGap reports entries that would leave a hole in the log: the first
	// is past the last index plus one, or the batch is not contiguous.
	ErrGap = errors.New("wal: entries leave a gap")
	// ErrCompacted reports entries at or below the compaction point.
	ErrCompacted = errors.New("wal: entry index compacted")
	// ErrTooLarge reports an entry too large for one record (4 GiB).
	ErrTooLarge = errors.New("wal: entry too large")
	// ErrClosed reports use of a closed WAL.
	ErrClosed = errors.New("wal: closed")
	// ErrBadConfig reports a Config that Open cannot use.
	ErrBadConfig = errors.New("wal: bad config")
)

// DefaultSegmentBytes is the segment size used when Config.SegmentBytes is 0.
const DefaultSegmentBytes = 64 << 20

// flushBytes is how much a writer buffers before it writes to the file
// itself instead of leaving it to the next sync.
const flushBytes = 1 << 20

// zeroAheadBytes is how far past its records the active segment is kept
// written with zeros. An fsync after appending into blocks already written
// flushes only data; appending into fresh or fallocated blocks also
// commits file system metadata (the size, or the unwritten extents made
// written), which made each fsync about half again as slow on ext4.
const zeroAheadBytes = 1 << 20

// zeros is the source of zeroAheadBytes.
var zeros [zeroAheadBytes]byte

// Config configures Open.
type Config struct {
	// Dir is the directory of the segment files; Open creates it if
	// needed. Required. One WAL at a time may use a directory.
	Dir string
	// SegmentBytes is the size in bytes past which the WAL starts a new
	// segment file, and the space preallocated for each. Records never
	// span segments, so a segment exceeds it by up to one record.
	// Default (0): DefaultSegmentBytes, 64 MiB.
	SegmentBytes int64
	// Logger receives torn-tail truncations and segment changes.
	// Default (nil): discard.
	Logger *slog.Logger

	// FS is the file system under the segment files. Default (nil):
	// the operating system's. Tests inject a double that can crash.
	FS FS
}

// State is the durable state of the log.
type State struct {
	HardState raft.HardState
	// Compacted is the index of the last entry compacted away; 0 if none.
	Compacted uint64
	// Entries is the live log in order, indices Compacted+1, Compacted+2, ...
	Entries []raft.Entry
}

// WAL is a write-ahead log in a directory. It is safe for concurrent use.
type WAL struct {
	dir          string
	fs           FS
	segmentBytes int64
	log          *slog.Logger
	recovered    State

	// compactMu serializes Compact and Close, so segment removal (done
	// outside mu) never races with another removal or with closing.
	compactMu sync.Mutex

	// syncMu protects synced and syncDone. One goroutine at a time syncs:
	// the one that made syncDone, which it closes when done (commit.go).
	syncMu   sync.Mutex
	synced   uint64        // bytes of written that are durable
	syncDone chan struct{} // non-nil while a sync runs

	mu sync.Mutex // protects the following
	// active is the segment appended to: segs[len(segs)-1].
	active File
	size   int64 // bytes of active, written or buffered
	// zeroed is how far active is written, records then zeros: appends
	// below it reuse blocks the file system already holds as data.
	zeroed int64
	buf    []byte
	// written counts every byte ever appended, across segments; a
	// position in it tells a writer which sync covers its records.
	written   uint64
	segs      []segment // on disk, oldest first
	retired   []File    // rolled-over segments, synced, for a syncer to close
	hs        raft.HardState
	last      uint64
	compacted uint64
	err       error // sticky: after a failed write or sync nothing is trusted
	closed    bool

	syncs    atomic.Int64       // fsyncs of segment files; tests and benchmarks read it
	syncTime *metrics.Histogram // seconds each of those fsyncs took
}

// Open opens the WAL in cfg.Dir, creating the directory if needed, and
// recovers the state saved there; Recovered returns it. What Open recovered
// is fsynced before Open returns, so the caller may act on it.
func Open(cfg Config) (*WAL, error) {
	w, err := newWAL(cfg)
	if err != nil {
		return nil, err
	}
	if err := w.open(); err != nil {
		w.closeFiles()
		return nil, err
	}
	return w, nil
}

func newWAL(cfg Config) (*WAL, error) {
	if cfg.Dir == "" {
		return nil, fmt.Errorf("%w: no directory", ErrBadConfig)
	}
	if cfg.SegmentBytes < 0 {
		return nil, fmt.Errorf("%w: negative SegmentBytes %d", ErrBadConfig, cfg.SegmentBytes)
	}
	w := &WAL{dir: cfg.Dir, fs: cfg.FS, segmentBytes: cfg.SegmentBytes, log: cfg.Logger,
		syncTime: metrics.NewHistogram(metrics.LatencyBuckets)}
	if w.fs == nil {
		w.fs = osFS{}
	}
	if w.segmentBytes == 0 {
		w.segmentBytes = DefaultSegmentBytes
	}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	return w, nil
}

// Recovered returns the state Open recovered. It does not change with
// later saves. The WAL never reads or changes the entries after Open; the
// caller may keep them (the WAL holds a reference until it is dropped).
func (w *WAL) Recovered() State { return w.recovered }

// Save appends the entries, then the hard state if it is not zero and
// differs from the last one saved, and returns once they and everything
// appended before them are fsynced. Entries from entries[0].Index on
// replace any the log holds from that index. Concurrent callers share
// fsyncs. A crash before Save returns may keep any prefix of its records
// (entries in order, then the hard state), never a later one without the
// ones before it.
func (w *WAL) Save(hs raft.HardState, entries []raft.Entry) error {
	pos, err := w.append(hs, entries)
	if err != nil {
		return err
	}
	return w.waitSynced(pos)
}

// Append is Save without waiting: the records are buffered and become
// durable at the next Sync (or Save) by any caller.
func (w *WAL) Append(hs raft.HardState, entries []raft.Entry) error {
	_, err := w.append(hs, entries)
	return err
}

// Sync returns once everything appended before the call is fsynced.
func (w *WAL) Sync() error {
	w.mu.Lock()
	pos, err := w.written, w.usableLocked()
	w.mu.Unlock()
	if err != nil {
		return err
	}
	return w.waitSynced(pos)
}

// Compact declares entries up to and including index covered by a
// snapshot. The next Open returns only later entries, the next entry saved
// must have a higher index, and segments holding only covered entries are
// deleted. If index is past the last entry the log becomes empty and
// continues at index+1. A Compact to an index not above the current
// compaction point does nothing. Compact returns once the compaction point
// is durable.
func (w *WAL) Compact(index uint64) error {
	w.compactMu.Lock()
	defer w.compactMu.Unlock()
	w.mu.Lock()
	if err := w.usableLocked(); err != nil || index <= w.compacted {
		w.mu.Unlock()
		return err
	}
	err := w.appendCompactLocked(index)
	pos := w.written
	w.mu.Unlock()
	if err != nil {
		return err
	}
	if err := w.waitSynced(pos); err != nil {
		return err
	}
	return w.removeCompacted()
}

// Close syncs what was appended and closes the files. Saves waiting for a
// sync when Close runs succeed; later calls return ErrClosed.
func (w *WAL) Close() error {
	w.compactMu.Lock()
	defer w.compactMu.Unlock()
	w.claimSync()
	var synced uint64
	defer func() { w.releaseSync(synced) }()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrClosed
	}
	w.closed = true
	err := w.flushLocked()
	if err == nil {
		err = w.syncFile(w.active)
	}
	if err == nil {
		synced = w.written
	}
	if cerr := w.closeFiles(); err == nil {
		err = cerr
	}
	return err
}

// closeFiles closes the active and retired segments. The caller holds mu,
// or is Open and alone.
func (w *WAL) closeFiles() error {
	var errs []error
	for _, f := range append(w.retired, w.active) {
		if f != nil {
			errs = append(errs, f.Close())
		}
	}
	w.retired, w.active = nil, nil
	return errors.Join(errs...)
}

// usableLocked reports why the WAL cannot take writes, if it cannot.
func (w *WAL) usableLocked() error {
	if w.closed {
		return ErrClosed
	}
	return w.err
}

// failLocked makes err sticky: after a failed write or fsync the state of
// the file is unknown (a later fsync may report success for lost pages).
func (w *WAL) failLocked(err error) error {
	if w.err == nil {
		w.err = err
		w.log.Error("wal: failed; no more writes", "err", err)
	}
	return w.err
}

func (w *WAL) syncFile(f File) error {
	w.syncs.Add(1)
	start := time.Now()
	err := f.Sync()
	w.syncTime.Since(start)
	return err
}

// Stats is what a WAL has done since Open.
type Stats struct {
	// Syncs counts the fsyncs of segment files.
	Syncs uint64
	// BytesAppended counts the bytes of records appended, framing
	// included.
	BytesAppended uint64
	// SyncSeconds is the latency of those fsyncs, in seconds.
	SyncSeconds metrics.HistogramSnapshot
}

// Stats returns the WAL's counts so far.
func (w *WAL) Stats() Stats {
	w.mu.Lock()
	written := w.written
	w.mu.Unlock()
	return Stats{Syncs: uint64(w.syncs.Load()), BytesAppended: written, SyncSeconds: w.syncTime.Snapshot()}
}

// removeCompacted deletes, oldest first, the segments that hold only
// compacted entries. The directory is synced after each removal, so a crash
// leaves the segments on disk contiguous.
func (w *WAL) removeCompacted() error {
	w.mu.Lock()
	var doomed []segment
	for j := 0; j+1 < len(w.segs) && w.segs[j+1].first <= w.compacted+1; j++ {
		doomed = append(doomed, w.segs[j])
	}
	w.mu.Unlock()
	removed := 0
	var err error
	for _, s := range doomed {
		if err = w.fs.Remove(s.path); err != nil {
			break
		}
		removed++
		if err = w.fs.SyncDir(w.dir); err != nil {
			break
		}
		w.log.Info("wal: removed compacted segment", "path", s.path)
	}
	w.mu.Lock()
	w.segs = w.segs[removed:]
	w.mu.Unlock()
	if err != nil {
		return fmt.Errorf("wal: remove compacted segment: %w", err)
	}
	return nil
}

// segmentPath is where the segment with seq and first index lives.
func (w *WAL) segmentPath(seq, first uint64) string {
	return filepath.Join(w.dir, segmentName(seq, first))
}
