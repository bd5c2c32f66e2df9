package rafttest

import (
	"errors"
	"fmt"
	"math/rand/v2"

	"github.com/bifrost-go/bifrost/raft"
)

// TB is the part of testing.TB the simulator needs. A *testing.T or
// *testing.B satisfies it. Fatalf must not return (testing's calls
// runtime.Goexit); a harness running many seeds may panic instead and
// recover around the run.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Logf(format string, args ...any)
}

// Options configures a simulated cluster.
type Options struct {
	// Nodes is the number of voters, with ids 1 to Nodes. Default 3.
	Nodes int
	// Seed drives every random choice of the run: network delays and
	// faults, torn writes, each core's election timeouts. The same seed
	// and the same calls give the same run.
	Seed uint64
	// Config is the template for every node's raft.Config. The simulator
	// sets ID, Voters, Seed, HardState, Entries and Applied; the zero value
	// uses the core's defaults, but for SnapshotCatchUpEntries: zero keeps
	// no entries behind a snapshot here, so that lagging followers are
	// sent snapshots often.
	Config raft.Config
	// Faults is the network and disk behaviour at the start; see SetFaults.
	Faults Faults
	// VolatileApp makes a restarted node's state machine start empty
	// (Applied 0), so the core must hand every committed entry out again.
	// By default the state machine is durable and resumes where it was.
	VolatileApp bool
	// SnapshotEvery makes every node snapshot its state and compact its
	// log (raft.Core.Compact) whenever it applied this many entries since
	// its newest snapshot. Zero: only when Snapshot is called.
	SnapshotEvery int
	// SnapshotChunkBytes is the size of the snapshot chunks leaders send
	// to followers that need a snapshot. Default 16, so that snapshots
	// span several chunks.
	SnapshotChunkBytes int
	// Spares is the number of nodes, with ids Nodes+1 to Nodes+Spares,
	// that are not members at first and not running: AddNode starts one
	// as a learner with empty storage.
	Spares int
	// TraceEvents is how many recent events a failure report shows.
	// Default 80.
	TraceEvents int
}

// Ack is a command the client was told is committed: the proposing
// leader handed an entry with the proposal's index and term out as
// committed.
type Ack struct {
	Index, Term uint64
	Leader      uint64
	Data        []byte
}

// Cluster is a simulated raft group: cores, clock, network, disks and a
// client, all driven by one goroutine from one seed. Every input to a core
// is followed by its Ready being persisted, sent and applied, and by the
// invariant checks; the first violation fails the test with the seed and
// a trace of the last events. A Cluster is not safe for concurrent use.
type Cluster struct {
	t     TB
	opts  Options
	rng   *rand.Rand
	now   Time
	nodes []*node  // nodes[i] has id i+1, spares included
	ids   []uint64 // the nodes ever started: members, removed nodes and nodes joining
	net   network
	stats counters
	trace trace
	check checker
	acked []Ack
	// maxAcked is the highest index acknowledged to the client: a read
	// that begins now must see it.
	maxAcked uint64
	cmds     uint64 // proposals made, for unique command data
	events   Events
	reads    reads

	// Deliberate bugs, set only by the package's own tests to check that
	// the checker catches what it claims to.
	tamper  func(m *raft.Message) // rewrites every message delivered
	amnesia bool                  // restarts from an empty disk
	hasty   bool                  // the host sends AfterPersist before persisting
	badSnap bool                  // snapshots a state other than the applied one
}

// node is one simulated server, member or spare: its core (nil while
// crashed or not yet started) and its disk.
type node struct {
	id          uint64
	core        *raft.Core
	driver      *raft.Driver // runs the Ready protocol for core
	host        *host        // the driver's way to this node's disk, network and application
	phase       Time         // tick offset within TickUnits, so nodes do not tick in lockstep
	incarnation int
	disk        disk
	applied     uint64 // the state machine's applied index in this incarnation
	state       uint64 // the state machine's state (appState) at applied
	recv        []byte // a snapshot arriving from the leader, in memory
	whole       []byte // the snapshot the Ready being written installs
	// sending holds, by follower, the snapshot a transfer to it started
	// with (see raft.Ready.SnapshotRequests).
	sending map[uint64]heldSnapshot
	// voters and learners are the configuration the node was first
	// started with (raft.Config.Voters and Learners), for restarts.
	voters, learners []uint64
	// Last status seen in this incarnation, to check monotonicity.
	term, commit uint64
	role         raft.Role
	conf         string              // the configuration last traced, as "voters [..] learners [..]"
	pending      map[uint64]proposal // proposals awaiting their outcome, by index
	proposed     bool                // proposals made since the last Ready
	writing      *raft.Ready         // the Ready whose writes are not yet synced
	// writingCommit is the cluster's commit index when the node took
	// writing: what its writes must not overwrite (see saveEntries).
	writingCommit uint64
	syncAt        Time // when they will be
	stallUntil    Time // no write completes before this (StallDisk)
}

type proposal struct {
	term uint64
	data []byte
}

// NewCluster starts a cluster of fresh nodes. No time passes until Run.
func NewCluster(t TB, opts Options) *Cluster {
	t.Helper()
	if opts.Nodes == 0 {
		opts.Nodes = 3
	}
	if opts.TraceEvents == 0 {
		opts.TraceEvents = 80
	}
	if opts.Config.SnapshotCatchUpEntries == 0 {
		opts.Config.SnapshotCatchUpEntries = -1
	}
	c := &Cluster{
		t:     t,
		opts:  opts,
		rng:   rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15)),
		net:   newNetwork(opts.Nodes + opts.Spares),
		trace: newTrace(opts.TraceEvents),
		check: newChecker(),
	}
	c.net.faults = opts.Faults.normalized()
	for i := range opts.Nodes {
		c.ids = append(c.ids, uint64(i+1))
	}
	for i := range opts.Nodes + opts.Spares {
		c.nodes = append(c.nodes, &node{id: uint64(i + 1), phase: Time(c.rng.IntN(int(TickUnits)))})
	}
	for _, id := range c.ids {
		n := c.node(id)
		n.voters = c.IDs()
		c.start(n)
	}
	return c
}

// Seed returns the seed the cluster was built from.
func (c *Cluster) Seed() uint64 { return c.opts.Seed }

// Now returns the simulated time.
func (c *Cluster) Now() Time { return c.now }

// IDs returns the ids of every node started so far, in order: the
// initial members, those added (AddNode) and those removed, which keep
// running.
func (c *Cluster) IDs() []uint64 { return append([]uint64(nil), c.ids...) }

// ElectionTicks returns the configured election timeout in ticks.
func (c *Cluster) ElectionTicks() int {
	if c.opts.Config.ElectionTicks > 0 {
		return c.opts.Config.ElectionTicks
	}
	return 10
}

func (c *Cluster) node(id uint64) *node {
	if id == 0 || id > uint64(len(c.nodes)) {
		c.Fatalf("no node %d", id)
	}
	return c.nodes[id-1]
}

// Fatalf fails the test with the seed and the trace of recent events.
func (c *Cluster) Fatalf(format string, args ...any) {
	c.t.Helper()
	c.t.Fatalf("rafttest: seed %d, tick %d.%d: %s\nlast events:\n%s",
		c.opts.Seed, c.now/TickUnits, c.now%TickUnits, fmt.Sprintf(format, args...),
		c.trace.String(c.opts.TraceEvents))
}

// Logf logs through the test, prefixed with the simulated time.
func (c *Cluster) Logf(format string, args ...any) {
	c.t.Helper()
	c.t.Logf("tick %d.%d: %s", c.now/TickUnits, c.now%TickUnits, fmt.Sprintf(format, args...))
}

// Note adds a line to the trace, for scenario steps worth seeing in a
// failure report.
func (c *Cluster) Note(format string, args ...any) {
	c.trace.add(event{at: c.now, kind: evNote, note: fmt.Sprintf(format, args...)})
}

// Run advances the simulation by ticks ticks.
func (c *Cluster) Run(ticks int) {
	for range Time(ticks) * TickUnits {
		c.step()
	}
}

// RunUntil advances the simulation until cond holds, checking it after
// every time unit, for at most maxTicks ticks. It reports whether cond
// held.
func (c *Cluster) RunUntil(cond func() bool, maxTicks int) bool {
	for range Time(maxTicks) * TickUnits {
		if cond() {
			return true
		}
		c.step()
	}
	return cond()
}

// MustRunUntil is RunUntil that fails the test, naming what, if cond does
// not hold in time.
func (c *Cluster) MustRunUntil(what string, cond func() bool, maxTicks int) {
	c.t.Helper()
	if !c.RunUntil(cond, maxTicks) {
		c.Fatalf("%s: not within %d ticks", what, maxTicks)
	}
}

// step advances time by one unit: writes due become durable and pending
// proposals go out, then messages due arrive, then nodes whose tick falls
// on this unit tick.
func (c *Cluster) step() {
	c.now++
	for _, n := range c.nodes {
		if n.writing != nil && n.syncAt <= c.now {
			c.synced(n)
		}
		if n.proposed && n.core != nil {
			c.afterInput(n)
		}
	}
	for env := c.net.due(c.now); env != nil; env = c.net.due(c.now) {
		c.deliver(env)
	}
	for _, n := range c.nodes {
		if n.core != nil && (c.now+n.phase)%TickUnits == 0 {
			n.core.Tick()
			c.afterInput(n)
		}
	}
}

// afterInput runs the Ready protocol for n after a Tick, Step or
// Propose, through the raft.Driver that raft/node uses too: check what
// changed, then persist, send and apply until nothing is ready or a write
// is in flight.
func (c *Cluster) afterInput(n *node) {
	c.observe(n)
	n.proposed = false
	if n.core == nil {
		return
	}
	n.host.readys = 0
	c.driven(n, n.driver.Run())
}

// driven checks what a call of n's driver returned, and takes a snapshot
// if one is due.
func (c *Cluster) driven(n *node, err error) {
	if errors.Is(err, errCrashed) {
		return
	}
	if err != nil {
		c.Fatalf("node %d: driver: %v", n.id, err)
	}
	c.observe(n)
	c.maybeSnapshot(n)
}

// synced makes n's write durable once its time has come, and has the
// driver finish its Ready.
func (c *Cluster) synced(n *node) {
	c.saveWriting(n)
	n.host.readys = 0
	c.driven(n, n.driver.Synced())
}

// saveWriting makes the Ready n is writing durable.
func (c *Cluster) saveWriting(n *node) {
	rd := n.writing
	n.writing = nil
	c.save(n, rd, false)
	if rd.Role == raft.RoleLeader {
		c.checkCompleteness(n, rd.Term)
	}
}

// tornWrite keeps a random prefix of the unsynced writes of a node that
// crashed, as a log-structured store would after losing power before
// fsync. Entries are written before the hard state, so the hard state
// survives only if every entry did.
func (c *Cluster) tornWrite(n *node) string {
	rd := n.writing
	n.writing = nil
	// A snapshot is written first: without it, nothing after it survives.
	keepSnap := !rd.Snapshot.IsZero() && c.rng.IntN(2) == 0
	k := c.rng.IntN(len(rd.Entries) + 1)
	if !rd.Snapshot.IsZero() && !keepSnap {
		k = 0
	}
	keepHS := rd.HardStateChanged && k == len(rd.Entries) && c.rng.IntN(2) == 0 && (keepSnap || rd.Snapshot.IsZero())
	part := *rd
	part.Entries = rd.Entries[:k]
	part.HardStateChanged = keepHS
	if !keepSnap {
		part.Snapshot = raft.SnapshotMeta{}
	}
	c.save(n, &part, true)
	return fmt.Sprintf("kept %d of %d unsynced entries, hard state change kept=%v, snapshot kept=%v", k, len(rd.Entries), keepHS, keepSnap)
}

// send checks and puts messages on the wire, subject to the faults.
func (c *Cluster) send(n *node, msgs []raft.Message) {
	for i := range msgs {
		m := &msgs[i]
		c.checkSend(n, m)
		data, err := m.AppendBinary(nil)
		if err != nil {
			c.Fatalf("node %d: encoding %v: %v", n.id, m.Type, err)
		}
		c.stats.countSend(m, len(data))
		c.transmit(m, data)
	}
}

// maxInFlight bounds the messages on the simulated wire. No schedule
// needs nearly as many: more means nodes answer messages with messages
// without end, which a real network would carry too.
const maxInFlight = 50_000

func (c *Cluster) transmit(m *raft.Message, data []byte) {
	f := &c.net.faults
	switch {
	case c.net.cut[m.From][m.To]:
		c.dropped(m, "link cut")
		return
	case f.Drop > 0 && c.rng.Float64() < f.Drop:
		c.dropped(m, "lost")
		return
	}
	c.trace.addMsg(c.now, evSend, m, "")
	if len(c.net.wire) >= maxInFlight {
		c.Fatalf("message storm: %d messages in flight, the last %s", len(c.net.wire), formatMsg(m, len(m.Entries)))
	}
	at, long := c.delay()
	if !f.Reorder && !long {
		at = c.net.inOrder(m.From, m.To, at)
	}
	c.net.push(at, m.From, m.To, data)
	if f.Duplicate > 0 && c.rng.Float64() < f.Duplicate {
		at, _ := c.delay()
		c.net.push(at, m.From, m.To, data)
	}
}

func (c *Cluster) dropped(m *raft.Message, why string) {
	c.stats.drop++
	c.trace.addMsg(c.now, evDrop, m, why)
}

// delay draws one message's arrival time, and whether it is held back
// long.
func (c *Cluster) delay() (Time, bool) {
	f := &c.net.faults
	if f.LongDelay > 0 && c.rng.Float64() < f.LongDelay {
		return c.now + f.LongDelayMin + Time(c.rng.Int64N(int64(f.LongDelayMax-f.LongDelayMin+1))), true
	}
	return c.now + f.DelayMin + Time(c.rng.Int64N(int64(f.DelayMax-f.DelayMin+1))), false
}

// deliver steps a message that arrived into its receiver, unless the
// receiver is down or the link was cut while the message was in flight.
func (c *Cluster) deliver(env *envelope) {
	var m raft.Message
	if err := m.UnmarshalBinary(env.data); err != nil {
		c.Fatalf("decoding a message %d->%d: %v", env.from, env.to, err)
	}
	to := c.nodes[env.to-1]
	switch {
	case to.core == nil:
		c.dropped(&m, "receiver down")
		return
	case c.net.cut[env.from][env.to]:
		c.dropped(&m, "link cut")
		return
	}
	if c.tamper != nil {
		c.tamper(&m)
	}
	c.stats.dlv++
	c.trace.addMsg(c.now, evDeliver, &m, "")
	err := to.core.Step(m)
	if errors.Is(err, raft.ErrUnknownPeer) {
		// From or to a node outside the configuration (a removed node,
		// or one that joins): refused, as a driver would drop it.
		c.trace.addMsg(c.now, evDrop, &m, "not a member")
		return
	}
	if err != nil {
		c.Fatalf("node %d: Step(%s): %v", to.id, formatMsg(&m, len(m.Entries)), err)
	}
	c.afterInput(to)
}

// start builds n's core from its disk: a fresh node or a restart.
func (c *Cluster) start(n *node) {
	if c.amnesia && n.incarnation > 0 {
		n.disk = disk{}
	}
	if c.opts.VolatileApp {
		n.disk.applied, n.disk.state = 0, 0
	}
	n.applied, n.state = n.disk.applied, n.disk.state
	if n.disk.snap.Index > n.applied {
		c.restoreApp(n)
	}
	cfg := c.opts.Config
	cfg.ID, cfg.Voters, cfg.Learners, cfg.Seed = n.id, n.voters, n.learners, c.rng.Uint64()
	cfg.HardState, cfg.Entries, cfg.Applied = n.disk.hs, n.disk.entries(), n.applied
	cfg.Snapshot = n.disk.snap
	core, err := raft.New(cfg)
	if err != nil {
		c.Fatalf("node %d: raft.New: %v", n.id, err)
	}
	n.core, n.pending, n.sending, n.recv = core, map[uint64]proposal{}, map[uint64]heldSnapshot{}, nil
	n.host = &host{c: c, n: n}
	n.driver = raft.NewDriver(core, n.host)
	n.whole = nil
	n.incarnation++
	st := core.Status()
	n.term, n.commit, n.role = st.Term, st.Commit, st.Role
	c.checkRestart(n, st)
	c.afterInput(n)
}

// down crashes n: its core and everything in memory are gone, the disk
// keeps what was synced. Proposals waiting on n never learn their outcome.
func (c *Cluster) down(n *node, ev event) {
	if n.writing != nil {
		ev.kind, ev.note = evTornCrash, c.tornWrite(n)
	}
	n.core, n.pending, n.driver, n.host = nil, nil, nil, nil
	ev.at, ev.node = c.now, n.id
	c.trace.add(ev)
}
