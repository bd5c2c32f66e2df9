package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bifrost-go/bifrost"
	"github.com/bifrost-go/bifrost/raft"
	"github.com/bifrost-go/bifrost/raft/node"
	"github.com/bifrost-go/bifrost/sm"
)

// subscriberEnv hands TestSMSubscriberChild its work: the group's
// addresses (comma-separated, the leader's first), the number of
// subscriptions and the number of clients, separated by semicolons.
const subscriberEnv = "BIFROST_BENCH_SUBSCRIBER"

// BenchmarkSMSubscriptionMemory reports what idle subscriptions cost the
// group's heap. The subscribers run in a child process (the test binary
// again, as TestSMSubscriberChild), so that the heap measured, this
// process's live heap after a GC, holds the three members and none of
// the clients. The child opens the subscriptions, on_inserted streams,
// stream i on client i mod clients, each client on a pool of its own
// talking to the leader, and says so; the heap is measured then
// (B/sub: all three members), and again once the child was killed and
// its connections closed, which leaves the registrations and sessions,
// the replicated part (repl-B/sub: on each member, a third of it). The
// leader's own cost is estimated as one replica's part plus what went
// away with the connections: the connections, the long polls and what
// the listening costs (leader-B/sub). Goroutine stacks are not heap:
// stack-B/sub reports them apart. Before the child is killed, one insert
// must reach every stream, so that what is measured is N live
// subscriptions. Snapshots every 100 entries, with
// no entries kept behind, keep the raft log in memory, which is not the
// subscriptions' cost, below 100 entries.
//
// Run it once per shape: go test -run '^$' -bench SMSubscriptionMemory -benchtime 1x ./bench
func BenchmarkSMSubscriptionMemory(b *testing.B) {
	for _, s := range []struct{ subs, clients int }{{10000, 100}, {1000, 1000}} {
		b.Run(fmt.Sprintf("subs=%d/clients=%d", s.subs, s.clients), func(b *testing.B) {
			benchSubscriptionMemory(b, s.subs, s.clients)
		})
	}
}

// heapSample is what the parent measures at one moment.
type heapSample struct {
	heap       uint64 // live heap after a GC, bytes
	stacks     uint64 // goroutine stacks, bytes
	goroutines int
}

func sampleHeap() heapSample {
	runtime.GC()
	runtime.GC() // the first may leave finalizers' garbage behind
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return heapSample{heap: ms.HeapAlloc, stacks: ms.StackInuse, goroutines: runtime.NumGoroutine()}
}

func benchSubscriptionMemory(b *testing.B, subs, clients int) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	g, counters := startCountedMapGroup(b)
	// The parent's own client, warmed up and kept to the end, so that
	// the first calls' allocations fall before the first sample.
	c := g.clients(b, 1)[0]
	if _, err := onInserted.Open(ctx, c, struct{}{}); err != nil {
		b.Fatal(err)
	}
	if _, _, err := benchMap.Insert(ctx, c, "warm-up", ""); err != nil {
		b.Fatal(err)
	}
	leadConns := counters[g.addrs[0]]
	baseConns := leadConns.count()
	term := g.lead.Status().Term
	before := sampleHeap()

	child := startSubscriberChild(b, g.addrs, subs, clients)
	if err := child.waitFor("subscribed"); err != nil {
		b.Fatal(err)
	}
	if err := waitApplied(ctx, g); err != nil {
		b.Fatal(err)
	}
	listening := sampleHeap()
	conns := leadConns.count() - baseConns

	// Every subscription must be live: one insert, and the child says
	// when each of its streams got it.
	if _, _, err := benchMap.Insert(ctx, c, "probe", "probe"); err != nil {
		b.Fatal(err)
	}
	if err := child.waitFor("delivered"); err != nil {
		b.Fatal(err)
	}
	// Each of the child's clients held one connection to the leader.
	closed := leadConns.closes()
	child.kill()
	if err := leadConns.waitCloses(ctx, closed+clients); err != nil {
		b.Fatalf("the child's connections to the leader did not close: %v", err)
	}
	registered := sampleHeap()
	if st := g.lead.Status(); st.Term != term || st.Role != raft.RoleLeader {
		b.Fatalf("the leader changed during the measurement (term %d, then %d): run it again", term, st.Term)
	}

	all := float64(int64(listening.heap)-int64(before.heap)) / float64(subs)
	repl := float64(int64(registered.heap)-int64(before.heap)) / float64(subs)
	b.ReportMetric(all, "B/sub")
	b.ReportMetric(repl/3, "repl-B/sub")
	b.ReportMetric(all-repl+repl/3, "leader-B/sub")
	b.ReportMetric(float64(conns), "leader-conns")
	b.ReportMetric(float64(int64(listening.stacks)-int64(before.stacks))/float64(subs), "stack-B/sub")
	b.ReportMetric(float64(listening.goroutines-before.goroutines)/float64(clients), "goroutines/client")
	b.Logf("heap: %d B before, %d B with %d subscriptions on %d clients listening, %d B once their process died",
		before.heap, listening.heap, subs, clients, registered.heap)
}

// waitApplied waits until every member applied what the leader has, so
// that the followers hold every registration when the heap is sampled.
func waitApplied(ctx context.Context, g *mapGroup) error {
	target := g.lead.Status().Applied
	for _, n := range g.nodes {
		if err := n.Raft().WaitFor(ctx, func(st node.Status) bool { return st.Applied >= target }); err != nil {
			return err
		}
	}
	return nil
}

// startCountedMapGroup starts a group as startMapGroup does, on
// listeners that count their open connections, by address, and with
// the log kept short (see BenchmarkSMSubscriptionMemory).
func startCountedMapGroup(b *testing.B) (*mapGroup, map[string]*connCounter) {
	counters := map[string]*connCounter{}
	g := startMapGroupWith(b, func(cfg *bifrost.Config) {
		ln := newConnCounter(cfg.Listener)
		cfg.Listener, counters[ln.Addr().String()] = ln, ln
		cfg.SnapshotEntries, cfg.Raft.SnapshotCatchUpEntries = 100, -1
	})
	return g, counters
}

// subscriberChild is the process holding the subscriptions.
type subscriberChild struct {
	cmd   *exec.Cmd
	out   *bufio.Scanner
	stdin io.Closer
	once  sync.Once
}

func startSubscriberChild(b *testing.B, addrs []string, subs, clients int) *subscriberChild {
	cmd := exec.Command(os.Args[0], "-test.run=^TestSMSubscriberChild$", "-test.bench=^$", "-test.count=1")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s;%d;%d", subscriberEnv, strings.Join(addrs, ","), subs, clients))
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	ch := &subscriberChild{cmd: cmd, out: bufio.NewScanner(stdout), stdin: stdin}
	b.Cleanup(ch.kill)
	return ch
}

// waitFor waits for the child to print word: "subscribed" once every
// subscription is registered, "delivered" once every stream got the
// probe.
func (ch *subscriberChild) waitFor(word string) error {
	for ch.out.Scan() {
		if line := ch.out.Text(); line == word {
			return nil
		} else if strings.HasPrefix(line, "FAIL") || strings.HasPrefix(line, "---") {
			return fmt.Errorf("subscriber child: %s", line)
		}
	}
	return fmt.Errorf("subscriber child ended before it %s: %v", word, ch.out.Err())
}

// kill ends the child at once: it closes nothing, so its sessions and
// registrations stay on the group.
func (ch *subscriberChild) kill() {
	ch.once.Do(func() {
		ch.cmd.Process.Kill()
		ch.stdin.Close()
		ch.cmd.Wait()
	})
}

// TestSMSubscriberChild is BenchmarkSMSubscriptionMemory's child: it
// opens the subscriptions it is told to, prints "subscribed", waits for
// every stream to get the parent's probe, the first insert after, prints
// "delivered", and then listens until its standard input closes or it is
// killed.
func TestSMSubscriberChild(t *testing.T) {
	spec := os.Getenv(subscriberEnv)
	if spec == "" {
		t.Skip("runs as the child of BenchmarkSMSubscriptionMemory")
	}
	f := strings.Split(spec, ";")
	if len(f) != 3 {
		t.Fatalf("%s=%q", subscriberEnv, spec)
	}
	addrs := strings.Split(f[0], ",")
	subs, err1 := strconv.Atoi(f[1])
	clients, err2 := strconv.Atoi(f[2])
	if err1 != nil || err2 != nil || subs < clients || clients < 1 {
		t.Fatalf("%s=%q", subscriberEnv, spec)
	}
	cs := make([]*sm.Client, clients)
	for i := range cs {
		c, _, err := newMapClient(addrs)
		if err != nil {
			t.Fatal(err)
		}
		cs[i] = c
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	sts, err := openStreams(ctx, cs, subs)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println("subscribed")
	var wg sync.WaitGroup
	errs := make([]error, len(sts))
	for i, st := range sts {
		wg.Go(func() {
			ev, err := st.Next(ctx)
			if err == nil && ev.Value != (sm.Pair[string, string]{K: "probe", V: "probe"}) {
				err = fmt.Errorf("event %v: %v, want the probe", ev.ID, ev.Value)
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("stream %d: %v", i, err)
		}
	}
	fmt.Println("delivered")
	io.Copy(io.Discard, os.Stdin)
}

// connCounter is a listener that counts its open and closed
// connections, so that a benchmark can wait for those a killed process
// held to close.
type connCounter struct {
	net.Listener

	mu      sync.Mutex // protects the following
	open    int
	closed  int           // connections closed since the start
	changed chan struct{} // closed and replaced when open changes
}

func newConnCounter(ln net.Listener) *connCounter {
	return &connCounter{Listener: ln, changed: make(chan struct{})}
}

func (l *connCounter) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.add(1)
	return &countedConn{Conn: c, l: l}, nil
}

func (l *connCounter) add(d int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open += d
	if d < 0 {
		l.closed -= d
	}
	close(l.changed)
	l.changed = make(chan struct{})
}

func (l *connCounter) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open
}

func (l *connCounter) closes() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed
}

// waitCloses waits until n connections have closed since the start.
func (l *connCounter) waitCloses(ctx context.Context, n int) error {
	for {
		l.mu.Lock()
		closed, changed := l.closed, l.changed
		l.mu.Unlock()
		if closed >= n {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// countedConn takes itself off its listener's count when first closed.
type countedConn struct {
	net.Conn
	l    *connCounter
	once sync.Once
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.add(-1) })
	return err
}
