package rafttest

import (
	"math/rand/v2"
	"testing"

	"github.com/bifrost-go/bifrost/raft"
)

// Lab 3C by intent: persistence, Figure 8, unreliable networks, churn.

// Crashes of everyone, of the leader and of a follower lose nothing
// committed, and the cluster goes on.
func TestPersist1(t *testing.T) {
	forSeeds(t, func(t *testing.T, seed uint64) {
		c := newCluster(t, 3, seed)
		c.WaitLeader(3 * et)
		c.One(c.Command(8), 3, 4*et)

		for _, id := range c.IDs() {
			c.Crash(id)
		}
		for _, id := range c.IDs() {
			c.Restart(id)
		}
		c.One(c.Command(8), 3, 10*et)

		l := c.Leader()
		c.Crash(l)
		c.Restart(l)
		c.One(c.Command(8), 3, 10*et)

		l = c.Leader()
		c.Crash(l)
		c.One(c.Command(8), 2, 10*et)
		c.Restart(l)
		c.One(c.Command(8), 3, 10*et)

		f := others(c, c.Leader())[0]
		c.Crash(f)
		c.One(c.Command(8), 2, 10*et)
		c.Restart(f)
		index := c.One(c.Command(8), 3, 10*et)
		for _, id := range c.IDs() {
			if c.Applied(id) < index {
				c.Fatalf("node %d applied %d, want %d", id, c.Applied(id), index)
			}
		}
	})
}

// Repeatedly crash a minority and then the rest but one, restarting them:
// agreement continues at every step.
func TestPersist2(t *testing.T) {
	forSeeds(t, func(t *testing.T, seed uint64) {
		c := newCluster(t, 5, seed)
		c.WaitLeader(3 * et)
		index := uint64(0)
		for range 5 {
			c.One(c.Command(8), 5, 10*et)
			l := c.Leader()
			f := others(c, l)
			c.Crash(f[0])
			c.Crash(f[1])
			c.One(c.Command(8), 3, 10*et)
			c.Crash(l)
			c.Crash(f[2])
			c.Crash(f[3])
			c.Restart(f[0])
			c.Restart(f[1])
			c.Run(et)
			c.Restart(f[2])
			c.One(c.Command(8), 3, 10*et)
			c.Restart(l)
			c.Restart(f[3])
			index = c.One(c.Command(8), 5, 10*et)
		}
		if n := c.NApplied(index); n != 5 {
			c.Fatalf("index %d applied on %d nodes", index, n)
		}
	})
}

// A partitioned follower, then the two others crash; the follower and
// the restarted leader form a quorum that still holds every commit.
func TestPersist3(t *testing.T) {
	forSeeds(t, func(t *testing.T, seed uint64) {
		c, l := startCluster(t, 3, seed)
		f := others(c, l)
		c.Isolate(f[1])
		c.One(c.Command(8), 2, 4*et)
		c.Crash(l)
		c.Crash(f[0])
		c.Reconnect(f[1])
		c.Restart(l)
		c.One(c.Command(8), 2, 10*et)
		c.Restart(f[0])
		c.One(c.Command(8), 3, 10*et)
	})
}

// Figure 8 of the Raft paper, with crashes: leaders come and go with
// entries replicated on some nodes only. An entry of an earlier term must
// never be committed by counting replicas, or a later leader overwrites
// it; the checker catches that as a lost commit.
func TestFigure8(t *testing.T) {
	forSeeds(t, func(t *testing.T, seed uint64) {
		c := newCluster(t, 5, seed)
		r := rand.New(rand.NewPCG(seed, 8))
		c.WaitLeader(3 * et)
		c.One(c.Command(8), 1, 4*et)
		figure8(c, r, 1000, func(l uint64) { c.Crash(l) }, func(id uint64) { c.Restart(id) })
		c.CheckLiveness(10*et, 20*et)
	})
}

// figure8 runs iterations of: propose to every node that thinks it leads,
// wait a little (rarely a lot), maybe take the leader down, and bring one
// back when fewer than three of five are up.
func figure8(c *Cluster, r *rand.Rand, iterations int, down, up func(uint64)) {
	isUp := map[uint64]bool{}
	for _, id := range c.IDs() {
		isUp[id] = true
	}
	for range iterations {
		for _, id := range c.Leaders() {
			c.ProposeTo(id, c.Command(8))
		}
		if r.IntN(10) == 0 {
			c.Run(r.IntN(5 * et))
		} else {
			c.Run(r.IntN(2))
		}
		if l := c.Leader(); l != 0 && r.IntN(2) == 0 {
			down(l)
			isUp[l] = false
		}
		n := 0
		for _, u := range isUp {
			if u {
				n++
			}
		}
		if n < 3 {
			id := uint64(1 + r.IntN(5))
			if !isUp[id] {
				up(id)
				isUp[id] = true
			}
		}
	}
}

// Agreement on a network that drops, duplicates, delays and reorders.
func TestUnreliableAgree(t *testing.T) {
	forSeeds(t, func(t *testing.T, seed uint64) {
		c := NewCluster(t, Options{Nodes: 5, Seed: seed, Faults: unreliable()})
		for range 50 {
			c.Propose(c.Command(8))
			c.Run(1)
		}
		for range 5 {
			c.One(c.Command(8), 1, 20*et)
		}
		c.CheckLiveness(10*et, 20*et)
		if len(c.Acked()) < 5 {
			c.Fatalf("only %d commands acknowledged", len(c.Acked()))
		}
	})
}

// unreliable is the lab's unreliable network, scaled to ticks: delays up
// to 2.7 ticks, reordered, a tenth of messages lost, some duplicated.
func unreliable() Faults {
	return Faults{DelayMax: 27, Reorder: true, Drop: 0.1, Duplicate: 0.05}
}

// Figure 8 on an unreliable network with long reordering, leaders cut off
// instead of crashed.
func TestFigure8Unreliable(t *testing.T) {
	forSeeds(t, func(t *testing.T, seed uint64) {
		f := unreliable()
		f.LongDelay, f.LongDelayMin, f.LongDelayMax = 0.05, 20*TickUnits, 220*TickUnits
		c := NewCluster(t, Options{Nodes: 5, Seed: seed, Faults: f})
		r := rand.New(rand.NewPCG(seed, 88))
		c.One(c.Command(8), 1, 20*et)
		figure8(c, r, 1000, func(l uint64) { c.Isolate(l) }, func(id uint64) { c.Reconnect(id) })
		c.CheckLiveness(30*et, 30*et)
	})
}

// Nodes crash, restart and get cut off at random while a client keeps
// proposing; afterwards every acknowledged command is on every node.
func TestChurn(t *testing.T) {
	for _, tc := range []struct {
		name   string
		faults Faults
	}{
		{"reliable", Faults{}},
		{"unreliable", unreliable()},
		{"torn-writes", Faults{DelayMax: 10, TornWrite: 0.02}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			forSeeds(t, func(t *testing.T, seed uint64) {
				c := NewCluster(t, Options{Nodes: 5, Seed: seed, Faults: tc.faults})
				r := rand.New(rand.NewPCG(seed, 3))
				for range 500 {
					churn(c, r)
					for range r.IntN(3) {
						c.Propose(c.Command(8))
					}
					c.Run(1)
				}
				c.CheckLiveness(20*et, 20*et)
				if len(c.Acked()) == 0 {
					c.Fatalf("no command acknowledged in 500 ticks of churn")
				}
			})
		})
	}
}

func churn(c *Cluster, r *rand.Rand) {
	id := uint64(1 + r.IntN(5))
	switch r.IntN(40) {
	case 0:
		c.Crash(id)
	case 1, 2:
		c.Restart(id)
	case 3:
		c.Isolate(id)
	case 4, 5:
		c.Reconnect(id)
	}
}

// A restarted node whose state machine starts empty is handed every
// committed entry again, in order, and applies the same commands.
func TestRestartVolatileApp(t *testing.T) {
	forSeeds(t, func(t *testing.T, seed uint64) {
		c := NewCluster(t, Options{Nodes: 3, Seed: seed, VolatileApp: true})
		c.WaitLeader(3 * et)
		var index uint64
		for range 10 {
			index = c.One(c.Command(8), 3, 4*et)
		}
		f := others(c, c.Leader())[0]
		c.Crash(f)
		c.Restart(f)
		c.MustRunUntil("the restarted node applying everything again",
			func() bool { return c.Applied(f) >= index }, 4*et)
		c.CheckLiveness(10*et, 10*et)
	})
}

// A node that restarts keeps its term and vote: it never votes twice in a
// term, even when crashed right after voting.
func TestCrashAfterVote(t *testing.T) {
	forSeeds(t, func(t *testing.T, seed uint64) {
		c := NewCluster(t, Options{Nodes: 3, Seed: seed, Config: raft.Config{DisablePreVote: true}})
		r := rand.New(rand.NewPCG(seed, 5))
		for range 300 {
			if r.IntN(4) == 0 {
				id := uint64(1 + r.IntN(3))
				c.Crash(id)
				c.Restart(id)
			}
			c.Run(1)
		}
		c.CheckLiveness(10*et, 10*et)
	})
}

// A leader whose disk is slower than its followers' hears their
// acknowledgements before its own write is durable; its entry must not
// count towards the quorum until then (the checker verifies every commit
// is durable on a quorum).
func TestSlowDisks(t *testing.T) {
	forSeeds(t, func(t *testing.T, seed uint64) {
		c := NewCluster(t, Options{Nodes: 3, Seed: seed, Faults: Faults{DiskDelay: 25}})
		r := rand.New(rand.NewPCG(seed, 9))
		for range 300 {
			for range r.IntN(3) {
				c.Propose(c.Command(8))
			}
			if r.IntN(100) == 0 {
				c.Crash(uint64(1 + r.IntN(3)))
			}
			if r.IntN(20) == 0 {
				c.Restart(uint64(1 + r.IntN(3)))
			}
			c.Run(1)
		}
		c.CheckLiveness(10*et, 20*et)
		if len(c.Acked()) == 0 {
			c.Fatalf("nothing acknowledged")
		}
	})
}

// Figure 8 of the Raft paper, step by step. An entry X of an old term
// reaches a majority under a later leader; that leader must not count it
// committed (only entries of its own term commit by counting), because a
// node holding a newer-term entry at X's index can still win and replace
// X. One entry per message and one message in flight let the test stop
// replication between X and the new leader's no-op.
func TestFigure8Exact(t *testing.T) {
	overwritten := 0
	for seed := range uint64(40) {
		if figure8Exact(t, seed) {
			overwritten++
		}
	}
	if overwritten == 0 {
		t.Fatalf("no seed reached the step where X is replaced")
	}
	t.Logf("X replaced by the newer-term entry in %d of 40 seeds", overwritten)
}

func figure8Exact(t *testing.T, seed uint64) (overwritten bool) {
	c := NewCluster(t, Options{Nodes: 5, Seed: seed, Config: raft.Config{MaxMsgEntries: 1, MaxInflight: 1}})
	l := c.WaitLeader(3 * et)
	c.One(c.Command(8), 5, 4*et)
	rest := others(c, l)
	a, g := rest[0], rest[1:]

	// (a) The leader replicates X to one follower only.
	c.Partition([]uint64{l, a}, g[:1], g[1:2], g[2:])
	x, ok := c.ProposeTo(l, c.Command(8))
	if !ok {
		c.Fatalf("leader %d refused X", l)
	}
	xTerm := c.Status(l).Term
	c.MustRunUntil("X on the follower", func() bool { return c.Status(a).LastIndex >= x }, et)

	// (b) The leader crashes; one of the other three wins and crashes
	// with its no-op, of a newer term, at X's index, replicated nowhere.
	c.Crash(l)
	c.Partition([]uint64{a}, g)
	s5 := waitLeaderAmong(c, g, 10*et)
	c.Isolate(s5)
	if log := c.Log(s5); uint64(len(log)) < x || log[x-1].Term <= xTerm {
		c.Fatalf("node %d won without its own entry at index %d", s5, x)
	}
	c.Crash(s5)
	r := others(c, l, a, s5)

	// (c) The first leader restarts; it or the follower with X wins, and
	// replicates X to a third node, which makes a majority, and no more.
	c.Restart(l)
	c.Partition([]uint64{l, a, r[0]}, r[1:])
	s1 := waitLeaderAmong(c, []uint64{l, a}, 10*et)
	holdsX := func(id uint64) bool { lg := c.Log(id); return uint64(len(lg)) >= x && lg[x-1].Term == xTerm }
	c.MustRunUntil("X on a majority", func() bool { return holdsX(r[0]) }, 10*et)
	c.Cut(s1, r[0]) // its acknowledgement still arrives; the no-op does not
	c.Run(1)
	if st := c.Status(s1); st.Commit >= x {
		c.Fatalf("leader %d (term %d) committed index %d of term %d by counting replicas (Figure 8)", s1, st.Term, x, xTerm)
	}

	// (d) That leader crashes; the node with the newer entry may win and
	// replace X everywhere. The checker fails the run if X had been
	// applied anywhere.
	c.Crash(s1)
	c.Restart(s5)
	c.Partition([]uint64{s5, r[0], r[1]})
	waitLeaderAmong(c, []uint64{s5, r[0], r[1]}, 20*et)
	c.Run(5 * et)
	overwritten = !holdsX(r[0])
	c.CheckLiveness(20*et, 20*et)
	return overwritten
}

// A leader whose disk hangs must not hold the cluster: its driver goes
// on heartbeating, but once its write has been in flight for
// WriteStallTicks it steps down, the others elect a leader and go on;
// when the disk comes back, it rejoins.
func TestLeaderDiskStall(t *testing.T) {
	forSeeds(t, func(t *testing.T, seed uint64) {
		c, l := startCluster(t, 3, seed)
		c.StallDisk(l, 50*et)
		c.ProposeTo(l, c.Command(8)) // its write hangs
		l2 := waitLeaderAmong(c, others(c, l), 3*et+5*et)
		c.One(c.Command(8), 2, 5*et)
		if c.Status(l2).Role != raft.RoleLeader {
			c.Fatalf("leader %d lost its leadership while the old leader's disk hangs", l2)
		}
		c.CheckLiveness(10*et, 10*et)
	})
}
