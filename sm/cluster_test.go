package sm

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bifrost-go/bifrost/raft"
	"github.com/bifrost-go/bifrost/raft/node"
	"github.com/bifrost-go/bifrost/raft/wal"
	"github.com/bifrost-go/bifrost/rpc"
)

// Machines every test group carries.
var (
	testValue = NewValue[string]("value")
	testMap   = NewMap[string, string]("map")
)

func testMachines(p *leadProbe) []*Machine {
	return []*Machine{testCounter.Machine(), testValue.Machine(), testMap.Machine(), p.machine()}
}

// probeCmd is the command of the "probe" machine: it counts, outside the
// replicated state, the applies that found their member leading.
var probeCmd = NewCommand[struct{}, struct{}]("probe", "probe")

type leadProbe struct{ leading, following atomic.Int64 }

func (p *leadProbe) machine() *Machine {
	m := NewMachine("probe", emptyState{})
	HandleCommand(m, probeCmd, func(a *Apply, _ struct{}) (struct{}, error) {
		if Leading.Get(a.Context()) {
			p.leading.Add(1)
		} else {
			p.following.Add(1)
		}
		return struct{}{}, nil
	})
	return m
}

type emptyState struct{}

func (emptyState) Snapshot() ([]byte, error) { return nil, nil }
func (emptyState) Restore([]byte) error      { return nil }

// member is one member of a test group: rpc server, raft node on a WAL,
// and the sm host served on both.
//
// Hand-wired, not a bifrost.Node: package sm cannot import bifrost, and
// the tests on it read the host's internals (subscriptionCount, retained,
// logTime).
type member struct {
	id        uint64
	server    *rpc.Server
	pool, ctl *rpc.Pool
	transport *node.RPCTransport
	wal       *wal.WAL
	host      *Host
	node      *node.Node
	sm        *Server
	probe     *leadProbe
	served    chan error
}

// group is a raft group of sm hosts on loopback TCP.
type group struct {
	t       *testing.T
	hostCfg HostConfig
	tweak   func(*node.Config)
	ids     []uint64
	addrs   map[uint64]string
	dirs    map[uint64]string
	members map[uint64]*member
}

func newGroup(t *testing.T, size int, tweak func(*node.Config)) *group {
	return newGroupWith(t, size, HostConfig{}, tweak)
}

func newGroupWith(t *testing.T, size int, hostCfg HostConfig, tweak func(*node.Config)) *group {
	g := &group{t: t, hostCfg: hostCfg, tweak: tweak, addrs: map[uint64]string{}, dirs: map[uint64]string{}, members: map[uint64]*member{}}
	lns := map[uint64]net.Listener{}
	for id := uint64(1); id <= uint64(size); id++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		g.ids, g.addrs[id], g.dirs[id], lns[id] = append(g.ids, id), ln.Addr().String(), t.TempDir(), ln
	}
	for id, ln := range lns {
		g.start(id, ln)
	}
	t.Cleanup(g.stopAll)
	return g
}

// start runs member id on ln, or again at its address from its directory.
func (g *group) start(id uint64, ln net.Listener) {
	t := g.t
	t.Helper()
	var err error
	if ln == nil {
		if ln, err = net.Listen("tcp", g.addrs[id]); err != nil {
			t.Fatal(err)
		}
	}
	m := &member{id: id, served: make(chan error, 1), probe: &leadProbe{}}
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	m.server, err = rpc.NewServer(rpc.Config{})
	must(err)
	m.pool, err = rpc.NewPool(rpc.ClientConfig{})
	must(err)
	m.ctl, err = rpc.NewPool(rpc.ClientConfig{})
	must(err)
	peers := map[uint64]string{}
	for _, p := range g.ids {
		if p != id {
			peers[p] = g.addrs[p]
		}
	}
	m.transport, err = node.NewRPCTransport(node.RPCTransportConfig{Group: "g", Peers: peers, Server: m.server, Pool: m.pool, ControlPool: m.ctl})
	must(err)
	m.wal, err = wal.Open(wal.Config{Dir: g.dirs[id] + "/wal"})
	must(err)
	m.host, err = NewHost(g.hostCfg, testMachines(m.probe)...)
	must(err)
	cfg := node.Config{Raft: raft.Config{ID: id, Voters: g.ids}, Storage: node.NewWALStorage(m.wal),
		Transport: m.transport, StateMachine: m.host, TickInterval: 10 * time.Millisecond, SnapshotDir: g.dirs[id] + "/snap"}
	if g.tweak != nil {
		g.tweak(&cfg)
	}
	m.node, err = node.Start(cfg)
	must(err)
	m.sm, err = Serve(m.server, "g", m.host, m.node)
	must(err)
	go func() { m.served <- m.server.Serve(ln) }()
	g.members[id] = m
}

func (g *group) stop(id uint64) {
	m := g.members[id]
	delete(g.members, id)
	for _, err := range []error{m.node.Stop(), m.transport.Close(), m.server.Close(), m.pool.Close(), m.ctl.Close(), m.wal.Close()} {
		if err != nil {
			g.t.Errorf("stop member %d: %v", id, err)
		}
	}
	<-m.served
}

func (g *group) stopAll() {
	for id := range g.members {
		g.stop(id)
	}
}

// leader waits for a member to lead and returns it.
func (g *group) leader(ctx context.Context) *member {
	g.t.Helper()
	for {
		for _, m := range g.members {
			if m.node.Status().Role == raft.RoleLeader {
				return m
			}
		}
		for _, m := range g.members {
			sub, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
			m.node.WaitFor(sub, func(st node.Status) bool { return st.Role == raft.RoleLeader })
			cancel()
		}
		if ctx.Err() != nil {
			g.t.Fatal("no leader")
		}
	}
}

// client returns a client of the group through addrs (the members' own
// addresses unless given).
func (g *group) client(addrs ...string) *Client {
	g.t.Helper()
	if len(addrs) == 0 {
		addrs = g.serverAddrs()
	}
	pool, err := rpc.NewPool(rpc.ClientConfig{})
	if err != nil {
		g.t.Fatal(err)
	}
	g.t.Cleanup(func() { pool.Close() })
	c, err := NewClient(ClientConfig{Group: "g", Servers: addrs, Pool: pool})
	if err != nil {
		g.t.Fatal(err)
	}
	g.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		c.Close(ctx)
	})
	return c
}

// serverAddrs are the members' rpc addresses.
func (g *group) serverAddrs() (addrs []string) {
	for _, id := range g.ids {
		addrs = append(addrs, g.addrs[id])
	}
	return addrs
}

// sameState waits until every member applied the same index, then
// checks that their hosts' states are byte-identical.
func (g *group) sameState(ctx context.Context) {
	g.t.Helper()
	lead := g.leader(ctx)
	want := lead.node.Status().Commit
	var first []byte
	for _, m := range g.members {
		if err := m.node.WaitFor(ctx, func(st node.Status) bool { return st.Applied >= want }); err != nil {
			g.t.Fatalf("member %d did not apply %d: %v", m.id, want, err)
		}
	}
	// Compare at one index: propose nothing more, wait for all to match.
	for _, m := range g.members {
		if err := m.node.WaitFor(ctx, func(st node.Status) bool { return st.Applied == lead.host.Applied() }); err != nil {
			g.t.Fatalf("member %d: %v", m.id, err)
		}
		snap, err := m.host.Snapshot()
		if err != nil {
			g.t.Fatal(err)
		}
		if first == nil {
			first = snap
		} else if !bytes.Equal(first, snap) {
			g.t.Errorf("member %d's state differs from another's at index %d", m.id, m.host.Applied())
		}
	}
}

// lossyProxy forwards connections to addr and, with probability drop per
// reply, cuts the connection as a reply arrives: the request was served,
// its answer lost.
type lossyProxy struct {
	ln   net.Listener
	addr string
	drop float64
	mu   sync.Mutex // protects rng
	rng  *rand.Rand
	wg   sync.WaitGroup
}

func newLossyProxy(t *testing.T, addr string, drop float64, seed uint64) *lossyProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &lossyProxy{ln: ln, addr: addr, drop: drop, rng: rand.New(rand.NewPCG(seed, 1))}
	p.wg.Go(p.accept)
	t.Cleanup(func() { ln.Close(); p.wg.Wait() })
	return p
}

func (p *lossyProxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Go(func() { p.serve(c) })
	}
}

func (p *lossyProxy) lose() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rng.Float64() < p.drop
}

func (p *lossyProxy) serve(c net.Conn) {
	defer c.Close()
	s, err := net.Dial("tcp", p.addr)
	if err != nil {
		return
	}
	defer s.Close()
	p.wg.Go(func() { io.Copy(s, c); s.Close() })
	buf := make([]byte, 64<<10)
	for {
		n, err := s.Read(buf)
		if err != nil || p.lose() {
			return
		}
		if _, err := c.Write(buf[:n]); err != nil {
			return
		}
	}
}
