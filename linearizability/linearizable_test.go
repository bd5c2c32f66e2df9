package linearizability

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/bifrost-go/bifrost/sm"
)

var (
	seedFlag = flag.Uint64("seed", 0, "TestLinearizable: run each scenario once with this seed (default: random seeds)")
	runsFlag = flag.Int("runs", runsPerScenario, "TestLinearizable: how many consecutive seeds each scenario runs")
)

// scenario is one cluster run whose history porcupine checks.
type scenario struct {
	name    string
	servers int
	clients int
	// readers is how many of the clients (the last ones) only read:
	// staying with the first server that answers them, they read through
	// followers too.
	readers int
	keys    int
	faults  faults      // of the network, until the cluster heals
	reads   sm.ReadMode // how clients read
	cluster func(*clusterConfig)
	// nemesis injects faults until the phase ends (nil: only the
	// network's); the cluster is healed after it returns.
	nemesis func(n *nemesis)
	phase   time.Duration // fake time with faults
	settle  time.Duration // fake time after healing
	// minAfterHeal is how many operations must complete after the heal;
	// every client must complete at least one as well.
	minAfterHeal int
	// newSessionOnTimeout breaks exactly-once on purpose: clients retry
	// a slow update in a new session (negative control only).
	newSessionOnTimeout bool
	// skipReadIndex breaks linearizable reads on purpose: they skip the
	// read index (the broken variant, negative control only).
	skipReadIndex bool
	// wantTransfers fails the run unless a leadership transfer worked.
	wantTransfers bool
}

// scaled shortens the fake durations under the race detector.
func (sc scenario) scaled() scenario {
	sc.phase = time.Duration(float64(sc.phase) * sizeFactor)
	sc.settle = time.Duration(float64(sc.settle) * sizeFactor)
	sc.clients = max(2, int(float64(sc.clients)*sizeFactor+0.5))
	sc.minAfterHeal = max(1, int(float64(sc.minAfterHeal)*sizeFactor))
	sc.readers = min(sc.readers, sc.clients-1)
	return sc
}

// unreliable is the fault model of the MIT 6.5840 kvraft tests: requests
// and replies lost one time in ten, delays up to 26 ms, reordering. On
// the client links a loss cuts the connection.
var unreliable = faults{drop: 0.1, minDelay: time.Millisecond, maxDelay: 26 * time.Millisecond, reorder: true}

// reordering adds to unreliable the long reordering of the MIT tests:
// now and then a message arrives 200 ms to 2.2 s late.
var reordering = faults{drop: 0.1, minDelay: time.Millisecond, maxDelay: 26 * time.Millisecond, reorder: true,
	longDelay: 0.05}

// lan is a reliable network with small delays.
var lan = faults{minDelay: time.Millisecond, maxDelay: 3 * time.Millisecond}

func scenarios() []scenario {
	return []scenario{
		{name: "basic", servers: 3, clients: 5, readers: 1, keys: 3, faults: lan,
			phase: 2 * time.Second, settle: time.Second, minAfterHeal: 100},
		{name: "concurrent", servers: 7, clients: 15, readers: 3, keys: 5, faults: lan,
			phase: 2 * time.Second, settle: time.Second, minAfterHeal: 200},
		{name: "unreliable", servers: 5, clients: 5, readers: 1, keys: 3, faults: unreliable,
			phase: 3 * time.Second, settle: time.Second, minAfterHeal: 20},
		{name: "unreliable_long_reordering", servers: 5, clients: 5, readers: 1, keys: 3, faults: reordering,
			phase: 3 * time.Second, settle: time.Second, minAfterHeal: 20},
		{name: "one_partition", servers: 5, clients: 6, readers: 1, keys: 3, faults: lan,
			nemesis: onePartition, phase: 2 * time.Second, settle: time.Second, minAfterHeal: 50},
		{name: "many_partitions_lan", servers: 5, clients: 5, readers: 1, keys: 3, faults: lan,
			nemesis: manyPartitions, phase: 4 * time.Second, settle: 1500 * time.Millisecond, minAfterHeal: 20},
		{name: "many_partitions", servers: 5, clients: 5, readers: 1, keys: 3, faults: unreliable,
			nemesis: manyPartitions, phase: 4 * time.Second, settle: 1500 * time.Millisecond, minAfterHeal: 20},
		{name: "crash_restart", servers: 5, clients: 5, readers: 1, keys: 3, faults: lan,
			nemesis: crashRestart, phase: 4 * time.Second, settle: 1500 * time.Millisecond, minAfterHeal: 50},
		{name: "crash_restart_snapshots_partitions", servers: 5, clients: 5, readers: 1, keys: 3, faults: unreliable,
			cluster: func(cfg *clusterConfig) { cfg.snapshotEntries = 20 },
			nemesis: both(crashRestart, manyPartitions), phase: 4 * time.Second, settle: 2 * time.Second, minAfterHeal: 20},
		{name: "concurrent_unreliable_partitions_crash_snapshots", servers: 7, clients: 15, readers: 3, keys: 5, faults: unreliable,
			cluster: func(cfg *clusterConfig) { cfg.snapshotEntries = 50 },
			nemesis: both(crashRestart, manyPartitions), phase: 4 * time.Second, settle: 2 * time.Second, minAfterHeal: 50},
		{name: "isolated_leader_reads", servers: 5, clients: 5, readers: 1, keys: 3, faults: lan,
			nemesis: isolateLeader, phase: 4 * time.Second, settle: time.Second, minAfterHeal: 50},
		{name: "leader_transfer_churn", servers: 5, clients: 5, readers: 1, keys: 3, faults: lan,
			nemesis: transferChurn, wantTransfers: true, phase: 3 * time.Second, settle: time.Second, minAfterHeal: 50},
		{name: "lease_reads_partitions", servers: 5, clients: 5, readers: 1, keys: 3, faults: lan,
			reads: sm.Lease, cluster: func(cfg *clusterConfig) { cfg.leaseReads = true },
			nemesis: isolateLeader, phase: 4 * time.Second, settle: time.Second, minAfterHeal: 50},
		{name: "lease_reads_transfer_churn_partitions", servers: 5, clients: 5, readers: 1, keys: 3, faults: lan,
			reads: sm.Lease, cluster: func(cfg *clusterConfig) { cfg.leaseReads = true },
			nemesis: both(transferChurn, isolateLeader), phase: 4 * time.Second, settle: time.Second, minAfterHeal: 50},
		{name: "lease_reads_long_reordering_partitions", servers: 5, clients: 5, readers: 1, keys: 3, faults: reordering,
			reads: sm.Lease, cluster: func(cfg *clusterConfig) { cfg.leaseReads = true },
			nemesis: isolateLeader, phase: 4 * time.Second, settle: time.Second, minAfterHeal: 20},
		{name: "lease_reads_crash_restart", servers: 3, clients: 5, readers: 1, keys: 3, faults: lan,
			reads: sm.Lease, cluster: func(cfg *clusterConfig) { cfg.leaseReads = true },
			nemesis: crashRestart, phase: 4 * time.Second, settle: time.Second, minAfterHeal: 50},
	}
}

// TestLinearizable runs each scenario on a cluster of raft/node servers
// hosting the built-in machines on sm, with sm clients, in a synctest
// bubble, runsPerScenario times with consecutive seeds, and checks every
// history with porcupine and every subscriber's stream against it.
func TestLinearizable(t *testing.T) {
	for _, sc := range scenarios() {
		t.Run(sc.name, func(t *testing.T) {
			sc := sc.scaled()
			first, runs := pickSeed(), *runsFlag
			if *seedFlag != 0 {
				runs = 1
			}
			for seed := first; seed < first+uint64(runs) && !t.Failed(); seed++ {
				runAndCheck(t, sc, seed)
			}
		})
	}
}

// runAndCheck runs sc once and checks its history.
func runAndCheck(t *testing.T, sc scenario, seed uint64) {
	t.Helper()
	defer logReplay(t, sc.name, seed)
	t0 := time.Now()
	run := runScenario(t, sc, seed)
	t1 := time.Now()
	run.report(t)
	ops := run.ops
	for _, s := range run.streams {
		for _, err := range checkStream(run.ops, s) {
			t.Errorf("seed %d: %v: %v", seed, s, err)
		}
		ops = withStream(ops, s)
	}
	res, info := checkHistory(ops)
	t.Logf("seed %d: %v to run, %v to check", seed, t1.Sub(t0).Round(time.Millisecond), time.Since(t1).Round(time.Millisecond))
	switch res {
	case porcupine.Illegal:
		t.Errorf("seed %d: history of %d operations is not linearizable", seed, len(run.ops))
		saveFailure(t, failureDir(), info, ops)
	case porcupine.Unknown:
		t.Logf("seed %d: porcupine gave up after %v: linearizability unknown", seed, checkTimeout)
	}
}

// TestLinearizableCatchesReadsWithoutReadIndex runs the broken variant:
// the same harness, with reads that skip the read index (issued as
// sm.Follower reads, possibly stale by design, and recorded as
// linearizable) while partitions cut servers off. Porcupine must reject
// the history of one of a fixed few seeds, and the failure must leave
// its visualization in a file. Two of the clients only read, so they
// stay with the server they first reached even when it falls behind in
// a minority.
func TestLinearizableCatchesReadsWithoutReadIndex(t *testing.T) {
	sc := scenario{name: "reads_without_read_index", servers: 5, clients: 5, readers: 2, keys: 2, faults: lan,
		skipReadIndex: true, nemesis: manyPartitions, phase: 2 * time.Second, settle: 500 * time.Millisecond,
		minAfterHeal: 1}
	html := expectIllegal(t, "TestLinearizableCatchesReadsWithoutReadIndex", sc.scaled())
	if html == "" {
		return
	}
	if fi, err := os.Stat(html); err != nil || fi.Size() == 0 {
		t.Errorf("visualization %s: %v, %d bytes", html, err, fi.Size())
	}
}

// TestLinearizableCatchesDuplicateUpdates is a negative control for
// exactly-once: clients that retry a slow update through a new sm.Client,
// in a new session the hosts cannot match with the first, on a network
// that loses requests and replies, must yield a history porcupine rejects
// (an add applied twice, a set undone by its own retry), for one of a
// fixed few seeds.
func TestLinearizableCatchesDuplicateUpdates(t *testing.T) {
	sc := scenario{name: "duplicate_updates", servers: 3, clients: 5, keys: 2, faults: unreliable,
		newSessionOnTimeout: true, phase: 2 * time.Second, settle: 500 * time.Millisecond, minAfterHeal: 1}
	expectIllegal(t, "TestLinearizableCatchesDuplicateUpdates", sc.scaled())
}

// negativeSeeds is how many seeds, from 1 (or -seed), a negative control
// tries: a fixed set, so that a run that bites once bites every time.
const negativeSeeds = 5

// expectIllegal runs sc with the negative control's seeds and fails t
// unless porcupine rejects one of the histories; it returns the path of
// the visualization of the rejected one.
func expectIllegal(t *testing.T, test string, sc scenario) string {
	first := uint64(1)
	if *seedFlag != 0 {
		first = *seedFlag
	}
	for seed := first; seed < first+negativeSeeds; seed++ {
		run := runScenario(t, sc, seed)
		run.report(t)
		if res, info := checkHistory(run.ops); res == porcupine.Illegal {
			t.Logf("seed %d: porcupine rejects the history of %d operations, as it must", seed, len(run.ops))
			// The expected failure's files go where the test's go.
			return saveFailure(t, t.TempDir(), info, run.ops)
		}
	}
	t.Errorf("porcupine accepted every history of %s (seeds %d to %d): the checker does not bite\n"+
		"replay: go test ./linearizability -run '^%s$' -seed %d -v", sc.name, first, first+negativeSeeds-1, test, first)
	return ""
}

// pickSeed returns the -seed flag, or a random seed.
func pickSeed() uint64 {
	if *seedFlag != 0 {
		return *seedFlag
	}
	return rand.Uint64N(1<<32) + 1
}

func logReplay(t *testing.T, name string, seed uint64) {
	if t.Failed() {
		t.Logf("seed %d; replay: go test ./linearizability -run '^TestLinearizable$/^%s$' -seed %d -v", seed, name, seed)
	} else {
		t.Logf("seed %d", seed)
	}
}

// run is what one scenario run produced.
type run struct {
	ops                    []Operation
	afterHeal              int // operations that returned after the heal
	links                  linkStats
	sessions               int // sessions given up on (negative control)
	sent, lost             int
	crashes                int
	transfers, transferErr int
	snapshots, snapMsgs    int // servers with a snapshot at the end; MsgSnap sent
	instantReads           int // reads served without a message
	streams                []stream
}

func (r run) report(t *testing.T) {
	t.Helper()
	var done int
	for _, op := range r.ops {
		if !op.Pending {
			done++
		}
	}
	t.Logf("%d operations (%d completed, %d after the heal), %d client dials (%d refused), "+
		"%d client connections cut by a lost request, %d by a lost reply, %d by crashes and partitions, "+
		"%d sessions given up on, %d messages (%d lost, %d snapshot chunks), %d crashes, "+
		"%d leadership transfers (%d failed), %d servers with a snapshot, %d reads served without a message, "+
		"%d events on the subscribers' streams",
		len(r.ops), done, r.afterHeal, r.links.dials, r.links.refused, r.links.lostRequests, r.links.lostReplies,
		r.links.cuts, r.sessions, r.sent, r.lost, r.snapMsgs, r.crashes, r.transfers, r.transferErr,
		r.snapshots, r.instantReads, r.events())
}

// events counts the events the subscribers checked.
func (r run) events() int {
	n := 0
	for _, s := range r.streams {
		n += len(s.events)
	}
	return n
}

// runScenario runs sc once with seed, in a synctest bubble, and returns
// the history and counts; it fails t if the cluster makes no progress
// after healing or its replicas diverge.
func runScenario(t *testing.T, sc scenario, seed uint64) run {
	var out run
	synctest.Test(t, func(t *testing.T) { out = runInBubble(t, sc, seed) })
	return out
}

func runInBubble(t *testing.T, sc scenario, seed uint64) run {
	cfg := clusterConfig{servers: sc.servers, seed: seed, faults: sc.faults}
	if sc.cluster != nil {
		sc.cluster(&cfg)
	}
	c := newCluster(t, cfg)
	c.waitLeader(5 * time.Second)
	h := &History{}
	subs, stopSubs := startSubscribers(t, c, h, sc)
	clients, stopClients := startClients(t, c, h, sc)
	n := &nemesis{t: t, c: c, h: h, clients: sc.clients, schedule: schedule{target: c,
		rng: rand.New(rand.NewPCG(seed, 0x6e656d)), until: time.Now().Add(sc.phase)}}
	if sc.nemesis != nil {
		sc.nemesis(n)
	}
	time.Sleep(time.Until(n.until))
	c.healAll()
	healed := h.Now()
	time.Sleep(sc.settle)
	stopClients()
	out := run{ops: h.Operations()}
	closeClients(t, clients)
	if err := c.waitConverged(5 * time.Second); err != nil {
		t.Error(err)
	}
	out.streams = catchUp(t.Error, subs)
	stopSubs()
	out.snapshots, out.crashes, out.transfers, out.transferErr = c.snapshots(), c.crashes(), n.transfers, n.transferErr
	c.stopAll()
	out.sent, out.lost, out.snapMsgs = c.nw.stats()
	out.links = c.links.statsNow()
	for _, cl := range clients {
		out.sessions += cl.sessions
		out.instantReads += cl.instant
	}
	out.afterHeal = checkProgress(t.Errorf, out.ops, healed, sc)
	out.check(t, sc, cfg)
	return out
}

// startClients starts sc.clients clients that run operations until the
// returned function stops them and waits for them.
func startClients(t *testing.T, c *cluster, h *History, sc scenario) ([]*client, func()) {
	ctx, cancel := context.WithCancel(t.Context())
	clients := make([]*client, sc.clients)
	var wg sync.WaitGroup
	for i := range clients {
		clients[i] = newClient(t, c, h, i, sc.keys, sc.reads)
		clients[i].newSessionOnTimeout = sc.newSessionOnTimeout
		clients[i].skipReadIndex = sc.skipReadIndex
		clients[i].readOnly = i >= sc.clients-sc.readers
		wg.Go(func() { clients[i].run(ctx) })
	}
	return clients, func() { cancel(); wg.Wait() }
}

// startSubscribers starts subscribers to the changes of the Value, of
// the Number, of the Map key k0 and of every key of the Map, which run
// until the returned function stops them, waits for them and closes
// them.
func startSubscribers(t *testing.T, c *cluster, h *History, sc scenario) ([]*subscriber, func()) {
	ctx, cancel := context.WithCancel(t.Context())
	var subs []*subscriber
	var wg sync.WaitGroup
	for i, key := range subscribed {
		idx := sc.clients + i
		links := &clientLinks{l: c.links, client: idx}
		cfg := sm.ClientConfig{Group: group, Servers: c.serversFrom(idx), MaxBackoff: maxBackoff}
		s, err := newSubscriber(links.dial, cfg, h, idx, key)
		if err != nil {
			t.Fatal(err)
		}
		subs = append(subs, s)
		wg.Go(func() { s.run(ctx) })
	}
	return subs, func() {
		cancel()
		wg.Wait()
		cctx, ccancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer ccancel()
		for _, s := range subs {
			if err := s.close(cctx); err != nil {
				t.Errorf("subscriber %d: close: %v", s.idx, err)
			}
		}
	}
}

// subscribed are the objects the runners' subscribers follow, one
// subscriber each.
var subscribed = []string{valueKey, numberKey, "k0", everyKey}

// catchUp lets every subscriber catch up with its objects' final state,
// on the healed cluster, and returns their streams.
func catchUp(fail func(...any), subs []*subscriber) []stream {
	var out []stream
	for _, s := range subs {
		final, err := s.catchUp(5 * time.Second)
		if err != nil {
			fail(err)
			continue
		}
		out = append(out, s.streams(final)...)
	}
	return out
}

// closeClients closes the clients' sessions, on a healed cluster, and
// their connections.
func closeClients(t *testing.T, clients []*client) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, cl := range clients {
		if err := cl.close(ctx); err != nil {
			t.Errorf("client %d: close: %v", cl.idx, err)
		}
	}
}

// check fails t if the faults sc is about did not happen: no snapshot
// where they are due, no leadership transfer, no read from the lease, or
// a linearizable read answered without a message.
func (r run) check(t *testing.T, sc scenario, cfg clusterConfig) {
	t.Helper()
	if cfg.snapshotEntries > 0 && r.snapshots == 0 {
		t.Errorf("no server took a snapshot, with one due every %d entries", cfg.snapshotEntries)
	}
	if sc.wantTransfers && r.transfers == 0 {
		t.Errorf("no leadership transfer worked (%d failed)", r.transferErr)
	}
	switch {
	case sc.reads == sm.Lease && r.instantReads == 0:
		t.Errorf("no lease read was served from the lease: every one took a message round")
	case sc.reads == sm.Linearizable && !sc.skipReadIndex && r.instantReads > 0:
		// A leader must confirm with a quorum round, a follower must
		// ask the leader: neither happens in no time.
		t.Errorf("%d linearizable reads were served without any message sent", r.instantReads)
	}
}

// lastOperation describes the last operation client invoked.
func lastOperation(ops []Operation, client int) string {
	for i := len(ops) - 1; i >= 0; i-- {
		if op := ops[i]; op.Client == client {
			end := "never returned"
			if !op.Pending {
				end = "returned at " + op.ReturnTime.Format("05.000") + ": " + op.Detail
			}
			return fmt.Sprintf("%v %q invoked at %s, %s", op.Input.Kind, op.Input.Key, op.CallTime.Format("05.000"), end)
		}
	}
	return "none"
}

// checkProgress fails t unless every client completed an operation after
// the heal and at least sc.minAfterHeal completed in all; it returns how
// many did.
func checkProgress(errorf func(string, ...any), ops []Operation, healed int64, sc scenario) int {
	after := make([]int, sc.clients)
	total := 0
	for _, op := range ops {
		if !op.Pending && op.Return > healed {
			after[op.Client]++
			total++
		}
	}
	for i, n := range after {
		if n == 0 {
			errorf("client %d completed no operation in the %v after the cluster healed; its last: %s",
				i, sc.settle, lastOperation(ops, i))
		}
	}
	if total < sc.minAfterHeal {
		errorf("%d operations completed in the %v after the cluster healed, want at least %d", total, sc.settle, sc.minAfterHeal)
	}
	return total
}
