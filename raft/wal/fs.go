package wal

import (
	"errors"
	"io/fs"
	"os"
)

// FS is the part of the operating system the WAL uses (Config.FS). The
// default is the operating system's; a test swaps in a double that
// remembers what was synced and can crash, dropping the rest, to check
// that nothing is acknowledged before it is durable. Paths are the WAL's
// directory joined with a file name. Its methods may be called from
// several goroutines at once.
type FS interface {
	MkdirAll(dir string) error
	// ReadDir returns the names of the files in dir.
	ReadDir(dir string) ([]string, error)
	ReadFile(path string) ([]byte, error)
	// Create makes a new, empty file; it fails if the file exists.
	Create(path string) (File, error)
	// OpenWrite opens an existing file for writing.
	OpenWrite(path string) (File, error)
	Remove(path string) error
	// SyncDir makes the creation and removal of files in dir durable.
	SyncDir(dir string) error
	// ZeroAhead is how far past its records, in bytes, the WAL keeps
	// the active segment written with zeros (1 MiB at most; the
	// operating system's: 1 MiB; a double may say 0).
	ZeroAhead() int64
}

// File is an open segment of an FS.
type File interface {
	WriteAt(p []byte, off int64) (int, error)
	// Sync makes what was written durable.
	Sync() error
	Truncate(size int64) error
	// Preallocate reserves disk space up to size bytes, reading as zeros,
	// where the platform can (Linux); elsewhere it does nothing.
	Preallocate(size int64) error
	Close() error
}

// OSFS returns the operating system's file system, the default of
// Config.FS, for a wrapper that changes part of it.
func OSFS() FS { return osFS{} }

// osFS is the real file system.
type osFS struct{}

func (osFS) MkdirAll(dir string) error { return os.MkdirAll(dir, 0o755) }

func (osFS) ReadDir(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		if e.Type().IsRegular() {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

func (osFS) ReadFile(path string) ([]byte, error) { return os.ReadFile(path) }

func (osFS) Create(path string) (File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, err // not a file wrapping a nil *os.File
	}
	return osFile{f}, nil
}

func (osFS) OpenWrite(path string) (File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return nil, err // not a file wrapping a nil *os.File
	}
	return osFile{f}, nil
}

func (osFS) Remove(path string) error {
	err := os.Remove(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

func (osFS) SyncDir(dir string) error { return SyncDir(dir) }

func (osFS) ZeroAhead() int64 { return zeroAheadBytes }

// SyncDir fsyncs directory dir, making the creation, removal and renaming
// of the files in it durable. Other durable stores of the project (the
// node's snapshot files) use it too.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// osFile is a segment file on disk.
type osFile struct{ *os.File }

func (f osFile) Preallocate(size int64) error { return preallocate(f.File, size) }
