package bench

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bifrost-go/bifrost"
	"github.com/bifrost-go/bifrost/raft/node"
	"github.com/bifrost-go/bifrost/rpc"
	"github.com/bifrost-go/bifrost/sm"
)

// benchMap is the map machine the subscription benchmarks write to.
var benchMap = sm.NewMap[string, string]("m")

// onInserted is benchMap's on_inserted subscription.
var onInserted = benchMap.Inserted()

// insertStream is an open on_inserted subscription.
type insertStream = sm.Stream[sm.Pair[string, string]]

// Shape of the events workload, shared by the events and stall
// benchmarks and mirrored by bench/peers' BenchmarkEvents.
const (
	eventSubscribers = 100
	eventWriters     = 16
)

// runHostConfig is the hosts' config for a run of b.N inserts: a window
// that holds the whole run, so that subscribers that fall behind the
// writers catch up, as etcd's watchers do from its uncompacted history,
// rather than resync, and so that it never fills (once full, every
// event recorded moves the whole window).
func runHostConfig(b *testing.B) sm.HostConfig {
	return sm.HostConfig{RetainEvents: max(sm.DefaultRetainEvents, b.N+1024)}
}

// mapGroup is a 3-member group of bifrost Nodes on fsync'd WALs
// carrying benchMap in group "m".
type mapGroup struct {
	nodes []*bifrost.Node // the leader first
	lead  *node.Node
	addrs []string // the nodes' rpc addresses, the leader's first
}

// startMapGroup starts a group whose hosts have cfg.
func startMapGroup(b *testing.B, cfg sm.HostConfig) *mapGroup {
	return startMapGroupWith(b, func(c *bifrost.Config) { c.Host = cfg })
}

// startMapGroupWith starts a map group with each node's config passed
// through change first.
func startMapGroupWith(b *testing.B, change func(*bifrost.Config)) *mapGroup {
	nodes := startNodes(b, func(cfg *bifrost.Config) {
		cfg.Group, cfg.Machines = "m", []*sm.Machine{benchMap.Machine()}
		change(cfg)
	})
	return &mapGroup{nodes: nodes, lead: nodes[0].Raft(), addrs: addrsOf(nodes)}
}

// newMapClient returns a client of the group at addrs on a pool of its
// own, as a separate process would have; the caller closes it with
// closeClients.
func newMapClient(addrs []string) (*sm.Client, *rpc.Pool, error) {
	pool, err := rpc.NewPool(rpc.ClientConfig{})
	if err != nil {
		return nil, nil, err
	}
	c, err := sm.NewClient(sm.ClientConfig{Group: "m", Servers: addrs, Pool: pool})
	if err != nil {
		pool.Close()
		return nil, nil, err
	}
	return c, pool, nil
}

// clients opens n clients of g, each on its own pool, closed (sessions
// and all) when b's run ends.
func (g *mapGroup) clients(b *testing.B, n int) []*sm.Client {
	cs := make([]*sm.Client, n)
	pools := make([]*rpc.Pool, n)
	b.Cleanup(func() { closeClients(cs, pools) })
	for i := range cs {
		var err error
		if cs[i], pools[i], err = newMapClient(g.addrs); err != nil {
			b.Fatal(err)
		}
	}
	return cs
}

// closeClients closes the clients that were opened, in parallel.
func closeClients(cs []*sm.Client, pools []*rpc.Pool) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for i, c := range cs {
		if c != nil {
			wg.Go(func() {
				c.Close(ctx)
				pools[i].Close()
			})
		}
	}
	wg.Wait()
}

// openStreams opens n on_inserted streams, stream i on client
// i%len(cs), concurrently, each registered on the group when it returns.
func openStreams(ctx context.Context, cs []*sm.Client, n int) ([]*insertStream, error) {
	sts := make([]*insertStream, n)
	errs := make([]error, n)
	sem := make(chan struct{}, 64) // registrations in flight
	var wg sync.WaitGroup
	for i := range sts {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			sts[i], errs[i] = onInserted.Open(ctx, cs[i%len(cs)], struct{}{})
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return sts, nil
}

// writerKey is the key writer w sets: each writer's values of one key
// arrive in the order it wrote them.
func writerKey(w int) string { return fmt.Sprintf("k%04d", w) }

// eventValue is writer w's seq-th value, valueSize bytes, which the
// subscribers parse back to check the order.
func eventValue(w, seq, valueSize int) string {
	s := fmt.Sprintf("%04d:%012d:", w, seq)
	return s + strings.Repeat("x", max(0, valueSize-len(s)))
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

// insertChecker follows one subscriber: ids must increase and every
// writer's values must arrive in the order written, none missing.
type insertChecker struct {
	next []int // per writer, the seq expected next
	last sm.EventID
	got  int
}

func newInsertChecker(writers int) *insertChecker { return &insertChecker{next: make([]int, writers)} }

func (c *insertChecker) see(ev sm.Event[sm.Pair[string, string]]) error {
	if ev.ID.Compare(c.last) <= 0 {
		return fmt.Errorf("event %v after %v", ev.ID, c.last)
	}
	c.last = ev.ID
	w, seq, err := parseEventValue(ev.Value.V)
	if err != nil {
		return err
	}
	if w < 0 || w >= len(c.next) || ev.Value.K != writerKey(w) {
		return fmt.Errorf("event %v: key %q with a value of writer %d", ev.ID, ev.Value.K, w)
	}
	if seq != c.next[w] {
		return fmt.Errorf("writer %d: event %v has seq %d, want %d", w, ev.ID, seq, c.next[w])
	}
	c.next[w]++
	c.got++
	return nil
}

// checkStreams reads n events from each stream, each in a goroutine of
// its own, checking them; the first failure cancels ctx through cancel.
// The returned wait blocks until every stream got its n, or one failed.
func checkStreams(ctx context.Context, cancel context.CancelFunc, sts []*insertStream, n, writers int) (wait func() error) {
	var wg sync.WaitGroup
	var failed atomic.Pointer[error]
	for i, st := range sts {
		wg.Go(func() {
			c := newInsertChecker(writers)
			for c.got < n {
				ev, err := st.Next(ctx)
				if err == nil {
					err = c.see(ev)
				}
				if err != nil {
					err = fmt.Errorf("subscriber %d after %d events: %w", i, c.got, err)
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

// insertN inserts n values, taken in turn by writers goroutines that each
// set their own key to values numbered from 0, and calls took, if not
// nil, with each insert's latency from its writer's goroutine.
func insertN(ctx context.Context, c *sm.Client, writers, n, valueSize int, took func(w int, d time.Duration)) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Pointer[error]
	for w := range writers {
		wg.Go(func() {
			for seq := 0; next.Add(1) <= int64(n); seq++ {
				start := time.Now()
				_, _, err := benchMap.Insert(ctx, c, writerKey(w), eventValue(w, seq, valueSize))
				if err != nil {
					err = fmt.Errorf("writer %d, insert %d: %w", w, seq, err)
					failed.CompareAndSwap(nil, &err)
					return
				}
				if took != nil {
					took(w, time.Since(start))
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

// BenchmarkSMEvents measures events delivered to 100 subscribers of one
// Map's on_inserted subscription while 16 writers insert 128-byte values,
// on a 3-member loopback group with fsync'd WALs: each subscriber on a
// client of its own, as 100 processes would be, or the 100 streams on
// one client (one long poll). events/s counts deliveries at the
// subscribers, each checked in order with none missing; the clock stops
// when the last subscriber got the last insert. Every run starts a group
// of its own.
func BenchmarkSMEvents(b *testing.B) {
	for _, clients := range []int{eventSubscribers, 1} {
		b.Run(fmt.Sprintf("subscribers=%d/clients=%d", eventSubscribers, clients), func(b *testing.B) {
			benchEvents(b, clients)
		})
	}
}

// benchEvents runs the workload on a group of its own, so that no run
// inherits another's log, window or garbage.
func benchEvents(b *testing.B, clients int) {
	g := startMapGroup(b, runHostConfig(b))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	writer := g.clients(b, 1)[0]
	if _, _, err := benchMap.Insert(ctx, writer, "warm-up", ""); err != nil {
		b.Fatal(err)
	}
	sts, err := openStreams(ctx, g.clients(b, clients), eventSubscribers)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	wait := checkStreams(ctx, cancel, sts, b.N, eventWriters)
	if err := insertN(ctx, writer, eventWriters, b.N, payloadSize, nil); err != nil {
		cancel()
		b.Fatal(err)
	}
	if err := wait(); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)*eventSubscribers/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "inserts/s")
}
