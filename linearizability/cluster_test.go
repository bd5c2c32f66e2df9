package linearizability

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/bifrost-go/bifrost/raft"
	"github.com/bifrost-go/bifrost/raft/node"
	"github.com/bifrost-go/bifrost/rpc"
	"github.com/bifrost-go/bifrost/sm"
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

// group is the name of the cluster's raft group, for sm.
const group = "objects"

// serverAddr is the rpc address of server id on the client links.
func serverAddr(id uint64) string { return fmt.Sprintf("server-%d", id) }

// server is one incarnation of a cluster member: a raft node whose state
// machine is an sm.Host carrying the objects under test, served to clients by an
// rpc.Server on the links.
type server struct {
	id     uint64
	node   *node.Node
	host   *sm.Host
	rpc    *rpc.Server
	served chan error // what rpc.Server.Serve returned
}

// cluster runs raft/node servers hosting the built-in machines on sm, with raft
// messages on an in-memory network and clients on in-memory rpc links,
// inside a synctest bubble. Crashed servers restart from the
// node.MemoryStorage they had, with a fresh host that the log (and
// snapshot) rebuilds.
type cluster struct {
	t     *testing.T
	cfg   clusterConfig
	nw    *network
	links *links
	ids   []uint64
	addrs []string          // the servers' rpc addresses, in id order
	idOf  map[string]uint64 // and back

	mu       sync.Mutex // protects the following
	servers  map[uint64]*server
	storage  map[uint64]*node.MemoryStorage
	restarts map[uint64]int   // crashes of each server, which number its incarnations
	reach    map[int][]uint64 // servers each client can reach; absent: all
}

func newCluster(t *testing.T, cfg clusterConfig) *cluster {
	c := &cluster{t: t, cfg: cfg, nw: newNetwork(cfg.seed, cfg.faults), idOf: map[string]uint64{},
		servers: map[uint64]*server{}, storage: map[uint64]*node.MemoryStorage{},
		restarts: map[uint64]int{}, reach: map[int][]uint64{}}
	c.links = newLinks(c, cfg.seed)
	for id := uint64(1); id <= uint64(cfg.servers); id++ {
		c.ids = append(c.ids, id)
		c.addrs = append(c.addrs, serverAddr(id))
		c.idOf[serverAddr(id)] = id
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
	ln := newMemListener(serverAddr(id))
	c.launch(id, ln)
	c.links.up(id, ln) // after c.mu: the links lock first
}

// launch starts server id on ln.
func (c *cluster) launch(id uint64, ln *memListener) {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	host, err := newHost(sm.HostConfig{})
	if err != nil {
		c.t.Fatalf("server %d: %v", id, err)
	}
	cfg := node.Config{
		Raft: raft.Config{ID: id, Voters: c.ids, ElectionTicks: electionTicks,
			// Election timeouts follow the seed, and differ per incarnation.
			Seed:       c.cfg.seed*1000003 + id*101 + uint64(c.restarts[id]) + 1,
			LeaseReads: c.cfg.leaseReads,
		},
		Storage: c.storage[id], Transport: c.nw.endpoint(id), StateMachine: host,
		TickInterval: tickInterval,
	}
	if c.cfg.snapshotEntries > 0 {
		cfg.SnapshotEntries = c.cfg.snapshotEntries
		cfg.Raft.SnapshotCatchUpEntries = -1 // a follower that lags at all needs the snapshot
	}
	s := &server{id: id, host: host, served: make(chan error, 1)}
	if s.node, err = node.Start(cfg); err != nil {
		c.t.Fatalf("start server %d: %v", id, err)
	}
	if s.rpc, err = rpc.NewServer(rpc.Config{}); err != nil {
		c.t.Fatalf("server %d: %v", id, err)
	}
	if _, err := sm.Serve(s.rpc, group, host, s.node); err != nil {
		c.t.Fatalf("server %d: %v", id, err)
	}
	go func() { s.served <- s.rpc.Serve(ln) }()
	c.servers[id] = s
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
	c.links.down(id)
	c.nw.disconnect(id)
	s.rpc.Close() // cancels the handlers waiting on the node
	if err := <-s.served; !errors.Is(err, rpc.ErrServerClosed) {
		c.t.Errorf("server %d: rpc Serve returned %v", id, err)
	}
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

// limitClient lets client reach only the given servers; nil: all. Its
// connections to the others are cut.
func (c *cluster) limitClient(client int, ids []uint64) {
	c.mu.Lock()
	if ids == nil {
		delete(c.reach, client)
	} else {
		c.reach[client] = slices.Clone(ids)
	}
	c.mu.Unlock()
	c.links.cutOff(client)
}

// serversFrom returns the servers' addresses starting with client's own
// first choice, so that the clients start out spread over the servers.
func (c *cluster) serversFrom(client int) []string {
	i := client % len(c.addrs)
	return append(slices.Clone(c.addrs[i:]), c.addrs[:i]...)
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
// all hosts hold the same state, byte for byte: the data, and the client
// sessions that make commands exactly-once. That is state machine safety,
// and no command lost or applied twice on some replica.
func (c *cluster) waitConverged(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for ; time.Now().Before(deadline); time.Sleep(tickInterval) {
		lead := c.leader()
		if lead == nil {
			continue
		}
		states, applied, ok := c.hostStates(lead.node.Status().Commit)
		if !ok {
			continue
		}
		first := c.running()[0]
		for id, st := range states {
			if !bytes.Equal(st, states[first]) {
				return fmt.Errorf("servers %d and %d applied through %d but hold different states:\n%x\n%x",
					first, id, applied, states[first], st)
			}
		}
		return nil
	}
	return fmt.Errorf("servers did not converge within %v of fake time", limit)
}

// hostStates returns the snapshot of every running host and the index
// they are at, if all have applied the same index, at least commit.
func (c *cluster) hostStates(commit uint64) (states map[uint64][]byte, applied uint64, ok bool) {
	states = map[uint64][]byte{}
	var at []uint64
	for _, id := range c.running() {
		s := c.server(id)
		before := s.host.Applied()
		snap, err := s.host.Snapshot()
		if err != nil {
			c.t.Errorf("snapshot of server %d: %v", id, err)
			return nil, 0, false
		}
		if s.host.Applied() != before {
			return nil, 0, false // applied more while it encoded
		}
		states[id], at = snap, append(at, before)
	}
	if len(at) == 0 || slices.Min(at) != slices.Max(at) || at[0] < commit {
		return nil, 0, false
	}
	return states, at[0], true
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

// faultsNow returns the network's current faults, which the clients'
// requests and replies suffer too.
func (c *cluster) faultsNow() faults {
	c.nw.mu.Lock()
	defer c.nw.mu.Unlock()
	return c.nw.faults
}

// memberIDs returns the ids of the servers.
func (c *cluster) memberIDs() []uint64 { return slices.Clone(c.ids) }

// leaderTransfer returns the leader's TransferLeadership, or nil while no
// server leads.
func (c *cluster) leaderTransfer() func(context.Context, uint64) error {
	if lead := c.leader(); lead != nil {
		return lead.node.TransferLeadership
	}
	return nil
}
