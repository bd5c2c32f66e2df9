package raft

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// This file is a tiny deterministic message pump for the core's own tests:
// nodes, their storage and a FIFO network, in one goroutine. The full
// simulator with faults and invariants lives in raft/rafttest.

// store is one node's durable state, as a driver would keep it.
type store struct {
	hs      HardState
	ents    []Entry
	applied []Entry     // what the application applied, in order
	reads   []ReadState // every ReadState handed out, in order
}

type cluster struct {
	t       *testing.T
	ids     []uint64
	nodes   map[uint64]*Core
	stores  map[uint64]*store
	down    map[uint64]bool
	queue   []Message
	tweak   func(*Config)
	drop    func(Message) bool // network filter; nil drops nothing
	sent    []Message          // every message handed to the network
	rng     *rand.Rand         // reorders the queue when shuffle is set
	shuffle bool
	leaders map[uint64]uint64 // term -> the node that led it
	// lazy drivers persist asynchronously: a node's Ready waits while it
	// keeps stepping messages, and a crash loses it.
	lazy    bool
	pending map[uint64]*Ready
	// initial are the voters every node starts with; a node started
	// later (join) starts as a learner of them.
	initial []uint64
	// allowUnknown lets Step refuse messages with ErrUnknownPeer (a node
	// outside the configuration); otherwise that fails the test.
	allowUnknown bool
}

func newCluster(t *testing.T, n int, tweak func(*Config)) *cluster {
	t.Helper()
	cl := &cluster{t: t, nodes: map[uint64]*Core{}, stores: map[uint64]*store{},
		down: map[uint64]bool{}, tweak: tweak, rng: rand.New(rand.NewPCG(1, 2)),
		leaders: map[uint64]uint64{}, pending: map[uint64]*Ready{}}
	for i := 1; i <= n; i++ {
		cl.ids = append(cl.ids, uint64(i))
		cl.stores[uint64(i)] = &store{}
	}
	cl.initial = slices.Clone(cl.ids)
	for _, id := range cl.ids {
		cl.start(id)
	}
	return cl
}

// join starts node id, not in the initial configuration, as a learner.
func (cl *cluster) join(id uint64) {
	cl.ids = append(cl.ids, id)
	cl.stores[id] = &store{}
	cl.start(id)
}

// config is the configuration node id restarts with from its store.
func (cl *cluster) config(id uint64) Config {
	s := cl.stores[id]
	cfg := Config{ID: id, Voters: cl.initial, ElectionTicks: 10, Seed: 42,
		HardState: s.hs, Entries: slices.Clone(s.ents), Applied: uint64(len(s.applied))}
	if !slices.Contains(cl.initial, id) {
		cfg.Learners = []uint64{id}
	}
	if cl.tweak != nil {
		cl.tweak(&cfg)
	}
	return cfg
}

func (cl *cluster) start(id uint64) {
	cl.t.Helper()
	c, err := New(cl.config(id))
	if err != nil {
		cl.t.Fatalf("New(%d): %v", id, err)
	}
	cl.nodes[id] = c
	cl.down[id] = false
}

// crash loses everything not persisted; restart brings the node back.
func (cl *cluster) crash(id uint64) {
	cl.down[id] = true
	delete(cl.pending, id)
}
func (cl *cluster) restart(id uint64) {
	cl.start(id)
}

// process runs node id's Ready loop once, the way the doc's driver does.
// A lazy cluster splits it: the Ready is taken and its Messages sent now,
// and it is persisted later, at random, with messages stepped meanwhile.
func (cl *cluster) process(id uint64) bool {
	if cl.down[id] {
		return false
	}
	if rd := cl.pending[id]; rd != nil {
		if cl.rng.IntN(3) != 0 {
			return false
		}
		delete(cl.pending, id)
		cl.persist(id, *rd)
		return true
	}
	c := cl.nodes[id]
	if !c.HasReady() {
		return false
	}
	rd := c.Ready()
	cl.net(rd.Messages)
	if cl.lazy {
		cl.pending[id] = &rd
		return true
	}
	cl.persist(id, rd)
	return true
}

// persist makes rd durable, sends what waited for that, applies and
// advances.
func (cl *cluster) persist(id uint64, rd Ready) {
	c, s := cl.nodes[id], cl.stores[id]
	if rd.HardStateChanged {
		if rd.HardState.Commit < s.hs.Commit || rd.HardState.Term < s.hs.Term {
			cl.t.Fatalf("node %d hard state went back from %+v to %+v", id, s.hs, rd.HardState)
		}
		s.hs = rd.HardState
	}
	if len(rd.Entries) > 0 {
		s.ents = append(s.ents[:rd.Entries[0].Index-1], rd.Entries...)
	}
	cl.net(rd.AfterPersist)
	s.reads = append(s.reads, rd.ReadStates...)
	for _, e := range rd.Committed {
		if e.Index != uint64(len(s.applied))+1 {
			cl.t.Fatalf("node %d applied index %d after %d", id, e.Index, len(s.applied))
		}
		if e.Index > uint64(len(s.ents)) || s.ents[e.Index-1].Term != e.Term {
			cl.t.Fatalf("node %d applied entry %d that is not durable", id, e.Index)
		}
		s.applied = append(s.applied, e)
	}
	c.Advance(rd)
	cl.checkApplied()
	cl.checkLeader(id)
}

// checkLeader is election safety: at most one leader per term.
func (cl *cluster) checkLeader(id uint64) {
	cl.t.Helper()
	st := cl.nodes[id].Status()
	if st.Role != RoleLeader {
		return
	}
	if other, ok := cl.leaders[st.Term]; ok && other != id {
		cl.t.Fatalf("nodes %d and %d both lead term %d", other, id, st.Term)
	}
	cl.leaders[st.Term] = id
}

func (cl *cluster) net(ms []Message) {
	for _, m := range ms {
		cl.sent = append(cl.sent, m)
		if cl.drop == nil || !cl.drop(m) {
			cl.queue = append(cl.queue, m)
		}
	}
}

// checkApplied is state-machine safety: no two nodes apply different
// entries at one index.
func (cl *cluster) checkApplied() {
	cl.t.Helper()
	var ref []Entry
	for _, id := range cl.ids {
		a := cl.stores[id].applied
		for i := 0; i < min(len(a), len(ref)); i++ {
			if a[i].Term != ref[i].Term || string(a[i].Data) != string(ref[i].Data) {
				cl.t.Fatalf("index %d applied as %+v and %+v", i+1, a[i], ref[i])
			}
		}
		if len(a) > len(ref) {
			ref = a
		}
	}
}

// settle processes and delivers until nothing moves.
func (cl *cluster) settle() {
	cl.t.Helper()
	for steps := 0; ; steps++ {
		if steps > 100000 {
			cl.t.Fatal("cluster does not settle")
		}
		moved := false
		for _, id := range cl.ids {
			moved = cl.process(id) || moved
		}
		if len(cl.queue) == 0 && !moved && len(cl.pending) == 0 {
			return
		}
		cl.deliverOne()
	}
}

func (cl *cluster) deliverOne() {
	if len(cl.queue) == 0 {
		return
	}
	i := 0
	if cl.shuffle {
		i = cl.rng.IntN(len(cl.queue))
	}
	m := cl.queue[i]
	cl.queue = slices.Delete(cl.queue, i, i+1)
	if cl.down[m.To] {
		return
	}
	if err := cl.nodes[m.To].Step(m); err != nil && !(errors.Is(err, ErrUnknownPeer) && cl.allowUnknown) {
		cl.t.Fatalf("Step(%+v): %v", m, err)
	}
}

// tick ticks every live node once and settles.
func (cl *cluster) tick() {
	for _, id := range cl.ids {
		if !cl.down[id] {
			cl.nodes[id].Tick()
		}
	}
	cl.settle()
}

// elect makes id campaign and settles; it fails unless id then leads.
func (cl *cluster) elect(id uint64) {
	cl.t.Helper()
	cl.nodes[id].campaign(!cl.nodes[id].cfg.DisablePreVote)
	cl.settle()
	if st := cl.nodes[id].Status(); st.Role != RoleLeader {
		cl.t.Fatalf("node %d did not become leader: %+v", id, st)
	}
}

// leader returns the live leader of the highest term, or 0.
func (cl *cluster) leader() uint64 {
	var lead, term uint64
	for _, id := range cl.ids {
		st := cl.nodes[id].Status()
		if !cl.down[id] && st.Role == RoleLeader && st.Term >= term {
			lead, term = id, st.Term
		}
	}
	return lead
}

// propose proposes on id, failing the test if it is not the leader.
func (cl *cluster) propose(id uint64, data string) uint64 {
	cl.t.Helper()
	i, _, err := cl.nodes[id].Propose([]byte(data))
	if err != nil {
		cl.t.Fatalf("Propose on %d: %v", id, err)
	}
	return i
}

// applied returns the commands node id applied, no-ops left out.
func (cl *cluster) applied(id uint64) []string {
	var out []string
	for _, e := range cl.stores[id].applied {
		if e.Type == EntryNormal {
			out = append(out, string(e.Data))
		}
	}
	return out
}

func (cl *cluster) String() string {
	s := ""
	for _, id := range cl.ids {
		s += fmt.Sprintf("%+v down=%v\n", cl.nodes[id].Status(), cl.down[id])
	}
	return s
}
