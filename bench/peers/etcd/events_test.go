package etcd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"

	"github.com/bifrost-go/bifrost"
	"github.com/bifrost-go/bifrost/raft"
	"github.com/bifrost-go/bifrost/raft/node"
	"github.com/bifrost-go/bifrost/rpc"
	"github.com/bifrost-go/bifrost/sm"
)

// The events workload: eventWatchers watchers, each on a client of its
// own, of every key of one map (bifrost: an sm.Map's on_inserted; etcd:
// a watch on one prefix), while eventWriters goroutines sharing one
// client set their own key to eventValueSize-byte values.
const (
	eventWatchers  = 100
	eventWriters   = 16
	eventValueSize = 128
	etcdPrefix     = "/m/"
)

// eventsCluster is one system under BenchmarkEvents, started for one run
// and stopped by b's cleanup.
type eventsCluster interface {
	// put sets key, one writer's own, to value and returns once it is
	// committed. Safe for concurrent use.
	put(ctx context.Context, key, value string) error
	// watch opens a watcher of every key, on a client of its own, and
	// returns once it is registered: it sees every put that starts
	// after.
	watch(ctx context.Context) (eventsWatcher, error)
}

// eventsWatcher yields a watcher's events one by one: the key, the
// value and the event's place in the system's order, which increases.
type eventsWatcher interface {
	next(ctx context.Context) (key, value string, order uint64, err error)
}

// BenchmarkEvents measures events/s delivered to 100 watchers, each on
// a client of its own, of every key of a map on a 3-member cluster on
// loopback with fsync'd storage, while 16 writers on one client put
// 128-byte values: etcd (embedded v3.7.3, a prefix watch per watcher)
// and bifrost (an sm.Map's on_inserted subscription per watcher). Every
// event is checked at its watcher: in order, none missing. The clock
// stops when the last watcher got the last put. Each run starts a
// cluster of its own.
func BenchmarkEvents(b *testing.B) {
	for _, sys := range []struct {
		name  string
		start func(*testing.B) eventsCluster
	}{
		{"etcd", func(b *testing.B) eventsCluster { return startEtcdEvents(b) }},
		{"bifrost", func(b *testing.B) eventsCluster { return startBifrostEvents(b, retainRun(b), false) }},
	} {
		b.Run(sys.name, func(b *testing.B) { runEvents(b, sys.start(b), eventWriters) })
	}
}

// runEvents registers eventWatchers watchers, starts the clock, has
// writers writers make b.N puts and stops it once every watcher got
// every put, each checked in order.
func runEvents(b *testing.B, c eventsCluster, writers int) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := c.put(ctx, "warm-up", ""); err != nil {
		b.Fatalf("warm-up put: %v", err)
	}
	ws, err := openWatchers(ctx, c, eventWatchers)
	if err != nil {
		b.Fatalf("watch: %v", err)
	}
	b.ResetTimer()
	wait := checkWatchers(ctx, cancel, ws, writers, b.N)
	perr := putN(ctx, c, writers, b.N)
	if perr != nil {
		cancel()
	}
	// A watcher's failure cancels the puts: its error comes first.
	if err := errors.Join(wait(), perr); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)*eventWatchers/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "puts/s")
}

// openWatchers opens n watchers at once and returns once each is
// registered.
func openWatchers(ctx context.Context, c eventsCluster, n int) ([]eventsWatcher, error) {
	ws := make([]eventsWatcher, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range ws {
		wg.Go(func() { ws[i], errs[i] = c.watch(ctx) })
	}
	wg.Wait()
	return ws, errors.Join(errs...)
}

// putN puts n values, taken in turn by writers writers, each setting its
// own key to values numbered from 0.
func putN(ctx context.Context, c eventsCluster, writers, n int) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Pointer[error]
	for w := range writers {
		wg.Go(func() {
			for seq := 0; next.Add(1) <= int64(n); seq++ {
				if err := c.put(ctx, writerKey(w), eventValue(w, seq)); err != nil {
					err = fmt.Errorf("writer %d, put %d: %w", w, seq, err)
					failed.CompareAndSwap(nil, &err)
					return
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

// checkWatchers reads n events, put by writers writers, from each
// watcher in a goroutine of its own, checking them; the first failure
// cancels ctx through cancel. The returned wait blocks until every
// watcher got its n, or one failed.
func checkWatchers(ctx context.Context, cancel context.CancelFunc, ws []eventsWatcher, writers, n int) (wait func() error) {
	var wg sync.WaitGroup
	var failed atomic.Pointer[error]
	for i, w := range ws {
		wg.Go(func() {
			c := &eventChecker{next: make([]int, writers)}
			for c.got < n {
				k, v, order, err := w.next(ctx)
				if err == nil {
					err = c.see(k, v, order)
				}
				if err != nil {
					err = fmt.Errorf("watcher %d after %d events: %w", i, c.got, err)
					failed.CompareAndSwap(nil, &err)
					cancel()
					return
				}
			}
		})
	}
	return func() error {
		wg.Wait()
		if p := failed.Load(); p != nil {
			return *p
		}
		return nil
	}
}

// eventChecker follows one watcher: the order must increase and every
// writer's values must arrive in the order written, none missing.
type eventChecker struct {
	next []int // per writer, the seq expected next
	last uint64
	got  int
}

func (c *eventChecker) see(key, value string, order uint64) error {
	if order <= c.last {
		return fmt.Errorf("event %d after %d", order, c.last)
	}
	c.last = order
	w, seq, err := parseEventValue(value)
	if err != nil {
		return err
	}
	if w < 0 || w >= len(c.next) || key != writerKey(w) {
		return fmt.Errorf("event %d: key %q with a value of writer %d", order, key, w)
	}
	if seq != c.next[w] {
		return fmt.Errorf("writer %d: event %d has seq %d, want %d", w, order, seq, c.next[w])
	}
	c.next[w]++
	c.got++
	return nil
}

func writerKey(w int) string { return fmt.Sprintf("k%04d", w) }

// eventValue is writer w's seq-th value, which watchers parse back.
func eventValue(w, seq int) string {
	s := fmt.Sprintf("%04d:%012d:", w, seq)
	return s + strings.Repeat("x", max(0, eventValueSize-len(s)))
}

func parseEventValue(v string) (w, seq int, err error) {
	f := strings.SplitN(v, ":", 3)
	if len(f) != 3 {
		return 0, 0, fmt.Errorf("bad value %.40q", v)
	}
	if w, err = strconv.Atoi(f[0]); err != nil {
		return 0, 0, err
	}
	seq, err = strconv.Atoi(f[1])
	return w, seq, err
}

// etcdEvents is a 3-member embedded etcd cluster on loopback, its data
// in b.TempDir() (fsync on, etcd's defaults otherwise).
type etcdEvents struct {
	b         *testing.B
	endpoints []string
	writer    *clientv3.Client
}

func startEtcdEvents(b *testing.B) *etcdEvents {
	const members = 3
	ports := freePorts(b, 2*members)
	dir := b.TempDir()
	cfgs := make([]*embed.Config, members)
	e := &etcdEvents{b: b}
	for i := range cfgs {
		cfgs[i] = etcdConfig(i, ports, filepath.Join(dir, strconv.Itoa(i)))
		e.endpoints = append(e.endpoints, cfgs[i].AdvertiseClientUrls[0].String())
	}
	// Members start together: each waits for a quorum to be ready.
	servers := make([]*embed.Etcd, members)
	errs := make([]error, members)
	var wg sync.WaitGroup
	for i, cfg := range cfgs {
		wg.Go(func() { servers[i], errs[i] = embed.StartEtcd(cfg) })
	}
	wg.Wait()
	b.Cleanup(func() {
		for _, s := range servers {
			if s != nil {
				s.Close()
			}
		}
	})
	for _, err := range errs {
		if err != nil {
			b.Fatalf("start etcd: %v", err)
		}
	}
	for _, s := range servers {
		select {
		case <-s.Server.ReadyNotify():
		case err := <-s.Err():
			b.Fatalf("etcd: %v", err)
		case <-time.After(time.Minute):
			b.Fatal("etcd not ready after a minute")
		}
	}
	var err error
	if e.writer, err = e.client(); err != nil {
		b.Fatal(err)
	}
	return e
}

// etcdConfig is the config of member i of a cluster of len(ports)/2 on
// loopback: member j's peer port is ports[2j], its client port
// ports[2j+1]. Its data is in dir, fsync on; it logs nothing.
func etcdConfig(i int, ports []int, dir string) *embed.Config {
	var cluster []string
	for j := range len(ports) / 2 {
		peer := etcdURL(ports[2*j])
		cluster = append(cluster, fmt.Sprintf("e%d=%s", j, peer.String()))
	}
	cfg := embed.NewConfig()
	cfg.Name = fmt.Sprintf("e%d", i)
	cfg.Dir = dir
	peer, client := []url.URL{etcdURL(ports[2*i])}, []url.URL{etcdURL(ports[2*i+1])}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = peer, peer
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = client, client
	cfg.InitialCluster = strings.Join(cluster, ",")
	cfg.InitialClusterToken = "bench"
	cfg.ClusterState = embed.ClusterStateFlagNew
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	return cfg
}

func etcdURL(port int) url.URL {
	return url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", port)}
}

// client returns a client of every member, closed by b's cleanup.
func (e *etcdEvents) client() (*clientv3.Client, error) { return etcdClient(e.b, e.endpoints...) }

// etcdClient returns a client of endpoints, closed by b's cleanup.
func etcdClient(b *testing.B, endpoints ...string) (*clientv3.Client, error) {
	c, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 10 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return nil, err
	}
	b.Cleanup(func() { c.Close() })
	return c, nil
}

func (e *etcdEvents) put(ctx context.Context, key, value string) error {
	_, err := e.writer.Put(ctx, etcdPrefix+key, value)
	return err
}

func (e *etcdEvents) watch(ctx context.Context) (eventsWatcher, error) {
	c, err := e.client()
	if err != nil {
		return nil, err
	}
	w := &etcdWatcher{ch: c.Watch(ctx, etcdPrefix, clientv3.WithPrefix(), clientv3.WithCreatedNotify())}
	select {
	case resp, ok := <-w.ch:
		if !ok || !resp.Created {
			return nil, fmt.Errorf("watch not created: %v", resp.Err())
		}
		return w, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// etcdWatcher is one watch, its events taken one by one.
type etcdWatcher struct {
	ch     clientv3.WatchChan
	queued []*clientv3.Event
}

func (w *etcdWatcher) next(ctx context.Context) (string, string, uint64, error) {
	for len(w.queued) == 0 {
		select {
		case resp, ok := <-w.ch:
			if !ok {
				return "", "", 0, fmt.Errorf("watch closed")
			}
			if err := resp.Err(); err != nil {
				return "", "", 0, err
			}
			w.queued = resp.Events
		case <-ctx.Done():
			return "", "", 0, ctx.Err()
		}
	}
	ev := w.queued[0]
	w.queued = w.queued[1:]
	if ev.Type != clientv3.EventTypePut {
		return "", "", 0, fmt.Errorf("event of type %v", ev.Type)
	}
	key := strings.TrimPrefix(string(ev.Kv.Key), etcdPrefix)
	return key, string(ev.Kv.Value), uint64(ev.Kv.ModRevision), nil
}

// freePorts returns n loopback ports that were free a moment ago: etcd
// takes URLs, not listeners.
func freePorts(b *testing.B, n int) []int {
	var ports []int
	var lns []net.Listener
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		ln.Close()
	}
	return ports
}

// eventsMap is the bifrost side's map machine.
var eventsMap = sm.NewMap[string, string]("m")

// eventsInserted is eventsMap's on_inserted subscription.
var eventsInserted = eventsMap.Inserted()

// bifrostEvents is a 3-member bifrost cluster on loopback: bifrost.Nodes
// on WALs in b.TempDir() (fsync on, default config but for the hosts'
// and lease reads) carrying eventsMap.
type bifrostEvents struct {
	b      *testing.B
	addrs  []string // the leader's first
	writer *sm.Client
}

// retainRun is a host config whose event window holds the whole run, so
// that watchers that fall behind catch up, as etcd's do from its
// uncompacted history.
func retainRun(b *testing.B) sm.HostConfig {
	return sm.HostConfig{RetainEvents: max(sm.DefaultRetainEvents, b.N+1024)}
}

// startBifrostEvents starts the cluster, its members' hosts configured
// by host and raft's lease reads on if leaseReads, and returns once its
// leader serves.
func startBifrostEvents(b *testing.B, host sm.HostConfig, leaseReads bool) *bifrostEvents {
	peers, lns := map[uint64]string{}, map[uint64]net.Listener{}
	for id := uint64(1); id <= 3; id++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		peers[id], lns[id] = ln.Addr().String(), ln
	}
	nodes := map[uint64]*bifrost.Node{}
	b.Cleanup(func() {
		for _, n := range nodes {
			n.Close()
		}
	})
	for id := uint64(1); id <= 3; id++ {
		cfg := bifrostConfig(id, peers, filepath.Join(b.TempDir(), "n"), host, leaseReads)
		cfg.Listener = lns[id]
		n, err := bifrost.Start(context.Background(), cfg)
		if err != nil {
			b.Fatalf("start node %d: %v", id, err)
		}
		nodes[id] = n
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	lead, err := bifrostLeader(ctx, nodes[1])
	if err != nil {
		b.Fatal(err)
	}
	if err := bifrostTakeOffice(ctx, nodes[lead]); err != nil {
		b.Fatal(err)
	}
	e := &bifrostEvents{b: b, addrs: leaderFirst(peers, lead)}
	if e.writer, err = e.client(); err != nil {
		b.Fatal(err)
	}
	return e
}

// bifrostConfig is member id's config: eventsMap, the WAL in dir, host,
// lease reads if leaseReads, the rest bifrost's defaults. The caller
// sets Listen or Listener.
func bifrostConfig(id uint64, peers map[uint64]string, dir string, host sm.HostConfig, leaseReads bool) bifrost.Config {
	return bifrost.Config{ID: id, Peers: peers, Dir: dir, Group: "m", Host: host,
		Machines: []*sm.Machine{eventsMap.Machine()}, Raft: raft.Config{LeaseReads: leaseReads}}
}

// bifrostLeader waits until n knows a leader and returns its id.
func bifrostLeader(ctx context.Context, n *bifrost.Node) (uint64, error) {
	if err := n.Raft().WaitFor(ctx, func(st node.Status) bool { return st.Lead != 0 }); err != nil {
		return 0, fmt.Errorf("no leader: %w", err)
	}
	return n.Raft().Status().Lead, nil
}

// bifrostTakeOffice waits until the leader n serves as one.
func bifrostTakeOffice(ctx context.Context, n *bifrost.Node) error {
	if err := n.Raft().WaitFor(ctx, func(st node.Status) bool { return st.Role == raft.RoleLeader }); err != nil {
		return fmt.Errorf("leader did not take office: %w", err)
	}
	return nil
}

// leaderFirst returns the addresses of peers, by id, the leader's first.
func leaderFirst(peers map[uint64]string, lead uint64) []string {
	addrs := []string{peers[lead]}
	for id := uint64(1); id <= uint64(len(peers)); id++ {
		if id != lead {
			addrs = append(addrs, peers[id])
		}
	}
	return addrs
}

// client returns a client of the group, closed by b's cleanup.
func (e *bifrostEvents) client() (*sm.Client, error) { return bifrostClient(e.b, e.addrs) }

// bifrostClient returns a client of servers, on a pool of its own, that
// tries them in order; b's cleanup closes it, session and all.
func bifrostClient(b *testing.B, servers []string) (*sm.Client, error) {
	pool, err := rpc.NewPool(rpc.ClientConfig{})
	if err != nil {
		return nil, err
	}
	c, err := sm.NewClient(sm.ClientConfig{Group: "m", Servers: servers, Pool: pool})
	if err != nil {
		pool.Close()
		return nil, err
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c.Close(ctx)
		pool.Close()
	})
	return c, nil
}

func (e *bifrostEvents) put(ctx context.Context, key, value string) error {
	_, _, err := eventsMap.Insert(ctx, e.writer, key, value)
	return err
}

func (e *bifrostEvents) watch(ctx context.Context) (eventsWatcher, error) {
	c, err := e.client()
	if err != nil {
		return nil, err
	}
	st, err := eventsInserted.Open(ctx, c, struct{}{})
	if err != nil {
		return nil, err
	}
	return bifrostWatcher{st}, nil
}

// bifrostWatcher is one on_inserted stream; an event's order is its
// command's index, as each insert notifies it once.
type bifrostWatcher struct {
	st *sm.Stream[sm.Pair[string, string]]
}

func (w bifrostWatcher) next(ctx context.Context) (string, string, uint64, error) {
	ev, err := w.st.Next(ctx)
	if err != nil {
		return "", "", 0, err
	}
	if ev.ID.Sub != 0 {
		return "", "", 0, fmt.Errorf("event %v: a second on_inserted event of one command", ev.ID)
	}
	return ev.Value.K, ev.Value.V, ev.ID.Index, nil
}
