package node

import (
	"fmt"

	"github.com/bifrost-go/bifrost/raft"
	"github.com/bifrost-go/bifrost/raft/wal"
)

// WALStorage makes a *wal.WAL a Storage. The WAL stays the caller's to
// close, after the Node has stopped.
func WALStorage(w *wal.WAL) Storage { return walStorage{w} }

type walStorage struct{ w *wal.WAL }

// Load returns what the WAL recovered when it was opened.
func (s walStorage) Load() (raft.HardState, []raft.Entry, error) {
	st := s.w.Recovered()
	if st.Compacted != 0 {
		// A compacted log needs the snapshot it was compacted into, which
		// this version of the node does not restore yet.
		return raft.HardState{}, nil, fmt.Errorf("node: wal compacted to %d, snapshots unsupported", st.Compacted)
	}
	return st.HardState, st.Entries, nil
}

// Save appends durably; concurrent savers share fsyncs inside the WAL.
func (s walStorage) Save(hs raft.HardState, entries []raft.Entry) error {
	return s.w.Save(hs, entries)
}
