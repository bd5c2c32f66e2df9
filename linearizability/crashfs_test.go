package linearizability

import (
	"errors"
	"io/fs"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/bifrost-go/bifrost/raft/node"
	"github.com/bifrost-go/bifrost/raft/wal"
)

// errCrashed is what a crashed file system answers: the process that
// used it is gone.
var errCrashed = errors.New("crashfs: crashed")

// crashFS is the file system (node.FS) under one member's write-ahead
// log and snapshot files on the real-TCP runner: in memory, keeping what
// was written apart from what a Sync made durable, and the directory as
// running code sees it apart from its state at the last SyncDir. crash
// is a power loss: it returns the file system a restarted member finds,
// with exactly what was durable, and fails every later call of the old
// one, so whatever the dying member still writes is lost. A member that
// acknowledged a write before it synced it then forgets it on restart,
// and the checker sees a lost write. It is safe for concurrent use.
type crashFS struct {
	mu      sync.Mutex          // protects the following
	files   map[string]*memFile // by path, as running code sees them
	durable map[string]*memFile // as of the last SyncDir of their directory
	crashed bool
	syncs   int // Syncs and SyncDirs, for reports
	// broken makes a Sync of a write-ahead log segment durable only
	// what the file's previous Sync saw: the disk acknowledges a sync
	// before it is done, so the WAL above it acknowledges writes that a
	// crash loses (negative control only). The other files, written
	// once and renamed into place, stay sound: the control is about
	// acknowledged entries, not about a member that cannot restart.
	broken bool
}

// memFile is one file's content: what reads see, and what a crash keeps.
type memFile struct {
	data, synced []byte
	seen         []byte // with broken: data at the last Sync, durable at the next
}

var _ node.FS = (*crashFS)(nil)

func newCrashFS(broken bool) *crashFS {
	return &crashFS{files: map[string]*memFile{}, durable: map[string]*memFile{}, broken: broken}
}

// crash fails every later call of m and returns what survives it, and
// how many bytes written to surviving files it lost.
func (m *crashFS) crash() (*crashFS, int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.crashed = true
	out, lost := newCrashFS(m.broken), 0
	for path, f := range m.durable {
		nf := &memFile{data: slices.Clone(f.synced), synced: slices.Clone(f.synced), seen: slices.Clone(f.synced)}
		out.files[path], out.durable[path] = nf, nf
		lost += unsynced(f)
	}
	return out, lost
}

// unsynced counts the bytes of f that differ from, or go past, what was
// synced.
func unsynced(f *memFile) int {
	n := max(len(f.data)-len(f.synced), 0)
	for i := range min(len(f.data), len(f.synced)) {
		if f.data[i] != f.synced[i] {
			n++
		}
	}
	return n
}

// op runs f under the lock unless m crashed.
func (m *crashFS) op(f func() error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.crashed {
		return errCrashed
	}
	return f()
}

func (m *crashFS) MkdirAll(string) error { return m.op(func() error { return nil }) }

func (m *crashFS) ReadDir(dir string) ([]string, error) {
	var names []string
	err := m.op(func() error {
		for p := range m.files {
			if filepath.Dir(p) == filepath.Clean(dir) {
				names = append(names, filepath.Base(p))
			}
		}
		return nil
	})
	slices.Sort(names)
	return names, err
}

func (m *crashFS) ReadFile(path string) ([]byte, error) {
	var b []byte
	err := m.op(func() error {
		f, ok := m.files[path]
		if !ok {
			return fs.ErrNotExist
		}
		b = slices.Clone(f.data)
		return nil
	})
	return b, err
}

func (m *crashFS) Create(path string) (wal.File, error) {
	var h *memHandle
	err := m.op(func() error {
		if _, ok := m.files[path]; ok {
			return fs.ErrExist
		}
		f := &memFile{}
		m.files[path] = f
		h = &memHandle{fs: m, f: f, lies: m.lies(path)}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return h, nil
}

// lies reports whether Syncs of the file at path are broken.
func (m *crashFS) lies(path string) bool {
	return m.broken && filepath.Base(filepath.Dir(path)) == "wal"
}

func (m *crashFS) OpenWrite(path string) (wal.File, error) {
	var h *memHandle
	err := m.op(func() error {
		f, ok := m.files[path]
		if !ok {
			return fs.ErrNotExist
		}
		h = &memHandle{fs: m, f: f, lies: m.lies(path)}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return h, nil
}

func (m *crashFS) Remove(path string) error {
	return m.op(func() error {
		delete(m.files, path)
		return nil
	})
}

func (m *crashFS) Rename(oldpath, newpath string) error {
	return m.op(func() error {
		f, ok := m.files[oldpath]
		if !ok {
			return fs.ErrNotExist
		}
		delete(m.files, oldpath)
		m.files[newpath] = f
		return nil
	})
}

// SyncDir makes the directory's entries as running code sees them
// durable: created and renamed files appear, removed ones go.
func (m *crashFS) SyncDir(dir string) error {
	return m.op(func() error {
		m.syncs++
		dir = filepath.Clean(dir)
		for p := range m.durable {
			if _, ok := m.files[p]; !ok && filepath.Dir(p) == dir {
				delete(m.durable, p)
			}
		}
		for p, f := range m.files {
			if filepath.Dir(p) == dir {
				m.durable[p] = f
			}
		}
		return nil
	})
}

// ZeroAhead is zero: an in-memory file gains nothing from zeros written
// ahead.
func (m *crashFS) ZeroAhead() int64 { return 0 }

// memHandle is an open file of a crashFS.
type memHandle struct {
	fs   *crashFS
	f    *memFile
	lies bool // its Syncs are broken
}

func (h *memHandle) WriteAt(p []byte, off int64) (int, error) {
	err := h.fs.op(func() error {
		if end := off + int64(len(p)); end > int64(len(h.f.data)) {
			h.f.data = append(h.f.data, make([]byte, end-int64(len(h.f.data)))...)
		}
		copy(h.f.data[off:], p)
		return nil
	})
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

// syncLatency is how long a Sync takes: like a disk's, long enough that
// a crash often finds writes that a sync under way has not yet made
// durable.
const syncLatency = time.Millisecond

// Sync makes the file's content durable, as it is when the sync ends.
func (h *memHandle) Sync() error {
	t := time.NewTimer(syncLatency)
	<-t.C
	return h.fs.op(func() error {
		h.fs.syncs++
		if h.lies {
			h.f.synced, h.f.seen = h.f.seen, slices.Clone(h.f.data)
			return nil
		}
		h.f.synced = slices.Clone(h.f.data)
		return nil
	})
}

func (h *memHandle) Truncate(size int64) error {
	return h.fs.op(func() error {
		if size < int64(len(h.f.data)) {
			h.f.data = h.f.data[:size:size]
		} else {
			h.f.data = append(h.f.data, make([]byte, size-int64(len(h.f.data)))...)
		}
		return nil
	})
}

// Preallocate does nothing, as on a platform without it.
func (h *memHandle) Preallocate(int64) error { return h.fs.op(func() error { return nil }) }

func (h *memHandle) Close() error { return h.fs.op(func() error { return nil }) }
