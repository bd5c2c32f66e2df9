package node

import (
	"github.com/bifrost-go/bifrost/raft"
	"github.com/bifrost-go/bifrost/raft/wal"
)

// WALStorage makes a *wal.WAL a durable Storage: an AsyncStorage, so the
// driver fsyncs beside its loop, and a Compacter. The WAL stays the
// caller's to close, after the Node has stopped.
type WALStorage struct{ w *wal.WAL }

// NewWALStorage returns the Storage of w.
func NewWALStorage(w *wal.WAL) *WALStorage { return &WALStorage{w} }

// Load returns what the WAL recovered when it was opened. A compacted
// log starts after its compaction point; the node checks that its
// snapshot covers what is missing.
func (s *WALStorage) Load() (raft.HardState, []raft.Entry, error) {
	st := s.w.Recovered()
	return st.HardState, st.Entries, nil
}

// Compact compacts the WAL (wal.WAL.Compact).
func (s *WALStorage) Compact(index uint64) error { return s.w.Compact(index) }

// Compacted is the index the WAL was compacted through when it was
// opened.
func (s *WALStorage) Compacted() uint64 { return s.w.Recovered().Compacted }

// Save appends durably; concurrent savers share fsyncs inside the WAL.
func (s *WALStorage) Save(hs raft.HardState, entries []raft.Entry) error {
	return s.w.Save(hs, entries)
}

// Append writes without waiting for the disk: the next Sync or Save makes
// it durable.
func (s *WALStorage) Append(hs raft.HardState, entries []raft.Entry) error {
	return s.w.Append(hs, entries)
}

// Sync makes everything written so far durable.
func (s *WALStorage) Sync() error { return s.w.Sync() }
