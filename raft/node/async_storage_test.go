package node_test

import (
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bifrost-go/bifrost/raft"
	"github.com/bifrost-go/bifrost/raft/node"
)

// userStorage is a Storage written outside the package that can write
// and sync separately (node.AsyncStorage).
type userStorage struct {
	*node.MemoryStorage
	appends, syncs, saves atomic.Int64
}

func (s *userStorage) Save(hs raft.HardState, entries []raft.Entry) error {
	s.saves.Add(1)
	return s.MemoryStorage.Save(hs, entries)
}

func (s *userStorage) Append(hs raft.HardState, entries []raft.Entry) error {
	s.appends.Add(1)
	return s.MemoryStorage.Save(hs, entries)
}

func (s *userStorage) Sync() error {
	s.syncs.Add(1)
	return nil
}

// lonely is the transport of a group of one.
type lonely struct{}

func (lonely) Receive(func(raft.Message)) {}
func (lonely) Send([]raft.Message)        {}

type discard struct{}

func (discard) Apply(raft.Entry) []byte { return nil }

// A user's own storage gets the asynchronous fsync path by implementing
// the exported capability.
func TestUserAsyncStorage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := &userStorage{MemoryStorage: node.NewMemoryStorage()}
		n, err := node.Start(node.Config{Raft: raft.Config{ID: 1, Voters: []uint64{1}}, Storage: st,
			Transport: lonely{}, StateMachine: discard{}, TickInterval: time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		defer n.Stop()
		for range 5 {
			if err := n.WaitFor(t.Context(), func(st node.Status) bool { return st.Role == raft.RoleLeader }); err != nil {
				t.Fatal(err)
			}
			if _, _, err := n.Propose(t.Context(), []byte("x")); err != nil {
				t.Fatal(err)
			}
		}
		if st.appends.Load() == 0 || st.syncs.Load() == 0 || st.saves.Load() != 0 {
			t.Errorf("appends %d, syncs %d, saves %d: want the driver to append and sync, never save",
				st.appends.Load(), st.syncs.Load(), st.saves.Load())
		}
	})
}
