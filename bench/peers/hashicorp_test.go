package peers

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// hashicorpLeaderWait bounds the wait for the first leader.
const hashicorpLeaderWait = 30 * time.Second

// nopFSM is a trivial state machine: it stores nothing.
type nopFSM struct{}

func (nopFSM) Apply(*raft.Log) any                 { return nil }
func (nopFSM) Snapshot() (raft.FSMSnapshot, error) { return nopSnapshot{}, nil }
func (nopFSM) Restore(rc io.ReadCloser) error      { return rc.Close() }

// nopSnapshot is the empty snapshot of nopFSM.
type nopSnapshot struct{}

func (nopSnapshot) Persist(s raft.SnapshotSink) error { return s.Close() }
func (nopSnapshot) Release()                          {}

// hashicorpNode is one member of a hashicorp/raft cluster and what it holds.
type hashicorpNode struct {
	raft  *raft.Raft
	trans *raft.NetworkTransport
	bolt  *raftboltdb.BoltStore // nil for memory storage
}

// startHashicorp is the startFunc for hashicorp/raft v1.8.0: three nodes on
// loopback TCP with the library's default configuration, storage either
// raft.InmemStore with an in-memory snapshot store ("mem") or a
// raft-boltdb/v2 store with fsync on behind a LogCache, with a file snapshot
// store ("disk"), the way Consul and Nomad run it.
func startHashicorp(b *testing.B, storage string) (applyFunc, func()) {
	b.Helper()
	logger := hclog.NewNullLogger()
	const n = 3

	nodes := make([]*hashicorpNode, 0, n)
	stop := func() {
		for _, nd := range nodes {
			if nd.raft != nil {
				_ = nd.raft.Shutdown().Error()
			}
			_ = nd.trans.Close()
			if nd.bolt != nil {
				_ = nd.bolt.Close()
			}
		}
	}
	ok := false
	defer func() {
		if !ok {
			stop()
		}
	}()

	// Transports first, so that the configuration knows every address.
	var servers []raft.Server
	for i := range n {
		trans, err := raft.NewTCPTransportWithLogger("127.0.0.1:0", nil, 3, 10*time.Second, logger)
		if err != nil {
			b.Fatalf("hashicorp transport: %v", err)
		}
		nodes = append(nodes, &hashicorpNode{trans: trans})
		servers = append(servers, raft.Server{
			Suffrage: raft.Voter,
			ID:       raft.ServerID(fmt.Sprintf("node%d", i)),
			Address:  trans.LocalAddr(),
		})
	}
	configuration := raft.Configuration{Servers: servers}

	for i, nd := range nodes {
		conf := raft.DefaultConfig()
		conf.LocalID = servers[i].ID
		conf.Logger = logger

		var (
			logs   raft.LogStore
			stable raft.StableStore
			snaps  raft.SnapshotStore
		)
		switch storage {
		case "mem":
			store := raft.NewInmemStore()
			logs, stable, snaps = store, store, raft.NewInmemSnapshotStore()
		case "disk":
			dir := filepath.Join(b.TempDir(), string(conf.LocalID))
			bolt, err := raftboltdb.New(raftboltdb.Options{
				Path:   dir + ".db",
				NoSync: false, // fsync every write
			})
			if err != nil {
				b.Fatalf("hashicorp bolt store: %v", err)
			}
			nd.bolt = bolt
			cache, err := raft.NewLogCache(512, bolt)
			if err != nil {
				b.Fatalf("hashicorp log cache: %v", err)
			}
			fss, err := raft.NewFileSnapshotStoreWithLogger(dir, 2, logger)
			if err != nil {
				b.Fatalf("hashicorp snapshot store: %v", err)
			}
			logs, stable, snaps = cache, bolt, fss
		default:
			b.Fatalf("unknown storage %q", storage)
		}

		if err := raft.BootstrapCluster(conf, logs, stable, snaps, nd.trans, configuration); err != nil {
			b.Fatalf("hashicorp bootstrap: %v", err)
		}
		r, err := raft.NewRaft(conf, nopFSM{}, logs, stable, snaps, nd.trans)
		if err != nil {
			b.Fatalf("hashicorp raft: %v", err)
		}
		nd.raft = r
	}

	leader := hashicorpWaitLeader(b, nodes)
	// The leader's first entry of its term must be committed before it
	// serves: a barrier waits for that.
	if err := leader.Barrier(hashicorpLeaderWait).Error(); err != nil {
		b.Fatalf("hashicorp barrier: %v", err)
	}

	apply := func(ctx context.Context, cmd []byte) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		var timeout time.Duration // no timeout
		if d, ok := ctx.Deadline(); ok {
			if timeout = time.Until(d); timeout <= 0 {
				return context.DeadlineExceeded
			}
		}
		return leader.Apply(cmd, timeout).Error()
	}
	ok = true
	return apply, stop
}

// hashicorpWaitLeader polls the nodes until one of them is leader, for at
// most hashicorpLeaderWait.
func hashicorpWaitLeader(b *testing.B, nodes []*hashicorpNode) *raft.Raft {
	b.Helper()
	deadline := time.Now().Add(hashicorpLeaderWait)
	for time.Now().Before(deadline) {
		for _, nd := range nodes {
			if nd.raft.State() == raft.Leader {
				return nd.raft
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	b.Fatalf("hashicorp: no leader elected within %v", hashicorpLeaderWait)
	return nil
}
