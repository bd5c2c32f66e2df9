package node

import (
	"fmt"
	"slices"
	"sync"

	"github.com/bifrost-go/bifrost/raft"
)

// Storage keeps what a node must not forget across a restart: its hard
// state (term, vote, commit) and its log. The node calls Load once when it
// starts and Save from its driver goroutine afterwards.
type Storage interface {
	// Load returns the persisted hard state and the log, contiguous from
	// its first index. A node that never ran gets the zero HardState and
	// no entries.
	Load() (raft.HardState, []raft.Entry, error)
	// Save makes hs and entries durable before it returns. Entries are
	// contiguous; if entries[0].Index is at or below the last stored
	// index, the stored suffix from that index on is replaced. A zero hs
	// means the hard state did not change.
	Save(hs raft.HardState, entries []raft.Entry) error
}

// MemoryStorage is a Storage that keeps everything in memory: fast, and
// lost with the process. It suits tests and users who replicate state they
// can rebuild. It is safe for concurrent use.
type MemoryStorage struct {
	mu      sync.Mutex // protects the following
	hs      raft.HardState
	entries []raft.Entry
}

// NewMemoryStorage returns an empty MemoryStorage.
func NewMemoryStorage() *MemoryStorage { return &MemoryStorage{} }

// Load returns a copy of what was saved.
func (s *MemoryStorage) Load() (raft.HardState, []raft.Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hs, slices.Clone(s.entries), nil
}

// Save records hs (unless zero) and entries, replacing any suffix the
// entries overwrite.
func (s *MemoryStorage) Save(hs raft.HardState, entries []raft.Entry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(entries) > 0 {
		first := entries[0].Index
		last := uint64(len(s.entries))
		if first == 0 || first > last+1 {
			return fmt.Errorf("node: memory storage: entry %d leaves a gap after %d", first, last)
		}
		s.entries = append(s.entries[:first-1], entries...)
	}
	if !hs.IsZero() {
		s.hs = hs
	}
	return nil
}
