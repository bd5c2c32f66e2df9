package chash_test

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/bifrost-go/bifrost"
	"github.com/bifrost-go/bifrost/chash"
	"github.com/bifrost-go/bifrost/membership"
	"github.com/bifrost-go/bifrost/rpc"
	"github.com/bifrost-go/bifrost/sm"
)

// Membership timings of the end-to-end tests: short, so a member goes
// offline within a second or so.
var testMembership = membership.Config{Group: "g", HeartbeatInterval: 100 * time.Millisecond, Timeout: time.Second}

// startGroup starts a 3-member group of bifrost Nodes on loopback TCP
// with fsync'd WALs, and returns the members' addresses.
func startGroup(t *testing.T) []string {
	var addrs []string
	lns := map[uint64]net.Listener{}
	peers := map[uint64]string{}
	for id := uint64(1); id <= 3; id++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns[id], peers[id] = ln, ln.Addr().String()
		addrs = append(addrs, ln.Addr().String())
	}
	for id := uint64(1); id <= 3; id++ {
		n, err := bifrost.Start(t.Context(), bifrost.Config{ID: id, Listener: lns[id], Dir: t.TempDir(), Peers: peers,
			Group: "g", TickInterval: 10 * time.Millisecond, Membership: testMembership})
		if err != nil {
			t.Fatalf("member %d: %v", id, err)
		}
		t.Cleanup(func() { n.Close() })
	}
	return addrs
}

// client is an sm client of the group with a pool of its own: closing
// the pool cuts the client off, as its process dying would.
type client struct {
	pool *rpc.Pool
	sm   *sm.Client
	obs  *membership.Observer
}

func newClient(t *testing.T, addrs []string) *client {
	pool, err := rpc.NewPool(rpc.ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := sm.NewClient(sm.ClientConfig{Group: "g", Servers: addrs, Pool: pool, AttemptTimeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	cl := &client{pool: pool, sm: c, obs: membership.NewObserver(c)}
	t.Cleanup(cl.kill)
	return cl
}

// kill cuts the client off at once, without leaving or closing anything
// on the group.
func (c *client) kill() {
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	c.sm.Close(gone)
	c.pool.Close()
}

// cacheServer is a member of the "cache" group with its own ring.
type cacheServer struct {
	client *client
	handle *membership.MemberHandle
	ch     *chash.ConsistentHashing
}

func joinCache(ctx context.Context, t *testing.T, addrs []string, name, addr string, weight uint64) *cacheServer {
	t.Helper()
	c := newClient(t, addrs)
	cfg := testMembership
	cfg.Servers, cfg.Pool = addrs, c.pool
	h, err := membership.Join(ctx, c.sm, name, addr, cfg)
	if err != nil {
		t.Fatalf("join %s: %v", name, err)
	}
	ch, err := chash.NewMember(ctx, h, c.obs, weight, chash.Config{Group: "cache"})
	if err != nil {
		t.Fatalf("ring of %s: %v", name, err)
	}
	s := &cacheServer{client: c, handle: h, ch: ch}
	t.Cleanup(ch.Close)
	return s
}

// ringSet is rings followed through their ring watchers, so a wait for
// them to agree wakes on changes rather than on a clock, and sees a
// version only once every watcher of the ring has been told of it.
type ringSet struct {
	rings   []*chash.ConsistentHashing
	changed chan struct{}

	mu   sync.Mutex // protects seen
	seen map[*chash.ConsistentHashing]chash.RingChange
}

func newRingSet() *ringSet {
	return &ringSet{changed: make(chan struct{}, 1), seen: map[*chash.ConsistentHashing]chash.RingChange{}}
}

func (rs *ringSet) add(t *testing.T, ch *chash.ConsistentHashing) {
	rs.rings = append(rs.rings, ch)
	t.Cleanup(ch.WatchRing(func(rc chash.RingChange) {
		rs.mu.Lock()
		rs.seen[ch] = rc
		rs.mu.Unlock()
		select {
		case rs.changed <- struct{}{}:
		default:
		}
	}))
}

func (rs *ringSet) remove(ch *chash.ConsistentHashing) {
	rs.rings = slices.DeleteFunc(rs.rings, func(r *chash.ConsistentHashing) bool { return r == ch })
}

// wait waits until every ring holds exactly servers, at one version and
// with one fingerprint, and returns that ring and version.
func (rs *ringSet) wait(ctx context.Context, t *testing.T, servers ...string) (*chash.Ring, uint64) {
	t.Helper()
	return rs.waitFor(ctx, t, func(r *chash.Ring) bool { return slices.Equal(r.Servers(), servers) })
}

// waitFor waits until every ring's watchers have been told of one
// version, with one fingerprint, and ok holds of it.
func (rs *ringSet) waitFor(ctx context.Context, t *testing.T, ok func(*chash.Ring) bool) (*chash.Ring, uint64) {
	t.Helper()
	for {
		if r, v, agree := rs.agreed(ok); agree {
			return r, v
		}
		select {
		case <-rs.changed:
		case <-ctx.Done():
			t.Fatal("the rings never agreed")
		}
	}
}

func (rs *ringSet) agreed(ok func(*chash.Ring) bool) (*chash.Ring, uint64, bool) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	first := rs.seen[rs.rings[0]]
	if first.Ring == nil || !ok(first.Ring) {
		return nil, 0, false
	}
	for _, ch := range rs.rings[1:] {
		rc := rs.seen[ch]
		if rc.Ring == nil || rc.Version != first.Version || rc.Ring.Fingerprint() != first.Ring.Fingerprint() {
			return nil, 0, false
		}
	}
	return first.Ring, first.Version, true
}

// changes collects what a watcher hears.
type changes struct {
	mu  sync.Mutex
	all []chash.RangeChange
}

func (c *changes) add(rc chash.RangeChange) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.all = append(c.all, rc)
}

func (c *changes) since(version uint64) (gained, lost []chash.Range) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rc := range c.all {
		if rc.Version > version {
			gained, lost = append(gained, rc.Gained...), append(lost, rc.Lost...)
		}
	}
	return chash.Normalize(gained), chash.Normalize(lost)
}

// Three cache servers with weights 1, 2 and 3 and two clients that only
// look up agree on every key; a server that dies leaves every ring, the
// survivors' watchers report exactly the ranges they took from it, and
// when it comes back (a new incarnation at a new address) it gets the
// same ranges back and the survivors lose exactly those.
func TestConsistentHashingFollowsMembership(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	addrs := startGroup(t)
	admin := newClient(t, addrs)
	if err := admin.obs.CreateGroup(ctx, "cache"); err != nil {
		t.Fatal(err)
	}
	servers := map[string]*cacheServer{}
	for i, name := range []string{"a", "b", "c"} {
		servers[name] = joinCache(ctx, t, addrs, name, name+":1", uint64(i+1))
	}
	rings := newRingSet()
	for _, s := range servers {
		rings.add(t, s.ch)
	}
	for range 2 {
		ch, err := chash.New(ctx, newClient(t, addrs).obs, chash.Config{Group: "cache"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(ch.Close)
		rings.add(t, ch)
	}
	full, before := rings.wait(ctx, t, "a", "b", "c")
	for i := range 1000 {
		key := fmt.Sprint("key-", i)
		want, _ := full.LookupString(key)
		for _, ch := range rings.rings {
			if got, err := ch.LookupString(key); err != nil || got.Name != want || got.Addr != want+":1" {
				t.Fatalf("%s: %v, %v; the ring says %s", key, got, err, want)
			}
		}
	}
	watched := map[string]*changes{"a": {}, "b": {}}
	for name, w := range watched {
		stop := servers[name].ch.WatchServerRangeChanged(name, w.add)
		defer stop()
	}
	cRanges := full.Ranges("c")

	// c dies: its heartbeats stop and its ring stops following.
	servers["c"].ch.Close()
	servers["c"].client.kill()
	rings.remove(servers["c"].ch)
	shrunk, dropped := rings.wait(ctx, t, "a", "b")
	var taken []chash.Range
	for name, w := range watched {
		gained, lost := w.since(before)
		if len(lost) != 0 || len(chash.Subtract(gained, cRanges)) != 0 {
			t.Errorf("%s gained %v and lost %v; it may only take c's ranges", name, gained, lost)
		}
		if !slices.Equal(chash.Normalize(append(slices.Clone(full.Ranges(name)), gained...)), shrunk.Ranges(name)) {
			t.Errorf("%s's replayed ranges differ from its ranges in the ring without c", name)
		}
		taken = append(taken, gained...)
	}
	if !slices.Equal(chash.Normalize(taken), cRanges) {
		t.Errorf("a and b took %v between them, c had %v", chash.Normalize(taken), cRanges)
	}

	// c restarts at a new address: the same member, a new incarnation.
	back := joinCache(ctx, t, addrs, "c", "c:2", 3)
	if back.handle.Member().Incarnation != 2 {
		t.Errorf("c rejoined as %v, want incarnation 2", back.handle.Member())
	}
	rings.add(t, back.ch)
	again, _ := rings.wait(ctx, t, "a", "b", "c")
	if again.Fingerprint() != full.Fingerprint() {
		t.Errorf("c's return did not restore the ring")
	}
	if s, _ := rings.rings[0].Lookup(cRanges[0].End); s.Name != "c" || s.Addr != "c:2" {
		t.Errorf("a key of c's goes to %v, want c at its new address", s)
	}
	for name, w := range watched {
		gained, lost := w.since(dropped)
		if len(gained) != 0 || !slices.Equal(lost, chash.Normalize(chash.Subtract(shrunk.Ranges(name), full.Ranges(name)))) {
			t.Errorf("%s, as c came back: gained %v, lost %v; want to lose what it took", name, gained, lost)
		}
	}

	// A weight set through the log reaches every ring.
	if err := rings.rings[0].SetWeight(ctx, "a", 5); err != nil {
		t.Fatal(err)
	}
	want, err := chash.NewRing(map[string]uint64{"a": 5, "b": 2, "c": 3}, chash.RingConfig{})
	if err != nil {
		t.Fatal(err)
	}
	rings.waitFor(ctx, t, func(r *chash.Ring) bool { return r.Fingerprint() == want.Fingerprint() })
	if err := rings.rings[0].SetWeight(ctx, "nobody", 1); err == nil {
		t.Error("SetWeight of a server not in the group worked")
	}
}
