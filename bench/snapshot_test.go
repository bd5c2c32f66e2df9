package bench

import (
	"context"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/bifrost-go/bifrost/raft"
	"github.com/bifrost-go/bifrost/raft/node"
)

// blobSM is a state machine whose state is one large blob plus a counter
// of commands, so its snapshot is the size the benchmark asks for.
type blobSM struct {
	mu    sync.Mutex // protects the following
	blob  []byte
	count int
}

func (s *blobSM) Apply(raft.Entry) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.count++
	return nil
}

func (s *blobSM) Snapshot() ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.blob, nil
}

func (s *blobSM) Restore(_ raft.SnapshotMeta, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.blob = data
	return nil
}

// snapshotEveryEntry makes a member snapshot after each applied entry and
// keep no entries behind it, so a new member can only catch up by the
// snapshot.
func snapshotEveryEntry(c *node.Config) {
	c.SnapshotEntries, c.Raft.SnapshotCatchUpEntries = 1, -1
}

// BenchmarkSnapshotInstall measures how long a fresh member of a 3-node
// loopback group takes to receive, store durably and restore the
// leader's snapshot of a 64 MiB state (1 MiB chunks, one in flight), until
// it has applied what the leader applied. Each round starts a new group,
// untimed: a member that lost its disk may not rejoin under its old id.
func BenchmarkSnapshotInstall(b *testing.B) {
	const size = 64 << 20
	blob := make([]byte, size)
	for i := range blob {
		blob[i] = byte(i * 7)
	}
	b.SetBytes(size)
	for range b.N {
		b.StopTimer()
		installOnce(b, blob)
	}
}

// installOnce starts two members holding blob, makes them snapshot it,
// then times a third member catching up.
func installOnce(b *testing.B, blob []byte) {
	voters := []uint64{1, 2, 3}
	addrs, lns := listenLoopback(b, voters)
	root := b.TempDir()
	members := map[uint64]*member{}
	defer func() {
		b.StopTimer()
		for _, m := range members {
			m.stop(b)
		}
	}()
	for _, id := range voters[:2] {
		members[id] = startMember(b, id, lns[id], addrs, voters, filepath.Join(root, strconv.Itoa(int(id))), &blobSM{blob: blob}, snapshotEveryEntry)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	lead := waitLead(ctx, b, members[1].node)
	// One command, and with SnapshotEntries 1 the leader snapshots and
	// compacts: the new member can only catch up by the snapshot.
	if _, _, err := members[lead].node.Propose(ctx, []byte("x")); err != nil {
		b.Fatal(err)
	}
	if err := members[lead].node.WaitFor(ctx, func(st node.Status) bool { return st.Snapshot > 0 }); err != nil {
		b.Fatal(err)
	}
	target := members[lead].node.Status().Applied
	b.StartTimer()
	m := startMember(b, 3, lns[3], addrs, voters, filepath.Join(root, "3"), &blobSM{}, snapshotEveryEntry)
	members[3] = m
	if err := m.node.WaitFor(ctx, func(st node.Status) bool { return st.Applied >= target }); err != nil {
		b.Fatal(err)
	}
}

// waitLead waits until n knows a leader and returns it.
func waitLead(ctx context.Context, b *testing.B, n *node.Node) uint64 {
	b.Helper()
	if err := n.WaitFor(ctx, func(st node.Status) bool { return st.Lead != 0 }); err != nil {
		b.Fatal(err)
	}
	return n.Status().Lead
}
