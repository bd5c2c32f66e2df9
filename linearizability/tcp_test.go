package linearizability

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/bifrost-go/bifrost"
	"github.com/bifrost-go/bifrost/raft"
	"github.com/bifrost-go/bifrost/rpc"
	"github.com/bifrost-go/bifrost/sm"
)

var tcpRunsFlag = flag.Int("tcpruns", tcpRunsPerScenario, "TestLinearizableTCP: how many consecutive seeds each scenario runs")

// tcpScenario is one run of real bifrost.Nodes on loopback TCP whose
// history porcupine checks.
type tcpScenario struct {
	name    string
	members int // bootstrapped voters
	clients int
	keys    int
	// snapshotEntries makes members snapshot every so many entries.
	snapshotEntries int
	nemesis         func(*tcpNemesis)
	phase, settle   time.Duration // of wall-clock time with faults, after healing
	minAfterHeal    int
	// readers of the clients only read; a reader's sm.Client stays with
	// the first member that answers it.
	readers int

	// The negative controls break one thing each; a run of one reports
	// what goes wrong as symptoms rather than failing the test.
	// brokenSync gives the members disks whose syncs return before they
	// are done. skipReadIndex sends reads as sm.Follower reads, which no
	// replica confirms with the leader, and records them as linearizable.
	brokenSync, skipReadIndex bool
}

// negative reports whether sc is a negative control.
func (sc tcpScenario) negative() bool { return sc.brokenSync || sc.skipReadIndex }

func tcpScenarios() []tcpScenario {
	return []tcpScenario{
		{name: "tcp_partitions_transfers", members: 5, clients: 5, keys: 3, snapshotEntries: 100,
			nemesis: both(tcpPartitions, tcpTransfers), phase: 3 * time.Second, settle: 1500 * time.Millisecond, minAfterHeal: 20},
		{name: "tcp_crashes_snapshots", members: 3, clients: 5, keys: 3, snapshotEntries: 20,
			nemesis: both(tcpCrashes, tcpTransfers), phase: 3 * time.Second, settle: 1500 * time.Millisecond, minAfterHeal: 20},
		{name: "tcp_membership", members: 3, clients: 5, keys: 3, snapshotEntries: 30,
			nemesis: both(tcpMembership, tcpPartitions), phase: 3 * time.Second, settle: 1500 * time.Millisecond, minAfterHeal: 20},
	}
}

// TestLinearizableTCP runs each scenario on bifrost.Nodes that talk over
// loopback TCP in this process, with faults injected at the transport
// (tcpNet), on the disk (crashFS) and by the nemesis, tcpruns times with
// consecutive seeds, and checks every history with porcupine and every
// subscriber's stream against it. Time is the wall clock: a seed fixes
// the faults and the operations drawn, not the interleaving.
func TestLinearizableTCP(t *testing.T) {
	if testing.Short() {
		t.Skip("real TCP runs take seconds each")
	}
	for _, sc := range tcpScenarios() {
		t.Run(sc.name, func(t *testing.T) {
			first, runs := pickSeed(), *tcpRunsFlag
			if *seedFlag != 0 {
				runs = 1
			}
			for seed := first; seed < first+uint64(runs) && !t.Failed(); seed++ {
				runTCPAndCheck(t, sc, seed)
			}
		})
	}
}

func runTCPAndCheck(t *testing.T, sc tcpScenario, seed uint64) {
	t.Helper()
	defer func() {
		if t.Failed() {
			t.Logf("seed %d; replay: go test ./linearizability -run '^TestLinearizableTCP$/^%s$' -seed %d -v", seed, sc.name, seed)
		}
	}()
	start := time.Now()
	r := runTCP(t, sc, seed)
	t.Logf("seed %d: %d operations (%d completed, %d after the heal), %d crashes (losing %d bytes written but not synced), "+
		"%d clean stops, %d restarts, %d leadership transfers (%d failed), %d membership changes, "+
		"%d members with a snapshot at the end, %d connections cut, %d dials refused, %d events on the subscribers' streams, %v",
		seed, len(r.ops), completed(r.ops), r.afterHeal, r.lossy, r.lostBytes, r.clean, r.restarts, r.transfers, r.transferErr,
		r.changes, r.snapshots, r.cuts, r.refused, r.events(), time.Since(start).Round(time.Millisecond))
	ops := r.ops
	for _, s := range r.streams {
		for _, err := range checkStream(r.ops, s) {
			t.Errorf("seed %d: %v: %v", seed, s, err)
		}
		ops = withStream(ops, s)
	}
	res, info := checkHistory(ops)
	switch res {
	case porcupine.Illegal:
		t.Errorf("seed %d: history of %d operations is not linearizable", seed, len(ops))
		saveFailure(t, failureDir(), info, ops)
	case porcupine.Unknown:
		t.Logf("seed %d: porcupine gave up after %v: linearizability unknown", seed, checkTimeout)
	}
}

func completed(ops []Operation) int {
	n := 0
	for _, op := range ops {
		if !op.Pending {
			n++
		}
	}
	return n
}

// tcpRun is what one real-TCP run produced.
type tcpRun struct {
	run
	lossy, lostBytes, clean, restarts, changes int
	cuts, refused                              int
	symptoms                                   []string // with brokenSync, what went wrong
}

// runTCP runs sc once with seed. For a negative control, what goes
// wrong is returned as symptoms rather than failing t.
func runTCP(t *testing.T, sc tcpScenario, seed uint64) tcpRun {
	var out tcpRun
	errorf := t.Errorf
	if sc.negative() {
		errorf = func(format string, args ...any) { out.symptoms = append(out.symptoms, fmt.Sprintf(format, args...)) }
	}
	c := newTCPCluster(t, sc, seed, errorf)
	defer c.closeAll()
	if _, err := c.waitLeader(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	h := &History{}
	subs, stopSubs := c.startSubscribers(h, sc)
	stopClients := c.startClients(h, sc)
	n := &tcpNemesis{c: c, schedule: schedule{target: c,
		rng: rand.New(rand.NewPCG(seed, 0x6e656d)), until: time.Now().Add(sc.phase)}}
	if sc.nemesis != nil {
		sc.nemesis(n)
	}
	phaseEnd := time.NewTimer(time.Until(n.until)) // the nemesis may end early
	<-phaseEnd.C
	c.healAll()
	healed := h.Now()
	settle := time.NewTimer(sc.settle)
	<-settle.C
	stopClients()
	out.ops = h.Operations()
	if err := c.waitConverged(10 * time.Second); err != nil {
		errorf("%v", err)
	}
	out.streams = catchUp(func(args ...any) { errorf("%v", fmt.Sprint(args...)) }, subs)
	stopSubs()
	out.afterHeal = checkProgress(errorf, out.ops, healed, scenario{clients: sc.clients, settle: sc.settle, minAfterHeal: sc.minAfterHeal})
	out.lossy, out.lostBytes, out.clean, out.restarts, out.changes = c.counts()
	out.transfers, out.transferErr = n.transfers, n.transferErr
	out.snapshots = c.snapshotsOnDisk()
	out.cuts, out.refused = c.tn.stats()
	if sc.snapshotEntries > 0 && out.snapshots == 0 {
		errorf("no member holds a snapshot, with one due every %d entries", sc.snapshotEntries)
	}
	return out
}

// tcpCluster runs bifrost.Nodes on loopback TCP, each with its Dir on
// disk (the member file) and its WAL and snapshots on a crashFS, the
// built-in machines under test carried beside bifrost's own.
type tcpCluster struct {
	t      *testing.T
	errorf func(string, ...any) // reports what goes wrong
	// brokenSync gives the members disks whose syncs return before
	// they are done (negative control only).
	brokenSync bool
	sc         tcpScenario
	seed       uint64
	tn         *tcpNet
	dir        string
	addrs      map[uint64]string // every member's, and the one that may join

	mu                              sync.Mutex // protects the following
	nodes                           map[uint64]*bifrost.Node
	fs                              map[uint64]*crashFS
	members                         []uint64 // in the group (started, joined, not left)
	starts                          map[uint64]int
	lossy, clean, restarts, changes int
	lostBytes                       int // written, not synced, lost in crashes
}

// joinerID is the member that tcpMembership adds.
const joinerID = 100

func newTCPCluster(t *testing.T, sc tcpScenario, seed uint64, errorf func(string, ...any)) *tcpCluster {
	c := &tcpCluster{t: t, errorf: errorf, brokenSync: sc.brokenSync, sc: sc, seed: seed, tn: newTCPNet(seed), dir: t.TempDir(), addrs: map[uint64]string{},
		nodes: map[uint64]*bifrost.Node{}, fs: map[uint64]*crashFS{}, starts: map[uint64]int{}}
	lns := map[uint64]net.Listener{}
	ids := []uint64{joinerID}
	for id := uint64(1); id <= uint64(sc.members); id++ {
		ids = append(ids, id)
	}
	for _, id := range ids {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns[id], c.addrs[id] = ln, ln.Addr().String()
		c.tn.name(id, c.addrs[id])
		c.fs[id] = newCrashFS(sc.brokenSync)
	}
	lns[joinerID].Close()
	peers := maps.Clone(c.addrs)
	delete(peers, joinerID)
	for id := uint64(1); id <= uint64(sc.members); id++ {
		if err := c.start(id, lns[id], peers, ""); err != nil {
			t.Fatalf("start member %d: %v", id, err)
		}
		c.members = append(c.members, id)
	}
	return c
}

// config returns the Config of member id's next start.
func (c *tcpCluster) config(id uint64, ln net.Listener) bifrost.Config {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.starts[id]++
	return bifrost.Config{ID: id, Listener: ln, Dir: filepath.Join(c.dir, fmt.Sprint(id)), FS: c.fs[id],
		Machines: []*sm.Machine{testMap.Machine(), testValue.Machine(), testNumber.Machine()},
		Raft: raft.Config{ElectionTicks: 10, Seed: c.seed*1000003 + id*101 + uint64(c.starts[id]),
			SnapshotCatchUpEntries: -1},
		TickInterval: 10 * time.Millisecond, SnapshotEntries: c.sc.snapshotEntries,
		Client: rpc.ClientConfig{Dial: c.tn.dialer(id)}}
}

// start starts member id on ln (nil: listen again at its address), from
// its Dir, bootstrapping peers or joining at join the first time.
func (c *tcpCluster) start(id uint64, ln net.Listener, peers map[uint64]string, join string) error {
	if ln == nil {
		var err error
		if ln, err = listenAgain(c.addrs[id]); err != nil {
			return err
		}
	}
	cfg := c.config(id, ln)
	cfg.Peers, cfg.Join = peers, join
	c.tn.setDown(id, false)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n, err := bifrost.Start(ctx, cfg)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.nodes[id] = n
	c.mu.Unlock()
	return nil
}

// listenAgain listens at addr, the address of a member that stopped:
// its port may take a moment to be free again.
func listenAgain(addr string) (net.Listener, error) {
	var err error
	for range 100 {
		var ln net.Listener
		if ln, err = net.Listen("tcp", addr); err == nil {
			return ln, nil
		}
		t := time.NewTimer(10 * time.Millisecond)
		<-t.C
	}
	return nil, err
}

// stop stops member id: a clean Close if lose is false, or a crash that
// loses whatever it wrote and did not sync. Stopping a stopped member
// does nothing.
func (c *tcpCluster) stop(id uint64, lose bool) {
	c.mu.Lock()
	n := c.nodes[id]
	delete(c.nodes, id)
	if n != nil && lose {
		// From here on the dying member's writes go nowhere; the next
		// start finds what was durable.
		var lost int
		c.fs[id], lost = c.fs[id].crash()
		c.lostBytes += lost
	}
	c.mu.Unlock()
	if n == nil {
		return
	}
	c.tn.setDown(id, true) // it says nothing more to anyone
	err := n.Close()
	if !lose && err != nil {
		c.errorf("close member %d: %v", id, err)
	}
}

// crash crashes member id, losing unsynced writes, or stops it cleanly,
// and counts it.
func (c *tcpCluster) crash(id uint64, lose bool) {
	c.stop(id, lose)
	c.mu.Lock()
	defer c.mu.Unlock()
	if lose {
		c.lossy++
	} else {
		c.clean++
	}
}

// restart starts member id again if it is a member and down.
func (c *tcpCluster) restart(id uint64) {
	c.mu.Lock()
	skip := c.nodes[id] != nil || !slices.Contains(c.members, id)
	c.mu.Unlock()
	if skip {
		return
	}
	if err := c.start(id, nil, nil, ""); err != nil {
		c.errorf("restart member %d: %v", id, err)
		return
	}
	c.mu.Lock()
	c.restarts++
	c.mu.Unlock()
}

func (c *tcpCluster) memberIDs() []uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.members)
}

func (c *tcpCluster) node(id uint64) *bifrost.Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[id]
}

func (c *tcpCluster) running() []uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Sorted(maps.Keys(c.nodes))
}

// healAll ends every network fault and starts every member that is down.
func (c *tcpCluster) healAll() {
	c.tn.heal()
	for _, id := range c.memberIDs() {
		c.restart(id)
	}
}

func (c *tcpCluster) closeAll() {
	for _, id := range c.running() {
		c.stop(id, false)
	}
}

// leader returns the running member that leads in the highest term.
func (c *tcpCluster) leader() (uint64, *bifrost.Node) {
	var best *bifrost.Node
	var id, term uint64
	for _, i := range c.running() {
		n := c.node(i)
		if n == nil {
			continue
		}
		if st := n.Raft().Status(); st.Role == raft.RoleLeader && st.Term > term {
			best, id, term = n, i, st.Term
		}
	}
	return id, best
}

// waitFor polls cond every 10 ms of wall-clock time until it holds or
// limit passes.
func waitFor(limit time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		t := time.NewTimer(10 * time.Millisecond)
		<-t.C
	}
	return true
}

func (c *tcpCluster) waitLeader(limit time.Duration) (uint64, error) {
	var id uint64
	if !waitFor(limit, func() bool { id, _ = c.leader(); return id != 0 }) {
		return 0, fmt.Errorf("no leader within %v", limit)
	}
	return id, nil
}

// waitConverged waits until every running member has applied the same
// index, at least the leader's commit index, and then checks that their
// hosts hold the same state, byte for byte.
func (c *tcpCluster) waitConverged(limit time.Duration) error {
	var last error
	ok := waitFor(limit, func() bool {
		_, lead := c.leader()
		if lead == nil {
			last = errors.New("no leader")
			return false
		}
		commit := lead.Raft().Status().Commit
		states := map[uint64][]byte{}
		var at []uint64
		for _, id := range c.running() {
			n := c.node(id)
			if n == nil {
				return false
			}
			before := n.Host().Applied()
			snap, err := n.Host().Snapshot()
			if err != nil || n.Host().Applied() != before {
				return false
			}
			states[id], at = snap, append(at, before)
		}
		if len(at) == 0 || slices.Min(at) != slices.Max(at) || at[0] < commit {
			last = fmt.Errorf("applied %v, commit %d", at, commit)
			return false
		}
		for id, st := range states {
			for other, st2 := range states {
				if !bytes.Equal(st, st2) {
					last = fmt.Errorf("members %d and %d applied through %d but hold different states", id, other, at[0])
					return false
				}
			}
		}
		last = nil
		return true
	})
	if !ok {
		return fmt.Errorf("members did not converge within %v: %v", limit, last)
	}
	return nil
}

// counts returns the crashes that lost unsynced writes, the bytes they
// lost, the clean stops, the restarts and the membership changes so far.
func (c *tcpCluster) counts() (lossy, lostBytes, clean, restarts, changes int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lossy, c.lostBytes, c.clean, c.restarts, c.changes
}

// snapshotsOnDisk counts the running members whose raft holds a
// snapshot.
func (c *tcpCluster) snapshotsOnDisk() int {
	n := 0
	for _, id := range c.running() {
		if nd := c.node(id); nd != nil && nd.Raft().Status().Snapshot > 0 {
			n++
		}
	}
	return n
}

// servers returns every address a client may find a member at.
func (c *tcpCluster) servers() []string {
	var out []string
	for _, id := range slices.Sorted(maps.Keys(c.addrs)) {
		out = append(out, c.addrs[id])
	}
	return out
}

// clientConfig is the sm client of the real-TCP runner: a quick attempt
// timeout, so that a client stuck on a member cut off moves on.
func (c *tcpCluster) clientConfig() sm.ClientConfig {
	return sm.ClientConfig{Group: bifrost.DefaultGroup, Servers: c.servers(), MaxBackoff: maxBackoff,
		AttemptTimeout: 500 * time.Millisecond}
}

// tcpOpTimeout bounds one operation of a client: one that does not
// return by then stays pending in the history, possibly applied, and the
// client goes on.
const tcpOpTimeout = 2 * time.Second

// startClients starts sc.clients clients, each with its own sm.Client
// and pool on the faulty transport, that run operations until the
// returned function stops them and waits for them.
func (c *tcpCluster) startClients(h *History, sc tcpScenario) func() {
	ctx, cancel := context.WithCancel(c.t.Context())
	var wg sync.WaitGroup
	var closers []func()
	for i := range sc.clients {
		pool, err := rpc.NewPool(rpc.ClientConfig{Dial: c.tn.dialer(1000 + uint64(i))})
		if err != nil {
			c.t.Fatal(err)
		}
		cfg := c.clientConfig()
		cfg.Pool = pool
		cl, err := sm.NewClient(cfg)
		if err != nil {
			c.t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(c.seed, uint64(i)+0xc11e))
		w := &workload{client: i, keys: sc.keys, seen: map[string]Output{}, intn: rng.IntN}
		reader := i < sc.readers
		mode := sm.Linearizable
		if sc.skipReadIndex {
			mode = sm.Follower
		}
		wg.Go(func() { runTCPClient(ctx, cl, h, i, w, reader, mode) })
		closers = append(closers, func() {
			cctx, ccancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer ccancel()
			cl.Close(cctx)
			pool.Close()
		})
	}
	return func() {
		cancel()
		wg.Wait()
		for _, f := range closers {
			f()
		}
	}
}

// runTCPClient runs w's operations through cl until ctx ends. An
// operation that fails in any way (a timeout, a broken connection, a
// session the host forgot) is left pending: it may or may not have
// happened. A reader only reads. Reads go in mode, which the history
// records as linearizable whatever it is.
func runTCPClient(ctx context.Context, cl *sm.Client, h *History, idx int, w *workload, reader bool, mode sm.ReadMode) {
	for ctx.Err() == nil {
		in := w.next(reader)
		id := h.Invoke(idx, in)
		octx, cancel := context.WithTimeout(ctx, tcpOpTimeout)
		out, err := perform(octx, cl, mode, in)
		cancel()
		if err == nil {
			h.Return(id, out)
			h.Annotate(id, fmt.Sprintf("client at index %d", cl.Seen()))
			w.saw(in, out)
		}
	}
}

// startSubscribers starts subscribers to the changes of the Value, of
// the Number, of the Map key k0 and of every key of the Map, on the
// faulty transport.
func (c *tcpCluster) startSubscribers(h *History, sc tcpScenario) ([]*subscriber, func()) {
	ctx, cancel := context.WithCancel(c.t.Context())
	var subs []*subscriber
	var wg sync.WaitGroup
	for i, key := range subscribed {
		idx := sc.clients + i
		s, err := newSubscriber(c.tn.dialer(1000+uint64(idx)), c.clientConfig(), h, idx, key)
		if err != nil {
			c.t.Fatal(err)
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
			s.close(cctx)
		}
	}
}

// TestLinearizableTCPCatchesAcksBeforeSync is the negative control of
// the disk faults: members whose disks acknowledge a sync before it is
// done (each Sync makes durable only what the previous one saw), so that
// the WAL acknowledges writes a crash loses, crash all at once again and
// again. The checker must reject the history, or a stream, of one of a
// fixed few seeds: an acknowledged write lost shows.
func TestLinearizableTCPCatchesAcksBeforeSync(t *testing.T) {
	sc := tcpScenario{name: "acks_before_sync", members: 3, clients: 5, keys: 2, brokenSync: true,
		nemesis: tcpCrashAll, phase: 2 * time.Second, settle: time.Second, minAfterHeal: 1}
	expectCaughtTCP(t, "TestLinearizableTCPCatchesAcksBeforeSync", sc)
}

// TestLinearizableTCPCatchesReadsWithoutReadIndex is the broken variant
// on real TCP: reads skip the read index (sent as sm.Follower reads,
// recorded as linearizable) while partitions, some asymmetric, cut
// members off. Two of the clients only read, so they stay with the
// member they first reached even when it falls behind. The checker must
// reject the history of one of a fixed few seeds.
func TestLinearizableTCPCatchesReadsWithoutReadIndex(t *testing.T) {
	sc := tcpScenario{name: "reads_without_read_index", members: 5, clients: 5, readers: 2, keys: 2, skipReadIndex: true,
		nemesis: tcpPartitions, phase: 2 * time.Second, settle: 500 * time.Millisecond, minAfterHeal: 1}
	expectCaughtTCP(t, "TestLinearizableTCPCatchesReadsWithoutReadIndex", sc)
}

// expectCaughtTCP runs the negative control sc for a fixed few seeds
// and fails t unless the checker rejects the history, or a stream, of
// one of them.
func expectCaughtTCP(t *testing.T, test string, sc tcpScenario) {
	if testing.Short() {
		t.Skip("real TCP runs take seconds each")
	}
	first := uint64(1)
	if *seedFlag != 0 {
		first = *seedFlag
	}
	for seed := first; seed < first+3; seed++ {
		r := runTCP(t, sc, seed)
		var caught []string
		for _, s := range r.streams {
			for _, err := range checkStream(r.ops, s) {
				caught = append(caught, fmt.Sprintf("%v: %v", s, err))
			}
		}
		res, info := checkHistory(r.ops)
		if res == porcupine.Illegal {
			caught = append(caught, "porcupine rejects the history: "+saveFailure(t, t.TempDir(), info, r.ops))
		}
		t.Logf("seed %d: %d operations, %d crashes losing %d bytes; caught: %q; other symptoms: %q",
			seed, len(r.ops), r.lossy, r.lostBytes, caught, r.symptoms)
		if len(caught) > 0 {
			return
		}
	}
	t.Errorf("the checker accepted every history of %s (seeds %d to %d): it does not bite\n"+
		"replay: go test ./linearizability -run '^%s$' -seed %d -v", sc.name, first, first+2, test, first)
}

// leaderTransfer returns the leader's TransferLeadership, or nil while no
// member leads.
func (c *tcpCluster) leaderTransfer() func(context.Context, uint64) error {
	if _, lead := c.leader(); lead != nil {
		return lead.Raft().TransferLeadership
	}
	return nil
}
