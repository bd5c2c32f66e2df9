package linearizability

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/bifrost-go/bifrost/raft"
	"github.com/bifrost-go/bifrost/raft/node"
)

// The cluster's clock: 10 ms ticks and an election timeout of 100 to 200
// ms, all fake time inside the bubble.
const (
	tickInterval  = 10 * time.Millisecond
	electionTicks = 10
)

// clusterConfig says how to build a test cluster.
type clusterConfig struct {
	servers    int
	seed       uint64
	faults     faults // between servers, and between clients and servers
	leaseReads bool
	// snapshotEntries makes servers snapshot every so many entries and
	// keep no entries behind the snapshot, so that lagging and restarted
	// servers install snapshots. Zero: the node's defaults.
	snapshotEntries int
}

// server is one incarnation of a cluster member: a node and its store.
type server struct {
	id   uint64
	node *node.Node
	kv   *KV
}

// cluster runs raft/node servers holding a KV on an in-memory network,
// inside a synctest bubble. Crashed servers restart from the
// node.MemoryStorage they had, with a fresh KV that the log (and
// snapshot) rebuilds.
type cluster struct {
	t   *testing.T
	cfg clusterConfig
	nw  *network
	ids []uint64

	mu       sync.Mutex // protects the following
	servers  map[uint64]*server
	storage  map[uint64]*node.MemoryStorage
	restarts map[uint64]int   // crashes of each server, which number its incarnations
	reach    map[int][]uint64 // servers each client can reach; absent: all
}

func newCluster(t *testing.T, cfg clusterConfig) *cluster {
	c := &cluster{t: t, cfg: cfg, nw: newNetwork(cfg.seed, cfg.faults),
		servers: map[uint64]*server{}, storage: map[uint64]*node.MemoryStorage{},
		restarts: map[uint64]int{}, reach: map[int][]uint64{}}
	for id := uint64(1); id <= uint64(cfg.servers); id++ {
		c.ids = append(c.ids, id)
		c.storage[id] = node.NewMemoryStorage()
	}
	for _, id := range c.ids {
		c.start(id)
	}
	t.Cleanup(c.stopAll)
	return c
}

// start starts server id from its storage; it must not be running.
func (c *cluster) start(id uint64) {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	kv := NewKV()
	cfg := node.Config{
		Raft: raft.Config{ID: id, Voters: c.ids, ElectionTicks: electionTicks,
			// Election timeouts follow the seed, and differ per incarnation.
			Seed:       c.cfg.seed*1000003 + id*101 + uint64(c.restarts[id]) + 1,
			LeaseReads: c.cfg.leaseReads,
		},
		Storage: c.storage[id], Transport: c.nw.endpoint(id), StateMachine: kv,
		TickInterval: tickInterval,
	}
	if c.cfg.snapshotEntries > 0 {
		cfg.SnapshotEntries = c.cfg.snapshotEntries
		cfg.Raft.SnapshotCatchUpEntries = -1 // a follower that lags at all needs the snapshot
	}
	n, err := node.Start(cfg)
	if err != nil {
		c.t.Fatalf("start server %d: %v", id, err)
	}
	c.servers[id] = &server{id: id, node: n, kv: kv}
}

// crash stops server id as if it failed: it hears nothing more and loses
// everything but its storage (which node.MemoryStorage writes through, so
// all it saved is "durable"). Crashing a crashed server does nothing.
func (c *cluster) crash(id uint64) {
	c.t.Helper()
	c.mu.Lock()
	s := c.servers[id]
	delete(c.servers, id)
	if s != nil {
		c.restarts[id]++
	}
	c.mu.Unlock()
	if s == nil {
		return
	}
	c.nw.disconnect(id)
	if err := s.node.Stop(); err != nil {
		c.t.Errorf("stop server %d: %v", id, err)
	}
}

// restart starts server id again if it is down.
func (c *cluster) restart(id uint64) {
	c.mu.Lock()
	up := c.servers[id] != nil
	c.mu.Unlock()
	if !up {
		c.start(id)
	}
}

// restartAll restarts every crashed server.
func (c *cluster) restartAll() {
	for _, id := range c.ids {
		c.restart(id)
	}
}

func (c *cluster) stopAll() {
	for _, id := range c.ids {
		c.crash(id)
	}
}

// server returns the running incarnation of id, or nil.
func (c *cluster) server(id uint64) *server {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.servers[id]
}

// running returns the ids of the running servers.
func (c *cluster) running() []uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Sorted(maps.Keys(c.servers))
}

// limitClient lets client reach only the given servers; nil: all.
func (c *cluster) limitClient(client int, ids []uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ids == nil {
		delete(c.reach, client)
		return
	}
	c.reach[client] = slices.Clone(ids)
}

// reachable reports whether client can talk to server id now.
func (c *cluster) reachable(client int, id uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	ids, limited := c.reach[client]
	return !limited || slices.Contains(ids, id)
}

// healAll ends every fault: partitions, lost and slow messages, limited
// clients and crashed servers.
func (c *cluster) healAll() {
	c.nw.heal()
	c.nw.setFaults(faults{})
	c.mu.Lock()
	clear(c.reach)
	c.mu.Unlock()
	c.restartAll()
}

// leader returns the running server that leads in the highest term, or
// nil. An old leader cut off by a partition may still think it leads.
func (c *cluster) leader() *server {
	c.mu.Lock()
	defer c.mu.Unlock()
	var best *server
	var term uint64
	for _, s := range c.servers {
		st := s.node.Status()
		if st.Role == raft.RoleLeader && st.Term > term {
			best, term = s, st.Term
		}
	}
	return best
}

// waitLeader lets fake time pass until some server leads.
func (c *cluster) waitLeader(limit time.Duration) *server {
	c.t.Helper()
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(tickInterval) {
		if s := c.leader(); s != nil {
			return s
		}
	}
	c.t.Fatalf("no leader after %v of fake time", limit)
	return nil
}

// waitConverged lets fake time pass until every server has applied the
// same index, at least the leader's commit index, and then checks that
// all stores hold the same data: state machine safety, and no command
// lost or applied twice on some replica.
func (c *cluster) waitConverged(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for ; time.Now().Before(deadline); time.Sleep(tickInterval) {
		lead := c.leader()
		if lead == nil {
			continue
		}
		commit := lead.node.Status().Commit
		states := map[uint64]map[string]string{}
		var applied []uint64
		caughtUp := true
		for _, id := range c.running() {
			s := c.server(id)
			caughtUp = caughtUp && s.node.Status().Applied >= commit
			// The store's own applied index, read with its data: the
			// node may apply more between two separate reads.
			kvApplied, data := s.kv.State()
			applied = append(applied, kvApplied)
			states[id] = data
		}
		if !caughtUp || slices.Min(applied) != slices.Max(applied) {
			continue
		}
		for id, data := range states {
			if !maps.Equal(data, states[c.ids[0]]) {
				return fmt.Errorf("servers %d and %d applied through %d but hold different data:\n%v\n%v",
					c.ids[0], id, applied[0], states[c.ids[0]], data)
			}
		}
		return nil
	}
	return fmt.Errorf("servers did not converge within %v of fake time", limit)
}

// crashes returns how many times servers crashed so far.
func (c *cluster) crashes() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, r := range c.restarts {
		n += r
	}
	return n
}

// snapshots returns how many running servers hold a snapshot.
func (c *cluster) snapshots() int {
	n := 0
	for _, id := range c.running() {
		if s := c.server(id); s != nil && s.node.Status().Snapshot > 0 {
			n++
		}
	}
	return n
}

// callTimeout is how long a client waits for an answer from one server
// before it tries another: a little over two election timeouts, which is
// how long a ReadIndex may wait for its leader.
const callTimeout = 250 * time.Millisecond

// withCallTimeout bounds one call of a client to one server.
func withCallTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, callTimeout)
}

// faultsNow returns the network's current faults, which the clients'
// requests and replies suffer too.
func (c *cluster) faultsNow() faults {
	c.nw.mu.Lock()
	defer c.nw.mu.Unlock()
	return c.nw.faults
}
