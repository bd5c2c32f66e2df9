package rafttest

import (
	"slices"
	"testing"

	"github.com/bifrost-go/bifrost/raft"
)

// Configuration changes and leadership transfer under faults.

func newMemberCluster(t *testing.T, nodes, spares int, seed uint64, cfg raft.Config) *Cluster {
	return NewCluster(t, Options{Nodes: nodes, Spares: spares, Seed: seed, Config: cfg, SnapshotEvery: 10, TraceEvents: *traceFlag})
}

func isVoter(c *Cluster, id uint64) bool {
	voters, _ := c.Configuration()
	return slices.Contains(voters, id)
}

func isMember(c *Cluster, id uint64) bool { return slices.Contains(c.Members(), id) }

// waitConf runs until the leader has committed its configuration and
// cond holds of it, and fails the test, naming what, if not in time.
func waitConf(c *Cluster, what string, cond func() bool, maxTicks int) {
	c.t.Helper()
	c.MustRunUntil(what, func() bool {
		l := c.Leader()
		return l != 0 && c.Status(l).Commit == c.Status(l).LastIndex && cond()
	}, maxTicks)
}

// A node added as a learner on a lossy network catches up (by snapshot:
// the others compact) and is promoted by the leader on its own.
func TestAddLearnerPromoted(t *testing.T) {
	forSeeds(t, func(t *testing.T, seed uint64) {
		c := newMemberCluster(t, 3, 2, seed, raft.Config{PromoteLag: 5})
		c.WaitLeader(3 * et)
		for range 25 {
			c.One(c.Command(8), 3, 4*et)
		}
		c.SetFaults(Faults{Drop: 0.1, DelayMax: 10})
		for want := uint64(4); want <= 5; want++ {
			var id uint64
			c.MustRunUntil("adding a learner", func() bool {
				var ok bool
				id, ok = c.AddNode()
				c.Run(1)
				return ok
			}, 20*et)
			if id != want {
				t.Fatalf("added node %d, want %d", id, want)
			}
			waitConf(c, "promotion", func() bool { return isVoter(c, id) }, 60*et)
		}
		c.One(c.Command(8), 5, 20*et)
		if c.Events().Installs == 0 {
			t.Fatalf("the new nodes caught up without a snapshot")
		}
		c.CheckLiveness(30*et, 60*et)
	})
}

// removeAndWait removes id through the leader and runs until the leader's
// configuration without it is committed.
func removeAndWait(c *Cluster, id uint64, maxTicks int) {
	c.t.Helper()
	c.MustRunUntil("removing a member", func() bool {
		ok := c.RemoveNode(id)
		c.Run(1)
		return ok
	}, maxTicks)
	waitConf(c, "the removal", func() bool { return !isMember(c, id) }, maxTicks)
}

// After a follower is removed, the remaining four commit with one of
// them down: quorums count the new configuration.
func TestRemoveFollower(t *testing.T) {
	forSeeds(t, func(t *testing.T, seed uint64) {
		c := newMemberCluster(t, 5, 0, seed, raft.Config{})
		lead := c.WaitLeader(3 * et)
		c.One(c.Command(8), 5, 4*et)
		f := others(c, lead)[0]
		removeAndWait(c, f, 20*et)
		c.Crash(others(c, lead, f)[0])
		c.One(c.Command(8), 3, 20*et)
		if !c.Alive(f) || c.Status(f).Role == raft.RoleLeader {
			t.Fatalf("removed node %d: alive %v, status %+v", f, c.Alive(f), c.Status(f))
		}
	})
}

// The leader removes itself: it leads until the change commits, then
// hands over; the others go on and it never leads again.
func TestRemoveLeader(t *testing.T) {
	forSeeds(t, func(t *testing.T, seed uint64) {
		c := newMemberCluster(t, 3, 0, seed, raft.Config{})
		old := c.WaitLeader(3 * et)
		c.One(c.Command(8), 3, 4*et)
		c.MustRunUntil("proposing the removal", func() bool { return c.RemoveNode(old) }, 10*et)
		rest := others(c, old)
		c.MustRunUntil("a new leader", func() bool { return leaderAmong(c, rest) != 0 && c.Leader() != old }, 10*et)
		c.One(c.Command(8), 2, 10*et)
		for range 10 * et {
			c.Run(1)
			if c.Status(old).Role == raft.RoleLeader {
				t.Fatalf("removed node %d leads again", old)
			}
		}
		c.One(c.Command(8), 2, 10*et)
	})
}

// A follower cut off while it is removed never hears of its removal: it
// campaigns with ever higher terms (no pre-vote), and once back it must
// not depose the leader nor change the term.
func TestRemovedNodeCannotDisrupt(t *testing.T) {
	forSeeds(t, func(t *testing.T, seed uint64) {
		c := newMemberCluster(t, 5, 0, seed, raft.Config{DisablePreVote: true})
		lead := c.WaitLeader(3 * et)
		c.One(c.Command(8), 5, 4*et)
		f := others(c, lead)[0]
		c.Isolate(f)
		removeAndWait(c, f, 20*et)
		c.Run(10 * et) // f campaigns alone
		lead, term := c.Leader(), c.Status(c.Leader()).Term
		c.Reconnect(f)
		for range 20 * et {
			c.Run(1)
			if l := c.Leader(); l != lead || c.Status(l).Term != term {
				t.Fatalf("removed node %d disrupted: leader %d term %d became leader %d term %d", f, lead, term, l, c.Status(l).Term)
			}
		}
		c.One(c.Command(8), 4, 10*et)
	})
}

// A leader cut off in a minority cannot change the configuration; the
// majority can, and after healing its configuration is everyone's. (The
// minority adds a learner: an uncommitted removal of a node that later
// leads would hit TestRegression_RefusesLeaderOutsideConfiguration.)
func TestConfChangeInMinority(t *testing.T) {
	forSeeds(t, func(t *testing.T, seed uint64) {
		c := newMemberCluster(t, 5, 1, seed, raft.Config{DisableCheckQuorum: true})
		old := c.WaitLeader(3 * et)
		c.One(c.Command(8), 5, 4*et)
		minority := []uint64{old, others(c, old)[0]}
		majority := others(c, minority...)
		c.Partition(minority, majority)
		victim, ok := c.AddNode() // taken by the old leader, never committed
		if !ok {
			t.Fatalf("leader %d refused to add a learner", old)
		}
		c.Partition(append(minority, victim), majority)
		lead := waitLeaderAmong(c, majority, 10*et)
		c.One(c.Command(8), 3, 10*et)
		removeAndWait(c, minority[1], 20*et)
		if st := c.Status(old); st.Commit > c.Status(lead).Commit {
			t.Fatalf("minority leader %d committed %d, beyond the majority's %d", old, st.Commit, c.Status(lead).Commit)
		}
		c.HealNetwork()
		c.One(c.Command(8), 4, 20*et)
		if isMember(c, victim) || isMember(c, minority[1]) {
			voters, learners := c.Configuration()
			t.Fatalf("configuration %v %v: want neither %d nor %d", voters, learners, victim, minority[1])
		}
	})
}

// Leadership moves around while a client proposes every tick; nothing
// acknowledged is lost.
func TestTransferDuringLoad(t *testing.T) {
	forSeeds(t, func(t *testing.T, seed uint64) {
		c := newMemberCluster(t, 5, 0, seed, raft.Config{})
		c.WaitLeader(3 * et)
		c.SetFaults(Faults{DelayMax: 8, Drop: 0.02})
		moved := 0
		for i := range 40 * et {
			c.Propose(c.Command(8))
			c.Propose(c.Command(8))
			if i%et == 0 {
				l := c.Leader()
				if c.TransferLeadership(0) {
					if c.RunUntil(func() bool { return c.Leader() != 0 && c.Leader() != l }, 2*et) {
						moved++
					}
				}
			}
			c.Run(1)
		}
		if moved < 10 {
			t.Fatalf("leadership moved %d times, want at least 10", moved)
		}
		c.CheckLiveness(30*et, 60*et)
		if len(c.Acked()) < 100 {
			t.Fatalf("only %d commands acknowledged", len(c.Acked()))
		}
	})
}
