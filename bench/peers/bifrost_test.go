package peers

import (
	"context"
	"net"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/bifrost-go/bifrost/raft"
	"github.com/bifrost-go/bifrost/raft/node"
	"github.com/bifrost-go/bifrost/raft/wal"
	"github.com/bifrost-go/bifrost/rpc"
)

// discardSM is the benchmark's state machine: applying costs nothing, so
// the figures measure consensus, storage and transport.
type discardSM struct{}

func (discardSM) Apply(raft.Entry) []byte { return nil }

// bifrostMember is one member of the benchmark cluster, wired by hand
// rather than a bifrost.Node: the peers compared are raft libraries, so it
// measures our raft alone, without the sm host and membership of a Node.
type bifrostMember struct {
	srv       *rpc.Server
	pool, ctl *rpc.Pool
	transport *node.RPCTransport
	wal       *wal.WAL
	node      *node.Node
	served    chan error
}

// startBifrost starts three members of our raft on loopback TCP, each with
// its own rpc server and pool, with memory storage or a WAL in b.TempDir().
func startBifrost(b *testing.B, storage string) (applyFunc, func()) {
	voters := []uint64{1, 2, 3}
	addrs, lns := map[uint64]string{}, map[uint64]net.Listener{}
	for _, id := range voters {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		addrs[id], lns[id] = ln.Addr().String(), ln
	}
	members := map[uint64]*bifrostMember{}
	stop := func() {
		for _, m := range members {
			m.stop()
		}
	}
	for _, id := range voters {
		m, err := startBifrostMember(b, id, voters, addrs, lns[id], storage)
		if err != nil {
			stop()
			b.Fatalf("start member %d: %v", id, err)
		}
		members[id] = m
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := members[1].node.WaitFor(ctx, func(st node.Status) bool { return st.Lead != 0 })
	if err != nil {
		stop()
		b.Fatalf("no leader: %v", err)
	}
	lead := members[members[1].node.Status().Lead].node
	err = lead.WaitFor(ctx, func(st node.Status) bool { return st.Role == raft.RoleLeader })
	if err != nil {
		stop()
		b.Fatalf("leader did not take office: %v", err)
	}
	apply := func(ctx context.Context, cmd []byte) error {
		_, _, err := lead.Propose(ctx, cmd)
		return err
	}
	return apply, stop
}

func startBifrostMember(b *testing.B, id uint64, voters []uint64, addrs map[uint64]string,
	ln net.Listener, storage string) (*bifrostMember, error) {
	m := &bifrostMember{served: make(chan error, 1)}
	var err error
	if m.srv, err = rpc.NewServer(rpc.Config{}); err != nil {
		return nil, err
	}
	if m.pool, err = rpc.NewPool(rpc.ClientConfig{}); err != nil {
		return nil, err
	}
	if m.ctl, err = rpc.NewPool(rpc.ClientConfig{}); err != nil {
		return nil, err
	}
	peers := map[uint64]string{}
	for pid, addr := range addrs {
		if pid != id {
			peers[pid] = addr
		}
	}
	m.transport, err = node.NewRPCTransport(node.RPCTransportConfig{
		Group: "bench", Peers: peers, Server: m.srv, Pool: m.pool, ControlPool: m.ctl})
	if err != nil {
		return nil, err
	}
	var store node.Storage = node.NewMemoryStorage()
	if storage == "disk" {
		dir := filepath.Join(b.TempDir(), "wal-"+strconv.FormatUint(id, 10))
		if m.wal, err = wal.Open(wal.Config{Dir: dir}); err != nil {
			return nil, err
		}
		store = node.NewWALStorage(m.wal)
	}

	go func() { m.served <- m.srv.Serve(ln) }()
	m.node, err = node.Start(node.Config{Raft: raft.Config{ID: id, Voters: voters}, Storage: store,
		Transport: m.transport, StateMachine: discardSM{}})
	return m, err
}

func (m *bifrostMember) stop() {
	if m.node != nil {
		m.node.Stop()
	}
	m.transport.Close()
	m.srv.Close()
	<-m.served
	m.pool.Close()
	m.ctl.Close()
	if m.wal != nil {
		m.wal.Close()
	}
}
