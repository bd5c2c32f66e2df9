package wal

import (
	"errors"
	"io/fs"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sync"
)

// memFS is an in-memory FS that remembers what was made durable:
// file contents at their last Sync, and the directory as of its last
// SyncDir. crash returns what a machine would find after losing power.
type memFS struct {
	mu      sync.Mutex          // protects the following
	files   map[string]*memFile // the directory as running code sees it
	durable map[string]*memFile // the directory as of the last SyncDir
	syncErr error               // when set, Sync fails with it
	// syncHook, when set before the WAL is used, runs at the start of
	// every Sync without the lock: tests hold a sync open with it.
	syncHook func()
}

type memFile struct {
	data   []byte // what reads see
	synced []byte // the durable content: data as of the last Sync
}

// maxPrealloc bounds how far Preallocate extends a file, to keep tests
// fast; zeros past the last record are what matters, not their number.
const maxPrealloc = 300

func newMemFS() *memFS {
	return &memFS{files: map[string]*memFile{}, durable: map[string]*memFile{}}
}

// crash returns the file system after a power loss. With rng nil it keeps
// exactly what was synced. Otherwise unsynced directory changes survive at
// random, and each file keeps a random part of its unsynced tail, with a
// random window of it zeroed as if pages reached the disk out of order.
func (m *memFS) crash(rng *rand.Rand) *memFS {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := newMemFS()
	for _, name := range m.names() {
		f, ok := m.durable[name]
		if cur, exists := m.files[name]; cur != f && rng != nil && rng.IntN(2) == 0 {
			f, ok = cur, exists
		}
		if !ok {
			continue
		}
		nf := &memFile{data: f.survivor(rng)}
		nf.synced = slices.Clone(nf.data)
		out.files[name], out.durable[name] = nf, nf
	}
	return out
}

// names lists every name in either view of the directory.
func (m *memFS) names() []string {
	var names []string
	for n := range m.files {
		names = append(names, n)
	}
	for n := range m.durable {
		if _, ok := m.files[n]; !ok {
			names = append(names, n)
		}
	}
	slices.Sort(names) // keep crashes reproducible from the rng
	return names
}

// survivor is the content after a crash. With rng nil it is what was
// synced. Otherwise a cut shorter than the synced length may or may not
// have happened; of the bytes written since the last Sync, those before a
// random point survive, with a random window of them zeroed.
func (f *memFile) survivor(rng *rand.Rand) []byte {
	if rng == nil || len(f.data) < len(f.synced) && rng.IntN(2) == 0 {
		return slices.Clone(f.synced)
	}
	if len(f.data) < len(f.synced) {
		return slices.Clone(f.data)
	}
	d := 0 // the first byte written since the last Sync
	for d < len(f.synced) && f.data[d] == f.synced[d] {
		d++
	}
	k := d + rng.IntN(len(f.data)-d+1)
	out := make([]byte, max(len(f.synced), k))
	copy(out, f.synced)
	copy(out[d:k], f.data[d:k])
	if k > d && rng.IntN(2) == 0 {
		lo := d + rng.IntN(k-d)
		clear(out[lo : lo+rng.IntN(k-lo)+1])
	}
	return out
}

func (m *memFS) MkdirAll(string) error { return nil }

func (m *memFS) ReadDir(dir string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var names []string
	for p := range m.files {
		if filepath.Dir(p) == dir {
			names = append(names, filepath.Base(p))
		}
	}
	return names, nil
}

func (m *memFS) ReadFile(path string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f, ok := m.files[path]
	if !ok {
		return nil, fs.ErrNotExist
	}
	return slices.Clone(f.data), nil
}

func (m *memFS) Create(path string) (File, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.files[path]; ok {
		return nil, fs.ErrExist
	}
	f := &memFile{}
	m.files[path] = f
	return &memHandle{fs: m, f: f}, nil
}

func (m *memFS) OpenWrite(path string) (File, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f, ok := m.files[path]
	if !ok {
		return nil, fs.ErrNotExist
	}
	return &memHandle{fs: m, f: f}, nil
}

func (m *memFS) Remove(path string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.files, path)
	return nil
}

func (m *memFS) SyncDir(string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.durable = make(map[string]*memFile, len(m.files))
	for n, f := range m.files {
		m.durable[n] = f
	}
	return nil
}

// memZeroAhead is small: every sync copies the file, and tests should top
// up the zeros often, so that crashes land among them.
const memZeroAhead = 64

func (m *memFS) ZeroAhead() int64 { return memZeroAhead }

// put installs a file whose content is durable, for tests that build a
// directory by hand.
func (m *memFS) put(path string, data []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f := &memFile{data: slices.Clone(data), synced: slices.Clone(data)}
	m.files[path], m.durable[path] = f, f
}

// memHandle is an open memFile.
type memHandle struct {
	fs     *memFS
	f      *memFile
	closed bool
}

var errClosedFile = errors.New("memfs: file closed")

func (h *memHandle) WriteAt(p []byte, off int64) (int, error) {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	if h.closed {
		return 0, errClosedFile
	}
	if end := int(off) + len(p); end > len(h.f.data) {
		h.f.data = append(h.f.data, make([]byte, end-len(h.f.data))...)
	}
	copy(h.f.data[off:], p)
	return len(p), nil
}

func (h *memHandle) Sync() error {
	if h.fs.syncHook != nil {
		h.fs.syncHook()
	}
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	if h.closed {
		return errClosedFile
	}
	if h.fs.syncErr != nil {
		return h.fs.syncErr
	}
	h.f.synced = slices.Clone(h.f.data)
	return nil
}

func (h *memHandle) Truncate(size int64) error {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	if h.closed {
		return errClosedFile
	}
	if int(size) <= len(h.f.data) {
		h.f.data = h.f.data[:size:size] // later growth must not reuse cut bytes
	} else {
		h.f.data = append(h.f.data, make([]byte, int(size)-len(h.f.data))...)
	}
	return nil
}

// Preallocate extends the file with zeros, by at most maxPrealloc bytes.
func (h *memHandle) Preallocate(size int64) error {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	if h.closed {
		return errClosedFile
	}
	if n := min(int(size), len(h.f.data)+maxPrealloc); n > len(h.f.data) {
		h.f.data = append(h.f.data, make([]byte, n-len(h.f.data))...)
	}
	return nil
}

func (h *memHandle) Close() error {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	h.closed = true
	return nil
}
