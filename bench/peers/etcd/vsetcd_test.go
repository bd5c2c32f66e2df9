package etcd

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/bifrost-go/bifrost/sm"
)

// The VsEtcd workloads: vsCallers goroutines, one call outstanding each,
// over vsKeys keys holding vsValueSize-byte values. The callers share
// vsClients clients of either system, caller g the client g mod
// vsClients: a client is one connection (an sm.Client on an rpc.Pool of
// its own; a clientv3.Client, one gRPC connection), and an application
// process would hold a few and share them, as both clients are safe for
// concurrent use and multiplex calls. Three, so that in the "-all" and
// stale runs each member gets one.
const (
	vsKeys         = 1000
	vsValueSize    = 128
	vsCallers      = 64
	vsClients      = 3
	vsWatchWriters = 64
	vsMembers      = 3
)

// vsRead is how a client's gets read.
type vsRead int

const (
	// readLinearizable: bifrost sm.Linearizable, etcd's default Get.
	readLinearizable vsRead = iota
	// readLease: bifrost sm.Lease; etcd has no counterpart for clients.
	readLease
	// readStale: bifrost sm.Follower, etcd WithSerializable: the member
	// asked answers from its own state.
	readStale
)

// vsClient is one client of a cluster, safe for concurrent use.
type vsClient interface {
	put(ctx context.Context, key, value string) error
	// get reads key and reports whether it holds a value.
	get(ctx context.Context, key string) (bool, error)
}

// vsCluster is a running 3-member cluster of one system.
type vsCluster interface {
	// memberClient returns a new client that prefers member i mod 3,
	// member 0 being the leader, and reads in mode; b's cleanup closes
	// it.
	memberClient(i int, mode vsRead) (vsClient, error)
}

// vsWork is one workload of BenchmarkVsEtcd.
type vsWork struct {
	name    string
	callers int
	get     bool   // gets, else puts
	mode    vsRead // how gets read
	spread  bool   // client i prefers member i, else every client the leader
	etcd    bool   // etcd runs it too
}

// putParallel is the work whose members' memory BenchmarkVsEtcdMemory
// measures.
var putParallel = vsWork{name: "put-parallel64", callers: vsCallers, etcd: true}

var vsWorks = []vsWork{
	{name: "put-serial", callers: 1, etcd: true},
	putParallel,
	{name: "put-parallel64-all", callers: vsCallers, spread: true, etcd: true},
	{name: "get-linearizable-parallel64", callers: vsCallers, get: true, mode: readLinearizable, etcd: true},
	{name: "get-stale-parallel64", callers: vsCallers, get: true, mode: readStale, spread: true, etcd: true},
	{name: "get-lease-parallel64", callers: vsCallers, get: true, mode: readLease},
}

// BenchmarkVsEtcd runs the same work on bifrost and on etcd, each a
// 3-member cluster on loopback with fsync'd storage and quiet logging,
// and reports ops/s (events/s for the watch): puts of 128-byte values
// over 1000 keys from one caller and from 64, to the leader or spread
// over the members; linearizable, stale and (bifrost only) lease gets
// from 64 callers; and events delivered to 100 watchers of one prefix
// while 64 writers put. Sub-benchmarks are <system>-<work>, the two
// systems of a work one after the other, so that their ratio is taken
// within one run. Each run starts a cluster of its own.
func BenchmarkVsEtcd(b *testing.B) {
	for _, w := range vsWorks {
		b.Run("bifrost-"+w.name, func(b *testing.B) { runVs(b, startBifrostVs(b), w) })
		if w.etcd {
			b.Run("etcd-"+w.name, func(b *testing.B) { runVs(b, startEtcdVs(b), w) })
		}
	}
	b.Run("bifrost-watch-100", func(b *testing.B) { runVsWatch(b, startBifrostEvents(b, retainRun(b), true)) })
	b.Run("etcd-watch-100", func(b *testing.B) { runVsWatch(b, startEtcdEvents(b)) })
}

// runVs times b.N calls of w on c, set up by vsSetUp.
func runVs(b *testing.B, c vsCluster, w vsWork) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	clients, err := vsSetUp(ctx, c, w)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	err = vsRun(ctx, clients, w, b.N)
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}

// vsSetUp fills every key through a client of the leader and returns
// w's clients, each warmed up with one call of w's kind, so that
// sessions and connections open before the clock starts. The filling
// client is not one of w's: a bifrost client that once wrote moves to
// the leader, and one that saw an index makes its follower reads wait
// for it.
func vsSetUp(ctx context.Context, c vsCluster, w vsWork) ([]vsClient, error) {
	filler, err := c.memberClient(0, readLinearizable)
	if err != nil {
		return nil, err
	}
	fill := vsWork{name: "fill", callers: vsCallers}
	if err := vsRun(ctx, []vsClient{filler}, fill, vsKeys); err != nil {
		return nil, err
	}
	clients := make([]vsClient, min(w.callers, vsClients))
	for i := range clients {
		member := 0
		if w.spread {
			member = i
		}
		if clients[i], err = c.memberClient(member, w.mode); err != nil {
			return nil, err
		}
		if err := vsOp(ctx, clients[i], w, i); err != nil {
			return nil, fmt.Errorf("warm-up: %w", err)
		}
	}
	return clients, nil
}

// vsRun makes n calls of w's kind from w.callers goroutines, caller g on
// clients[g mod len(clients)], call i on key i mod vsKeys.
func vsRun(ctx context.Context, clients []vsClient, w vsWork, n int) error {
	var next atomic.Int64
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	for g := range w.callers {
		c := clients[g%len(clients)]
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(n) && failed.Load() == nil; i = next.Add(1) - 1 {
				if err := vsOp(ctx, c, w, int(i)); err != nil {
					err = fmt.Errorf("%s, call %d: %w", w.name, i, err)
					failed.CompareAndSwap(nil, &err)
				}
			}
		})
	}
	wg.Wait()
	if p := failed.Load(); p != nil {
		return *p
	}
	return nil
}

// vsValue is every put's value.
var vsValue = strings.Repeat("v", vsValueSize)

// vsOp makes call i of w. A stale get may miss a key its member has not
// applied yet; the other reads follow the filling and must find it.
func vsOp(ctx context.Context, c vsClient, w vsWork, i int) error {
	key := fmt.Sprintf("key%04d", i%vsKeys)
	if !w.get {
		return c.put(ctx, key, vsValue)
	}
	found, err := c.get(ctx, key)
	if err == nil && !found && w.mode != readStale {
		err = fmt.Errorf("get %s: not found", key)
	}
	return err
}

// bifrostVs is a bifrost cluster as seen by its clients: the members'
// rpc addresses, the leader's first.
type bifrostVs struct {
	b       *testing.B
	members []string
}

// startBifrostVs starts a cluster with startBifrostEvents, lease reads
// on: they change nothing but what sm.Lease does and how long the first
// leader waits before it serves.
func startBifrostVs(b *testing.B) *bifrostVs {
	return &bifrostVs{b: b, members: startBifrostEvents(b, sm.HostConfig{}, true).addrs}
}

func (c *bifrostVs) memberClient(i int, mode vsRead) (vsClient, error) {
	servers := make([]string, len(c.members))
	for j := range servers {
		servers[j] = c.members[(i+j)%len(c.members)]
	}
	cl, err := bifrostClient(c.b, servers)
	if err != nil {
		return nil, err
	}
	return bifrostVsClient{cl, bifrostModes[mode]}, nil
}

var bifrostModes = map[vsRead]sm.ReadMode{readLinearizable: sm.Linearizable, readLease: sm.Lease, readStale: sm.Follower}

// bifrostVsClient puts and gets on the events map.
type bifrostVsClient struct {
	c    *sm.Client
	mode sm.ReadMode
}

func (c bifrostVsClient) put(ctx context.Context, key, value string) error {
	_, _, err := eventsMap.Insert(ctx, c.c, key, value)
	return err
}

func (c bifrostVsClient) get(ctx context.Context, key string) (bool, error) {
	_, found, err := eventsMap.GetAs(ctx, c.c, c.mode, key)
	return found, err
}

// etcdVs is an etcd cluster as seen by its clients: the members' client
// URLs, the leader's first.
type etcdVs struct {
	b       *testing.B
	members []string
}

// startEtcdVs starts a cluster with startEtcdEvents and asks its members
// which of them leads.
func startEtcdVs(b *testing.B) *etcdVs {
	e := startEtcdEvents(b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	members, err := etcdLeaderFirst(ctx, e.writer, e.endpoints)
	if err != nil {
		b.Fatal(err)
	}
	return &etcdVs{b: b, members: members}
}

// etcdLeaderFirst returns endpoints, the leader's first, as each
// member's status says.
func etcdLeaderFirst(ctx context.Context, c *clientv3.Client, endpoints []string) ([]string, error) {
	var lead string
	var rest []string
	for _, ep := range endpoints {
		st, err := c.Status(ctx, ep)
		if err != nil {
			return nil, err
		}
		if st.Leader == st.Header.MemberId {
			lead = ep
		} else {
			rest = append(rest, ep)
		}
	}
	if lead == "" {
		return nil, errors.New("etcd: no member says it leads")
	}
	return append([]string{lead}, rest...), nil
}

func (c *etcdVs) memberClient(i int, mode vsRead) (vsClient, error) {
	cl, err := etcdClient(c.b, c.members[i%len(c.members)])
	if err != nil {
		return nil, err
	}
	vc := etcdVsClient{c: cl}
	switch mode {
	case readStale:
		vc.opts = []clientv3.OpOption{clientv3.WithSerializable()}
	case readLease:
		return nil, errors.New("etcd: no lease reads")
	}
	return vc, nil
}

// etcdVsClient puts and gets under etcdPrefix.
type etcdVsClient struct {
	c    *clientv3.Client
	opts []clientv3.OpOption // of every get
}

func (c etcdVsClient) put(ctx context.Context, key, value string) error {
	_, err := c.c.Put(ctx, etcdPrefix+key, value)
	return err
}

func (c etcdVsClient) get(ctx context.Context, key string) (bool, error) {
	resp, err := c.c.Get(ctx, etcdPrefix+key, c.opts...)
	if err != nil {
		return false, err
	}
	return len(resp.Kvs) > 0, nil
}

// runVsWatch is runEvents with vsWatchWriters writers, its puts
// reported as ops/s too.
func runVsWatch(b *testing.B, c eventsCluster) {
	runEvents(b, c, vsWatchWriters)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}
