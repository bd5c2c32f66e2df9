package node

import (
	"fmt"
	"sync"

	"github.com/bifrost-go/bifrost/raft"
)

// Storage keeps what a node must not forget across a restart: its hard
// state (term, vote, commit) and its log. The node calls Load once when it
// starts and Save from its driver goroutine afterwards.
type Storage interface {
	// Load returns the persisted hard state and the log, contiguous from
	// its first index: 1, or after the snapshot the log was compacted
	// into (see Compacter). A node that never ran gets the zero HardState
	// and no entries.
	Load() (raft.HardState, []raft.Entry, error)
	// Save makes hs and entries durable before it returns. Entries are
	// contiguous; if entries[0].Index is at or below the last stored
	// index, the stored suffix from that index on is replaced. A zero hs
	// means the hard state did not change.
	Save(hs raft.HardState, entries []raft.Entry) error
}

// Compacter is an optional Storage capability: forgetting the log prefix
// that a durable snapshot covers. A Node compacts its storage after each
// snapshot; storage without it keeps the whole log, and the node skips
// the covered prefix when it loads.
type Compacter interface {
	// Compact drops the entries up to and including index. An index past
	// the last entry leaves the log empty, to continue at index+1.
	Compact(index uint64) error
	// Compacted is the index the log was compacted through as Load
	// returned it: the node checks that its snapshot covers the gap.
	Compacted() uint64
}

// MemoryStorage is a Storage that keeps everything in memory: fast, and
// lost with the process. It suits tests and users who replicate state they
// can rebuild. It is also a Compacter and a SnapshotStore, so a node on
// it keeps its snapshots in memory too. It is safe for concurrent use.
type MemoryStorage struct {
	mu     sync.Mutex // protects the following
	hs     raft.HardState
	offset uint64 // index of the last entry compacted away
	last   uint64 // index of the last entry
	// chunks hold the entries in arrays of memChunk, so that a growing
	// log never copies what it holds: chunks[k][j] is the entry at index
	// first+k*memChunk+j. Slots at or below offset or above last are
	// unused.
	chunks   [][]raft.Entry
	first    uint64
	snapMeta raft.SnapshotMeta
	snapData []byte
}

// memChunk is how many entries one array of a MemoryStorage holds.
const memChunk = 1024

// NewMemoryStorage returns an empty MemoryStorage.
func NewMemoryStorage() *MemoryStorage { return &MemoryStorage{first: 1} }

// Load returns a copy of what was saved.
func (s *MemoryStorage) Load() (raft.HardState, []raft.Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []raft.Entry
	for i := s.offset + 1; i <= s.last; i++ {
		out = append(out, *s.at(i))
	}
	return s.hs, out, nil
}

// at returns the slot of index i, which must lie in [first, last+1].
func (s *MemoryStorage) at(i uint64) *raft.Entry {
	q := i - s.first
	k, j := q/memChunk, q%memChunk
	if k == uint64(len(s.chunks)) {
		s.chunks = append(s.chunks, make([]raft.Entry, memChunk))
	}
	return &s.chunks[k][j]
}

// Save records hs (unless zero) and entries, replacing any suffix the
// entries overwrite.
func (s *MemoryStorage) Save(hs raft.HardState, entries []raft.Entry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(entries) > 0 {
		first := entries[0].Index
		if first <= s.offset || first > s.last+1 {
			return fmt.Errorf("node: memory storage: entry %d does not follow %d (compacted through %d)", first, s.last, s.offset)
		}
		for _, e := range entries {
			*s.at(e.Index) = e
		}
		s.last = entries[len(entries)-1].Index
	}
	if !hs.IsZero() {
		s.hs = hs
	}
	return nil
}

// Compact drops the entries up to and including index.
func (s *MemoryStorage) Compact(index uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if index <= s.offset {
		return nil
	}
	s.offset = index
	if index >= s.last {
		s.last, s.chunks, s.first = index, nil, index+1
		return nil
	}
	drop := (index + 1 - s.first) / memChunk
	clear(s.chunks[:drop]) // the backing array would keep them alive
	s.chunks = s.chunks[drop:]
	s.first += drop * memChunk
	clear(s.chunks[0][:index+1-s.first]) // let the compacted data go
	return nil
}

// SaveSnapshot keeps data as the newest snapshot; the caller must not
// modify it afterwards.
func (s *MemoryStorage) SaveSnapshot(meta raft.SnapshotMeta, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.snapMeta, s.snapData = meta, data
	return nil
}

// LoadSnapshot returns the newest snapshot saved, or a zero meta.
func (s *MemoryStorage) LoadSnapshot() (raft.SnapshotMeta, []byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snapMeta, s.snapData, nil
}

// Compacted is the index the log is compacted through.
func (s *MemoryStorage) Compacted() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.offset
}
