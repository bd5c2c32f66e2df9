package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/bifrost-go/bifrost"
	"github.com/bifrost-go/bifrost/bind"
	"github.com/bifrost-go/bifrost/chash"
	"github.com/bifrost-go/bifrost/membership"
	"github.com/bifrost-go/bifrost/raft"
	"github.com/bifrost-go/bifrost/raft/node"
	"github.com/bifrost-go/bifrost/rpc"
	"github.com/bifrost-go/bifrost/sm"
)

// demo walks through the library: typed RPC, bindings, and a three-member
// raft group on loopback that loses its leader and recovers it from disk.
func demo(ctx context.Context, out io.Writer) error {
	if err := demoRPC(ctx, out); err != nil {
		return fmt.Errorf("rpc: %w", err)
	}
	if err := demoRaft(ctx, out); err != nil {
		return fmt.Errorf("raft: %w", err)
	}
	return nil
}

// caller is bound per request: a handler deep down can read who called
// without every function in between passing it along.
var caller = bind.New("anonymous")

func greet(ctx context.Context, name string) (string, error) {
	return fmt.Sprintf("hello %s (asked by %s)", name, caller.Get(ctx)), nil
}

func demoRPC(ctx context.Context, out io.Writer) error {
	fmt.Fprintln(out, "== rpc: a typed method, no generated code")
	svc := rpc.NewService("greeter")
	hello, err := rpc.Register(svc, "hello", func(ctx context.Context, name string) (string, error) {
		return greet(caller.Bind(ctx, "the demo"), name)
	})
	if err != nil {
		return err
	}
	srv, err := rpc.NewServer(rpc.Config{})
	if err != nil {
		return err
	}
	if err := srv.AddService(svc); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	defer func() { srv.Close(); <-served }()

	pool, err := rpc.NewPool(rpc.ClientConfig{})
	if err != nil {
		return err
	}
	defer pool.Close()
	client, err := pool.Client(ctx, ln.Addr().String())
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	answers, errs := make([]string, 3), make([]error, 3)
	for i, name := range []string{"odin", "thor", "loki"} {
		wg.Go(func() { answers[i], errs[i] = hello.Call(ctx, client, name) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for _, a := range answers {
		fmt.Fprintf(out, "   %s: %s\n", ln.Addr(), a)
	}
	return nil
}

// demoTimings are the membership timings of the demo: a member that stops
// heartbeating is offline within about a second.
var demoTimings = membership.Config{HeartbeatInterval: 100 * time.Millisecond, Timeout: time.Second}

// cluster is the demo's three Nodes, each with its own directory.
type cluster struct {
	cfgs  []bifrost.Config
	nodes []*bifrost.Node
}

func startCluster(ctx context.Context, root string) (*cluster, error) {
	peers, lns := map[uint64]string{}, map[uint64]net.Listener{}
	for id := uint64(1); id <= 3; id++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		peers[id], lns[id] = ln.Addr().String(), ln
	}
	c := &cluster{}
	for id := uint64(1); id <= 3; id++ {
		cfg := bifrost.Config{ID: id, Listen: peers[id], Listener: lns[id], Dir: fmt.Sprintf("%s/%d", root, id),
			Peers: peers, TickInterval: 10 * time.Millisecond, Membership: demoTimings}
		n, err := bifrost.Start(ctx, cfg)
		if err != nil {
			for later := id + 1; later <= 3; later++ {
				lns[later].Close()
			}
			c.close()
			return nil, err
		}
		cfg.Listener = nil
		c.cfgs, c.nodes = append(c.cfgs, cfg), append(c.nodes, n)
	}
	return c, nil
}

func (c *cluster) close() {
	for _, n := range c.nodes {
		if n != nil {
			n.Close()
		}
	}
}

// leader waits for a node to lead and returns its index.
func (c *cluster) leader(ctx context.Context) (int, error) {
	for {
		for i, n := range c.nodes {
			if n != nil && n.Raft().Status().Role == raft.RoleLeader {
				return i, nil
			}
		}
		for _, n := range c.nodes {
			if n == nil {
				continue
			}
			wait, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
			n.Raft().WaitFor(wait, func(st node.Status) bool { return st.Role == raft.RoleLeader })
			cancel()
		}
		if ctx.Err() != nil {
			return 0, fmt.Errorf("no leader: %w", ctx.Err())
		}
	}
}

// session is an sm client of the cluster with a pool of its own.
type session struct {
	c    *sm.Client
	pool *rpc.Pool
}

func (c *cluster) session(i int) (*session, error) {
	cl, pool, err := c.nodes[i].NewClient()
	return &session{cl, pool}, err
}

// close closes the client, or with a dead context cuts it off at once.
func (s *session) close(ctx context.Context) {
	s.c.Close(ctx)
	s.pool.Close()
}

func demoRaft(ctx context.Context, out io.Writer) error {
	fmt.Fprintln(out, "== a cluster: three bifrost Nodes on loopback, each with its WAL")
	root, err := os.MkdirTemp("", "bifrost-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(root)
	c, err := startCluster(ctx, root)
	if err != nil {
		return err
	}
	defer c.close()
	lead, err := c.leader(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "   node %d leads term %d\n", lead+1, c.nodes[lead].Raft().Status().Term)
	s, err := c.session((lead + 1) % 3) // a follower's client: commands find the leader
	if err != nil {
		return err
	}
	defer s.close(ctx)
	if err := demoKV(ctx, out, s.c); err != nil {
		return err
	}
	if err := demoFailover(ctx, out, c, s.c, lead); err != nil {
		return err
	}
	return demoRing(ctx, out, c, s.c)
}

// demoKV writes the replicated map, reads it linearizably and watches a
// key.
func demoKV(ctx context.Context, out io.Writer, c *sm.Client) error {
	fmt.Fprintln(out, "== sm: the built-in replicated Map")
	_, _, changes, err := bifrost.KV.ReadKeyAndOpen(ctx, c, "guard")
	if err != nil {
		return err
	}
	defer changes.Close(ctx)
	for _, kv := range [][2]string{{"realm", "asgard"}, {"bridge", "bifrost"}, {"guard", "heimdall"}} {
		if _, _, err := bifrost.KV.Insert(ctx, c, kv[0], []byte(kv[1])); err != nil {
			return err
		}
		fmt.Fprintf(out, "   put %s=%s (committed at index %d)\n", kv[0], kv[1], c.Seen())
	}
	v, _, err := bifrost.KV.Get(ctx, c, "bridge")
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "   linearizable get bridge: %s\n", v)
	ev, err := changes.Next(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "   the subscription to guard fired: %s (event %d.%d)\n", ev.Value, ev.ID.Index, ev.ID.Sub)
	return nil
}

// demoFailover stops the leader, writes on, and restarts it from its
// directory.
func demoFailover(ctx context.Context, out io.Writer, c *cluster, s *sm.Client, lead int) error {
	fmt.Fprintf(out, "== raft: stopping the leader, node %d\n", lead+1)
	if err := c.nodes[lead].Close(); err != nil {
		return err
	}
	c.nodes[lead] = nil
	if _, _, err := bifrost.KV.Insert(ctx, s, "realm", []byte("midgard")); err != nil {
		return err
	}
	now, err := c.leader(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "   node %d leads term %d; put realm=midgard\n", now+1, c.nodes[now].Raft().Status().Term)
	if c.nodes[lead], err = bifrost.Start(ctx, c.cfgs[lead]); err != nil {
		return err
	}
	want := s.Seen()
	if err := c.nodes[lead].Raft().WaitFor(ctx, func(st node.Status) bool { return st.Applied >= want }); err != nil {
		return err
	}
	back, err := c.session(lead)
	if err != nil {
		return err
	}
	defer back.close(ctx)
	realm, _, err := bifrost.KV.GetAs(ctx, back.c, sm.Follower, "realm")
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "   node %d restarted from its WAL and caught up: realm=%s\n", lead+1, realm)
	return nil
}

// cacheServer is a member of the demo's "cache" group with its ring.
type cacheServer struct {
	s      *session
	handle *membership.MemberHandle
	ring   *chash.ConsistentHashing
}

func joinCache(ctx context.Context, c *cluster, name string, weight uint64) (*cacheServer, error) {
	s, err := c.session(int(weight-1) % 3)
	if err != nil {
		return nil, err
	}
	mc := demoTimings
	mc.Group, mc.Servers, mc.Pool = c.nodes[0].Group(), serversOf(c), s.pool
	h, err := membership.Join(ctx, s.c, name, name+".local:7000", mc)
	if err != nil {
		return nil, err
	}
	ring, err := chash.NewMember(ctx, h, membership.NewObserver(s.c), weight, chash.Config{Group: "cache"})
	if err != nil {
		return nil, err
	}
	return &cacheServer{s: s, handle: h, ring: ring}, nil
}

func serversOf(c *cluster) []string {
	var addrs []string
	for _, cfg := range c.cfgs {
		addrs = append(addrs, cfg.Peers[cfg.ID])
	}
	return addrs
}

// demoRing joins three servers with weights 1, 2 and 3, places keys,
// and follows the ring as one of them dies and comes back.
func demoRing(ctx context.Context, out io.Writer, c *cluster, s *sm.Client) error {
	fmt.Fprintln(out, "== membership and chash: servers a, b, c join group cache with weights 1, 2, 3")
	obs := membership.NewObserver(s)
	if err := obs.CreateGroup(ctx, "cache"); err != nil {
		return err
	}
	servers := map[string]*cacheServer{}
	defer func() {
		for _, cs := range servers {
			cs.ring.Close()
			cs.handle.Close(ctx)
			cs.s.close(ctx)
		}
	}()
	for i, name := range []string{"a", "b", "c"} {
		cs, err := joinCache(ctx, c, name, uint64(i+1))
		if err != nil {
			return err
		}
		servers[name] = cs
	}
	ring := servers["a"].ring
	moved := make(chan chash.RangeChange, 64) // far more than the demo's changes
	for _, name := range []string{"a", "b"} {
		stop := ring.WatchServerRangeChanged(name, func(rc chash.RangeChange) { moved <- rc })
		defer stop()
	}
	rings := make(chan chash.RingChange, 64)
	defer ring.WatchRing(func(rc chash.RingChange) { rings <- rc })()
	if err := waitServers(ctx, out, rings, 3, moved); err != nil {
		return err
	}
	printShares(out, ring)

	fmt.Fprintln(out, "   server c stops heartbeating")
	dead := servers["c"]
	delete(servers, "c")
	dead.ring.Close()
	gone, cancel := context.WithCancel(ctx)
	cancel()
	dead.s.close(gone)
	if err := waitServers(ctx, out, rings, 2, moved); err != nil {
		return err
	}
	printShares(out, ring)

	fmt.Fprintln(out, "   server c restarts and joins again")
	back, err := joinCache(ctx, c, "c", 3)
	if err != nil {
		return err
	}
	servers["c"] = back
	fmt.Fprintf(out, "   c is %v now\n", back.handle.Member())
	if err := waitServers(ctx, out, rings, 3, moved); err != nil {
		return err
	}
	printShares(out, ring)
	return nil
}

// waitServers waits for a version of the ring with n servers, printing
// the range changes the servers' watchers report on the way.
func waitServers(ctx context.Context, out io.Writer, rings <-chan chash.RingChange, n int, moved <-chan chash.RangeChange) error {
	for {
		select {
		case rc := <-rings:
			printMoved(out, moved) // told before the ring's watchers
			if len(rc.Ring.Servers()) == n {
				return nil
			}
		case <-ctx.Done():
			return fmt.Errorf("the ring never held %d servers: %w", n, ctx.Err())
		}
	}
}

func printMoved(out io.Writer, moved <-chan chash.RangeChange) {
	for {
		select {
		case rc := <-moved:
			fmt.Fprintf(out, "   %s's ranges changed at version %d: gained %.1f%% of the hashes in %d ranges, lost %.1f%%\n",
				rc.Server, rc.Version, percent(rc.Gained), len(rc.Gained), percent(rc.Lost))
		default:
			return
		}
	}
}

// percent is the share of the hash space rs covers.
func percent(rs []chash.Range) float64 {
	var n float64
	for _, g := range rs {
		n += float64(g.End-g.Start) + 1
	}
	return 100 * n / (1 << 64)
}

// printShares places 10000 keys and prints each server's share.
func printShares(out io.Writer, ring *chash.ConsistentHashing) {
	counts := map[string]int{}
	for i := range 10000 {
		if s, err := ring.LookupString(fmt.Sprint("user:", i)); err == nil {
			counts[s.Name]++
		}
	}
	r, version := ring.Ring()
	fmt.Fprintf(out, "   ring at membership version %d:", version)
	for _, name := range r.Servers() {
		fmt.Fprintf(out, " %s %.1f%%", name, float64(counts[name])/100)
	}
	fmt.Fprintln(out)
}
