package bench

import (
	"context"
	"net"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/bifrost-go/bifrost"
	"github.com/bifrost-go/bifrost/raft"
	"github.com/bifrost-go/bifrost/raft/node"
	"github.com/bifrost-go/bifrost/raft/wal"
	"github.com/bifrost-go/bifrost/rpc"
)

// member is one node of a loopback group with its rpc plumbing, wired by
// hand: the raft benchmarks (reads, snapshots, the raw baseline of sm's
// overhead) measure raft without the sm host a bifrost.Node carries.
type member struct {
	addr      string
	state     node.StateMachine
	node      *node.Node
	server    *rpc.Server
	pool, ctl *rpc.Pool
	transport *node.RPCTransport
	wal       *wal.WAL
	served    chan error
}

func (m *member) stop(b *testing.B) {
	for _, err := range []error{m.node.Stop(), m.transport.Close(), m.server.Close(), m.pool.Close(), m.ctl.Close(), m.wal.Close()} {
		if err != nil {
			b.Error(err)
		}
	}
	<-m.served
}

// startMember runs node id of voters on ln with a WAL and snapshot
// directory under dir; tweak, if not nil, adjusts its config.
func startMember(b *testing.B, id uint64, ln net.Listener, addrs map[uint64]string, voters []uint64, dir string,
	sm node.StateMachine, tweak func(*node.Config)) *member {
	b.Helper()
	m := &member{addr: ln.Addr().String(), state: sm, served: make(chan error, 1)}
	var err error
	if m.server, err = rpc.NewServer(rpc.Config{}); err != nil {
		b.Fatal(err)
	}
	if m.pool, err = rpc.NewPool(rpc.ClientConfig{}); err != nil {
		b.Fatal(err)
	}
	if m.ctl, err = rpc.NewPool(rpc.ClientConfig{}); err != nil {
		b.Fatal(err)
	}
	peers := map[uint64]string{}
	for pid, addr := range addrs {
		if pid != id {
			peers[pid] = addr
		}
	}
	if m.transport, err = node.NewRPCTransport(node.RPCTransportConfig{Group: "bench", Peers: peers,
		Server: m.server, Pool: m.pool, ControlPool: m.ctl}); err != nil {
		b.Fatal(err)
	}
	if m.wal, err = wal.Open(wal.Config{Dir: filepath.Join(dir, "wal")}); err != nil {
		b.Fatal(err)
	}
	go func() { m.served <- m.server.Serve(ln) }()
	cfg := node.Config{Raft: raft.Config{ID: id, Voters: voters}, Storage: node.NewWALStorage(m.wal),
		Transport: m.transport, StateMachine: sm, TickInterval: 10 * time.Millisecond,
		SnapshotDir: filepath.Join(dir, "snap")}
	if tweak != nil {
		tweak(&cfg)
	}
	if m.node, err = node.Start(cfg); err != nil {
		b.Fatal(err)
	}
	return m
}

// listenLoopback opens a loopback listener for each of ids.
func listenLoopback(b *testing.B, ids []uint64) (addrs map[uint64]string, lns map[uint64]net.Listener) {
	addrs, lns = map[uint64]string{}, map[uint64]net.Listener{}
	for _, id := range ids {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		lns[id], addrs[id] = ln, ln.Addr().String()
	}
	return addrs, lns
}

// startGroup starts a 3-member loopback group with fsync'd WALs, each
// member's state machine from newSM, and returns the members and the
// leader once one leads.
func startGroup(b *testing.B, newSM func() node.StateMachine, tweak func(*node.Config)) (map[uint64]*member, *node.Node) {
	voters := []uint64{1, 2, 3}
	addrs, lns := listenLoopback(b, voters)
	root := b.TempDir()
	members := map[uint64]*member{}
	b.Cleanup(func() {
		for _, m := range members {
			m.stop(b)
		}
	})
	for _, id := range voters {
		dir := filepath.Join(root, strconv.Itoa(int(id)))
		members[id] = startMember(b, id, lns[id], addrs, voters, dir, newSM(), tweak)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	lead := members[waitLead(ctx, b, members[1].node)].node
	if err := lead.WaitFor(ctx, func(st node.Status) bool { return st.Role == raft.RoleLeader }); err != nil {
		b.Fatal(err)
	}
	return members, lead
}

// startNodes starts a 3-member group of bifrost Nodes on loopback with
// fsync'd WALs, each config passed through change first, and returns them
// once one leads, the leader first.
func startNodes(b *testing.B, change func(*bifrost.Config)) []*bifrost.Node {
	voters := []uint64{1, 2, 3}
	addrs, lns := listenLoopback(b, voters)
	nodes := map[uint64]*bifrost.Node{}
	b.Cleanup(func() {
		for _, n := range nodes {
			if err := n.Close(); err != nil {
				b.Error(err)
			}
		}
	})
	for _, id := range voters {
		cfg := bifrost.Config{ID: id, Listener: lns[id], Dir: b.TempDir(), Peers: addrs, TickInterval: 10 * time.Millisecond}
		change(&cfg)
		n, err := bifrost.Start(context.Background(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		nodes[id] = n
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	lead := nodes[waitLead(ctx, b, nodes[1].Raft())]
	if err := lead.Raft().WaitFor(ctx, func(st node.Status) bool { return st.Role == raft.RoleLeader }); err != nil {
		b.Fatal(err)
	}
	out := []*bifrost.Node{lead}
	for _, n := range nodes {
		if n != lead {
			out = append(out, n)
		}
	}
	return out
}

// addrsOf returns the nodes' rpc addresses, in order.
func addrsOf(nodes []*bifrost.Node) []string {
	var addrs []string
	for _, n := range nodes {
		addrs = append(addrs, n.Addr())
	}
	return addrs
}
