package membership

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/bifrost-go/bifrost/raft"
	"github.com/bifrost-go/bifrost/raft/node"
	"github.com/bifrost-go/bifrost/raft/wal"
	"github.com/bifrost-go/bifrost/rpc"
	"github.com/bifrost-go/bifrost/sm"
)

// The test group is called "g" on every member.
const testGroup = "g"

// cluster is a raft group whose hosts carry the membership machine, each
// member with its Service. In process (local), the rpc servers are
// reached through pools' in-process routes and logs are kept in memory:
// nothing touches the network or the disk, so the whole cluster runs in a
// synctest bubble. Otherwise members listen on loopback TCP and keep
// their logs in WALs.
//
// Hand-wired, not bifrost.Nodes: package membership cannot import
// bifrost, and its tests need internals no Node gives (in-process routes
// for synctest, Service.detecting, MemberHandle.silent).
type cluster struct {
	t     testing.TB
	cfg   Config // timings; Group, Servers and Pool are filled in
	local bool
	tweak func(*node.Config)
	ids   []uint64
	addrs map[uint64]string
	dirs  map[uint64]string
	mems  map[uint64]*node.MemoryStorage // local: each member's "disk"

	mu    sync.Mutex // protects the following
	nodes map[uint64]*server
	pools []*rpc.Pool // local: the pools whose routes follow restarts
}

// server is one member of the group.
type server struct {
	id        uint64
	rpc       *rpc.Server
	pool, ctl *rpc.Pool
	tr        *node.RPCTransport
	wal       *wal.WAL
	host      *sm.Host
	node      *node.Node
	sm        *sm.Server
	svc       *Service
	served    chan error
}

func newLocalCluster(t testing.TB, size int, cfg Config) *cluster {
	return newCluster(t, size, cfg, true, nil)
}

func newLoopbackCluster(t testing.TB, size int, cfg Config, tweak func(*node.Config)) *cluster {
	return newCluster(t, size, cfg, false, tweak)
}

func newCluster(t testing.TB, size int, cfg Config, local bool, tweak func(*node.Config)) *cluster {
	c := &cluster{t: t, cfg: cfg, local: local, tweak: tweak, addrs: map[uint64]string{}, dirs: map[uint64]string{},
		mems: map[uint64]*node.MemoryStorage{}, nodes: map[uint64]*server{}}
	cfg.Group = testGroup
	if cfg.Logger == nil {
		cfg.Logger = debugLogger(t)
	}
	var err error
	if c.cfg, err = cfg.withDefaults(); err != nil {
		t.Fatal(err)
	}
	lns := map[uint64]net.Listener{}
	for id := uint64(1); id <= uint64(size); id++ {
		c.ids = append(c.ids, id)
		if local {
			c.addrs[id], c.mems[id] = fmt.Sprintf("node-%d", id), node.NewMemoryStorage()
			continue
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		c.addrs[id], c.dirs[id], lns[id] = ln.Addr().String(), t.TempDir(), ln
	}
	for _, id := range c.ids {
		c.start(id, lns[id])
	}
	t.Cleanup(c.stopAll)
	return c
}

func (c *cluster) servers() []string {
	var out []string
	for _, id := range c.ids {
		out = append(out, c.addrs[id])
	}
	return out
}

// newPool returns a pool that reaches the members, closed at cleanup.
func (c *cluster) newPool() *rpc.Pool {
	p, err := rpc.NewPool(rpc.ClientConfig{})
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { p.Close() })
	if c.local {
		c.mu.Lock()
		for id, s := range c.nodes {
			p.SetLocal(c.addrs[id], s.rpc)
		}
		c.pools = append(c.pools, p)
		c.mu.Unlock()
	}
	return p
}

// start runs member id on ln (or again at its address, from its storage).
func (c *cluster) start(id uint64, ln net.Listener) {
	t := c.t
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("start member %d: %v", id, err)
		}
	}
	s := &server{id: id, served: make(chan error, 1)}
	var err error
	s.rpc, err = rpc.NewServer(rpc.Config{})
	must(err)
	s.pool, err = rpc.NewPool(rpc.ClientConfig{})
	must(err)
	s.ctl, err = rpc.NewPool(rpc.ClientConfig{})
	must(err)
	peers := map[uint64]string{}
	for _, p := range c.ids {
		if p != id {
			peers[p] = c.addrs[p]
		}
	}
	c.route(id, s)
	s.tr, err = node.NewRPCTransport(node.RPCTransportConfig{Group: testGroup, Peers: peers, Server: s.rpc, Pool: s.pool, ControlPool: s.ctl})
	must(err)
	s.host, err = sm.NewHost(sm.HostConfig{}, Machine())
	must(err)
	cfg := node.Config{Raft: raft.Config{ID: id, Voters: c.ids}, Transport: s.tr, StateMachine: s.host,
		TickInterval: 10 * time.Millisecond}
	if c.local {
		cfg.Storage = c.mems[id]
	} else {
		s.wal, err = wal.Open(wal.Config{Dir: c.dirs[id] + "/wal"})
		must(err)
		cfg.Storage, cfg.SnapshotDir = node.NewWALStorage(s.wal), c.dirs[id]+"/snap"
	}
	if c.tweak != nil {
		c.tweak(&cfg)
	}
	s.node, err = node.Start(cfg)
	must(err)
	s.sm, err = sm.Serve(s.rpc, testGroup, s.host, s.node)
	must(err)
	s.svc, err = Serve(s.rpc, s.sm, c.cfg)
	must(err)
	if c.local {
		close(s.served)
	} else {
		if ln == nil {
			ln, err = net.Listen("tcp", c.addrs[id])
			must(err)
		}
		go func() { s.served <- s.rpc.Serve(ln) }()
	}
	c.mu.Lock()
	c.nodes[id] = s
	c.mu.Unlock()
}

// route points every in-process route to member id at s: its peers', the
// test's pools', and its own pools' routes to its peers.
func (c *cluster) route(id uint64, s *server) {
	if !c.local {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.pools {
		p.SetLocal(c.addrs[id], s.rpc)
	}
	for pid, peer := range c.nodes {
		peer.pool.SetLocal(c.addrs[id], s.rpc)
		peer.ctl.SetLocal(c.addrs[id], s.rpc)
		s.pool.SetLocal(c.addrs[pid], peer.rpc)
		s.ctl.SetLocal(c.addrs[pid], peer.rpc)
	}
}

// stop kills member id: its Service, node and servers.
func (c *cluster) stop(id uint64) {
	c.mu.Lock()
	s := c.nodes[id]
	delete(c.nodes, id)
	c.mu.Unlock()
	errs := []error{s.svc.Close(), s.node.Stop(), s.tr.Close(), s.rpc.Close(), s.pool.Close(), s.ctl.Close()}
	if s.wal != nil {
		errs = append(errs, s.wal.Close())
	}
	for _, err := range errs {
		if err != nil {
			c.t.Errorf("stop member %d: %v", id, err)
		}
	}
	<-s.served
}

func (c *cluster) stopAll() {
	for _, id := range c.ids {
		if c.node(id) != nil {
			c.stop(id)
		}
	}
}

func (c *cluster) node(id uint64) *server {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[id]
}

func (c *cluster) running() []*server {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*server
	for _, id := range c.ids {
		if s := c.nodes[id]; s != nil {
			out = append(out, s)
		}
	}
	return out
}

// detector waits for a member whose detector leads, caught up, and
// returns it.
func (c *cluster) detector(ctx context.Context) *server {
	c.t.Helper()
	for {
		for _, s := range c.running() {
			if s.svc.detecting() && s.node.Status().Role == raft.RoleLeader {
				return s
			}
		}
		if ctx.Err() != nil {
			c.t.Fatal("no detecting leader")
		}
		for _, s := range c.running() {
			sub, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
			s.node.WaitFor(sub, func(st node.Status) bool { return st.Role == raft.RoleLeader && st.Applied == st.Commit })
			cancel()
		}
	}
}

// client returns an sm client of the group, closed at cleanup.
func (c *cluster) client() *sm.Client {
	c.t.Helper()
	cl, err := sm.NewClient(sm.ClientConfig{Group: testGroup, Servers: c.servers(), Pool: c.newPool()})
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		cl.Close(ctx)
	})
	return cl
}

func (c *cluster) observer() *Observer { return NewObserver(c.client()) }

// memberConfig is the Config a member joins with.
func (c *cluster) memberConfig() Config {
	cfg := c.cfg
	cfg.Servers, cfg.Pool = c.servers(), c.newPool()
	return cfg
}

// join registers a member with a client of its own; it leaves at
// cleanup unless closed before.
func (c *cluster) join(ctx context.Context, name, addr string) *MemberHandle {
	c.t.Helper()
	h, err := Join(ctx, c.client(), name, addr, c.memberConfig())
	if err != nil {
		c.t.Fatalf("join %s: %v", name, err)
	}
	c.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		h.Close(ctx)
	})
	return h
}

// recorder keeps the events of a stream as they come.
type recorder struct {
	mu      sync.Mutex // protects the following
	events  []recorded
	err     error
	changed chan struct{} // closed and replaced on every event
	done    chan struct{}
}

// recorded is an event and when the recorder got it.
type recorded struct {
	Event
	at time.Time
}

// recordStream reads st until it ends; the stream is closed at cleanup.
func recordStream(t testing.TB, st *sm.Stream[Event]) *recorder {
	r := &recorder{changed: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		for {
			ev, err := st.Next(context.Background())
			r.mu.Lock()
			if err != nil {
				r.err = err
			} else {
				r.events = append(r.events, recorded{ev.Value, time.Now()})
			}
			close(r.changed)
			r.changed = make(chan struct{})
			r.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { st.Close(context.Background()); <-r.done })
	return r
}

// wait returns the first event that matches, waiting for it.
func (r *recorder) wait(ctx context.Context, match func(Event) bool) (recorded, error) {
	return r.waitFrom(ctx, 0, match)
}

// waitFrom returns the first event from the from-th on that matches.
func (r *recorder) waitFrom(ctx context.Context, from int, match func(Event) bool) (recorded, error) {
	for {
		r.mu.Lock()
		for _, e := range r.events[min(from, len(r.events)):] {
			if match(e.Event) {
				r.mu.Unlock()
				return e, nil
			}
		}
		changed, err := r.changed, r.err
		r.mu.Unlock()
		if err != nil {
			return recorded{}, err
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return recorded{}, ctx.Err()
		}
	}
}

// len returns how many events came so far.
func (r *recorder) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.events)
}

// count returns how many events so far match.
func (r *recorder) count(match func(Event) bool) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.events {
		if match(e.Event) {
			n++
		}
	}
	return n
}

func (r *recorder) all() []recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// is matches events of kind for member id.
func is(kind EventKind, id MemberID) func(Event) bool {
	return func(e Event) bool { return e.Kind == kind && e.Member.ID == id }
}

// watchGroup records the events of group ("" for the cluster) from now on.
func watchGroup(ctx context.Context, t testing.TB, o *Observer, group string) *recorder {
	t.Helper()
	_, _, st, err := o.WatchGroup(ctx, group)
	if err != nil {
		t.Fatalf("watch %q: %v", group, err)
	}
	return recordStream(t, st)
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

// debugLogger logs to t, with MEMBERSHIP_DEBUG=1, everything the members
// of a test cluster say; else nothing.
func debugLogger(t testing.TB) *slog.Logger {
	if os.Getenv("MEMBERSHIP_DEBUG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
