package bifrost

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/bifrost-go/bifrost/internal/leakcheck"
	"github.com/bifrost-go/bifrost/membership"
	"github.com/bifrost-go/bifrost/raft"
	"github.com/bifrost-go/bifrost/raft/node"
)

func TestMain(m *testing.M) { leakcheck.Main(m, "github.com/bifrost-go/bifrost") }

// startCluster starts n nodes on loopback, each with a directory, and
// returns them with their configs (to start them again).
func startCluster(t testing.TB, size int) ([]*Node, []Config) {
	t.Helper()
	return startClusterWith(t, size, nil)
}

// startClusterWith is startCluster with each config passed through
// change first, if not nil.
func startClusterWith(t testing.TB, size int, change func(*Config)) ([]*Node, []Config) {
	t.Helper()
	peers := map[uint64]string{}
	lns := map[uint64]net.Listener{}
	for id := uint64(1); id <= uint64(size); id++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns[id], peers[id] = ln, ln.Addr().String()
	}
	var nodes []*Node
	var cfgs []Config
	for id := uint64(1); id <= uint64(size); id++ {
		cfg := Config{ID: id, Listen: peers[id], Listener: lns[id], Dir: t.TempDir(), Peers: peers,
			TickInterval: 10 * time.Millisecond}
		if change != nil {
			change(&cfg)
		}
		n, err := Start(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Listener = nil
		nodes, cfgs = append(nodes, n), append(cfgs, cfg)
	}
	t.Cleanup(func() {
		for _, n := range nodes {
			if n != nil {
				n.Close()
			}
		}
	})
	return nodes, cfgs
}

// A cluster of Nodes serves the built-in map and membership through any
// node's client, and a node closed and started again from its directory
// is the same member with the same state.
func TestNodesServeKVAndMembershipAndRecover(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	nodes, cfgs := startCluster(t, 3)
	c, pool, err := nodes[2].NewClient()
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	defer c.Close(ctx)
	if _, _, err := KV.Insert(ctx, c, "k", []byte("v1")); err != nil {
		t.Fatal(err)
	}
	obs := membership.NewObserver(c)
	if err := obs.CreateGroup(ctx, "cache"); err != nil {
		t.Fatal(err)
	}

	// The leader goes away and comes back from its directory.
	var lead int
	for i, n := range nodes {
		if n.Raft().Status().Role == raft.RoleLeader {
			lead = i
		}
	}
	if err := nodes[lead].Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if _, _, err := KV.Insert(ctx, c, "k", []byte("v2")); err != nil {
		t.Fatalf("insert without the old leader: %v", err)
	}
	restarted, err := Start(ctx, cfgs[lead])
	nodes[lead] = restarted
	if err != nil {
		t.Fatal(err)
	}
	want := nodes[(lead+1)%3].Raft().Status().Commit
	if err := restarted.Raft().WaitFor(ctx, func(st node.Status) bool { return st.Applied >= want }); err != nil {
		t.Fatal(err)
	}
	rc, rpool, err := restarted.NewClient()
	if err != nil {
		t.Fatal(err)
	}
	defer rpool.Close()
	defer rc.Close(ctx)
	if v, ok, err := KV.Get(ctx, rc, "k"); err != nil || !ok || string(v) != "v2" {
		t.Errorf("k after the restart: %q, %v, %v; want v2", v, ok, err)
	}
	if _, _, err := membership.NewObserver(rc).Members(ctx, "cache", false); err != nil {
		t.Errorf("the group made before the restart: %v", err)
	}
}

func TestStartRefusesBadConfig(t *testing.T) {
	for _, tt := range []struct {
		cfg  Config
		want string
	}{
		{Config{Listen: "127.0.0.1:0", Peers: map[uint64]string{1: ""}}, "ID"},
		{Config{ID: 1, Peers: map[uint64]string{1: ""}}, "Listen"},
		{Config{ID: 1, Listen: "127.0.0.1:0"}, "Peers"},
		{Config{ID: 2, Listen: "127.0.0.1:0", Peers: map[uint64]string{1: "x:1"}}, "does not name"},
		{Config{ID: 1, Listen: "256.0.0.1:bad", Peers: map[uint64]string{1: ""}}, "listen"},
	} {
		if n, err := Start(t.Context(), tt.cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Start(%+v) = %v, want an error naming %q", tt.cfg, err, tt.want)
			if n != nil {
				n.Close()
			}
		}
	}
}
