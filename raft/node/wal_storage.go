package node

import (
	"github.com/bifrost-go/bifrost/raft"
	"github.com/bifrost-go/bifrost/raft/wal"
)

// WALStorage makes a *wal.WAL a Storage. The WAL stays the caller's to
// close, after the Node has stopped.
func WALStorage(w *wal.WAL) Storage { return walStorage{w} }

type walStorage struct{ w *wal.WAL }

// Load returns what the WAL recovered when it was opened. A compacted
// log starts after its compaction point; the node checks that its
// snapshot covers what is missing.
func (s walStorage) Load() (raft.HardState, []raft.Entry, error) {
	st := s.w.Recovered()
	return st.HardState, st.Entries, nil
}

// Compact compacts the WAL (wal.WAL.Compact).
func (s walStorage) Compact(index uint64) error { return s.w.Compact(index) }

// Save appends durably; concurrent savers share fsyncs inside the WAL.
func (s walStorage) Save(hs raft.HardState, entries []raft.Entry) error {
	return s.w.Save(hs, entries)
}

// compacted is the index the WAL was compacted through when it was opened.
func (s walStorage) compacted() uint64 { return s.w.Recovered().Compacted }

// Append writes without waiting for the disk: the next Sync or Save makes
// it durable. The driver writes every Ready with it and syncs on its own
// goroutine when the Ready holds entries, a term or a vote.
func (s walStorage) Append(hs raft.HardState, entries []raft.Entry) error {
	return s.w.Append(hs, entries)
}

// Sync makes everything written so far durable.
func (s walStorage) Sync() error { return s.w.Sync() }
