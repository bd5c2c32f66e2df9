package rafttest

import (
	"math/rand/v2"
	"testing"

	"github.com/bifrost-go/bifrost/raft"
)

// Lab 3A by intent: elections.

func TestInitialElection(t *testing.T) {
	forSeeds(t, func(t *testing.T, seed uint64) {
		c := newCluster(t, 3, seed)
		lead := c.WaitLeader(3 * et)
		term := c.Status(lead).Term
		if term < 1 {
			c.Fatalf("leader %d has term %d", lead, term)
		}
		// With no failure, the leader and term stay.
		c.Run(20 * et)
		if got := c.Leader(); got != lead || c.Status(lead).Term != term {
			c.Fatalf("leader %d term %d became leader %d term %d without a failure", lead, term, got, c.Status(got).Term)
		}
		for _, id := range c.IDs() {
			if st := c.Status(id); st.Lead != lead || st.Term != term {
				c.Fatalf("node %d follows %d in term %d, want %d in term %d", id, st.Lead, st.Term, lead, term)
			}
		}
	})
}

func TestReElection(t *testing.T) {
	forSeeds(t, func(t *testing.T, seed uint64) {
		c := newCluster(t, 3, seed)
		l1 := c.WaitLeader(3 * et)

		// The leader goes: the other two elect one of them.
		c.Isolate(l1)
		l2 := waitLeaderAmong(c, others(c, l1), 4*et)
		term2 := c.Status(l2).Term

		// The old leader comes back: it must not disturb the new one.
		c.Reconnect(l1)
		c.Run(10 * et)
		if got := c.Leader(); got != l2 || c.Status(l2).Term != term2 {
			c.Fatalf("old leader %d rejoined and leader %d (term %d) became %d (term %d)", l1, l2, term2, got, c.Status(got).Term)
		}

		// No quorum, no leader.
		rest := others(c, l2)
		c.Partition() // everyone alone
		c.Run(10 * et)
		if l := leaderAmong(c, rest); l != 0 {
			c.Fatalf("node %d leads with no quorum", l)
		}

		// A quorum again: a leader.
		c.Partition(rest)
		waitLeaderAmong(c, rest, 4*et)
		c.HealNetwork()
		c.WaitLeader(4 * et)
	})
}

func TestManyElections(t *testing.T) {
	forSeeds(t, func(t *testing.T, seed uint64) {
		c := newCluster(t, 7, seed)
		c.WaitLeader(3 * et)
		r := rand.New(rand.NewPCG(seed, 1))
		for round := range 10 {
			// Cut three at random; the other four are a majority.
			cut := r.Perm(7)[:3]
			for _, i := range cut {
				c.Isolate(uint64(i + 1))
			}
			var rest []uint64
			for i := range 7 {
				in := true
				for _, j := range cut {
					in = in && i != j
				}
				if in {
					rest = append(rest, uint64(i+1))
				}
			}
			waitLeaderAmong(c, rest, 10*et)
			c.Logf("round %d: cut %v, leader %d", round, cut, leaderAmong(c, rest))
			c.HealNetwork()
		}
		c.WaitLeader(4 * et)
	})
}

// An election costs a bounded number of messages: with pre-vote, one
// round is a pre-vote and a vote exchange with each peer.
func TestElectionMessageCount(t *testing.T) {
	forSeeds(t, func(t *testing.T, seed uint64) {
		c := newCluster(t, 3, seed)
		c.WaitLeader(3 * et)
		s := c.Stats()
		votes := s.Messages[raft.MsgPreVote] + s.Messages[raft.MsgPreVoteResp] + s.Messages[raft.MsgVote] + s.Messages[raft.MsgVoteResp]
		// One clean round is 8 messages; allow a split vote or two.
		if votes > 24 {
			c.Fatalf("the first election took %d (pre)vote messages: %v", votes, s.Messages)
		}
	})
}

// A healthy leader is not deposed by a follower that was cut off and
// comes back (pre-vote keeps the follower's term from growing).
func TestDisruptiveServerRejoin(t *testing.T) {
	forSeeds(t, func(t *testing.T, seed uint64) {
		c, lead := startCluster(t, 3, seed)
		term := c.Status(lead).Term
		f := others(c, lead)[0]
		c.Isolate(f)
		c.Run(50 * et)
		if got := c.Status(f).Term; got != term {
			c.Fatalf("isolated node %d raised its term from %d to %d (pre-vote should prevent it)", f, term, got)
		}
		c.Reconnect(f)
		c.Run(10 * et)
		if got := c.Leader(); got != lead || c.Status(lead).Term != term {
			c.Fatalf("rejoining node %d disturbed leader %d term %d: now leader %d term %d", f, lead, term, got, c.Status(got).Term)
		}
		c.One(c.Command(8), 3, 4*et)
	})
}

// A node cut off from the leader only, but not from the other follower,
// cannot depose the leader: the follower that still hears the leader
// ignores its (pre-)vote requests (thesis 4.2.3). With pre-vote off too.
func TestDisruptivePartialPartition(t *testing.T) {
	for _, preVote := range []bool{true, false} {
		t.Run(map[bool]string{true: "prevote", false: "noprevote"}[preVote], func(t *testing.T) {
			forSeeds(t, func(t *testing.T, seed uint64) {
				c := NewCluster(t, Options{Nodes: 3, Seed: seed, Config: raft.Config{DisablePreVote: !preVote}})
				lead := c.WaitLeader(3 * et)
				c.One(c.Command(8), 3, 4*et)
				term := c.Status(lead).Term
				rest := others(c, lead)
				cutOff := rest[1]
				c.Cut(lead, cutOff)
				c.Cut(cutOff, lead)
				c.Run(50 * et)
				if got := c.Leader(); got != lead || c.Status(lead).Term != term {
					c.Fatalf("node %d, cut off from leader %d only, deposed it: leader %d term %d (was term %d)",
						cutOff, lead, got, c.Status(got).Term, term)
				}
				c.One(c.Command(8), 2, 4*et)
				c.HealNetwork()
				c.One(c.Command(8), 3, 10*et)
			})
		})
	}
}

// A leader that cannot hear from a quorum steps down (check-quorum),
// whether it is cut off both ways or only its inbound links are.
func TestCheckQuorumStepDown(t *testing.T) {
	t.Run("isolated", func(t *testing.T) {
		forSeeds(t, func(t *testing.T, seed uint64) {
			c := newCluster(t, 3, seed)
			lead := c.WaitLeader(3 * et)
			c.Isolate(lead)
			c.MustRunUntil("the isolated leader stepping down",
				func() bool { return c.Status(lead).Role != raft.RoleLeader }, 3*et)
			waitLeaderAmong(c, others(c, lead), 4*et)
		})
	})
	t.Run("deaf", func(t *testing.T) {
		forSeeds(t, func(t *testing.T, seed uint64) {
			c := newCluster(t, 3, seed)
			lead := c.WaitLeader(3 * et)
			for _, id := range others(c, lead) {
				c.Cut(id, lead) // the leader talks but cannot hear
			}
			c.MustRunUntil("the deaf leader stepping down",
				func() bool { return c.Status(lead).Role != raft.RoleLeader }, 3*et)
			l2 := waitLeaderAmong(c, others(c, lead), 6*et)
			c.One(c.Command(8), 2, 6*et)
			c.HealNetwork()
			c.One(c.Command(8), 3, 10*et)
			if c.Leader() == lead {
				c.Logf("old leader %d leads again after healing (new leader was %d)", lead, l2)
			}
		})
	})
	t.Run("mute", func(t *testing.T) {
		forSeeds(t, func(t *testing.T, seed uint64) {
			c := newCluster(t, 3, seed)
			lead := c.WaitLeader(3 * et)
			for _, id := range others(c, lead) {
				c.Cut(lead, id) // the leader hears but cannot talk
			}
			waitLeaderAmong(c, others(c, lead), 6*et)
			c.MustRunUntil("the mute leader hearing of the new term",
				func() bool { return c.Status(lead).Role != raft.RoleLeader }, 3*et)
			c.One(c.Command(8), 2, 6*et)
			c.HealNetwork()
			c.One(c.Command(8), 3, 10*et)
		})
	})
	t.Run("disabled", func(t *testing.T) {
		c := NewCluster(t, Options{Nodes: 3, Seed: 1, Config: raft.Config{DisableCheckQuorum: true}})
		lead := c.WaitLeader(3 * et)
		c.Isolate(lead)
		c.Run(20 * et)
		if c.Status(lead).Role != raft.RoleLeader {
			c.Fatalf("isolated leader %d stepped down with check-quorum disabled", lead)
		}
	})
}

// When the leader crashes, the others elect a new one promptly: within a
// few election timeouts, over many seeds. (A pre-vote that refreshed the
// voter's "heard from a leader" clock would stall this.)
func TestPromptReElection(t *testing.T) {
	worst := 0
	for seed := range uint64(50) {
		c, l := startCluster(t, 3, seed)
		c.Crash(l)
		start := c.Now()
		c.MustRunUntil("a new leader", func() bool { return c.Leader() != 0 }, 10*et)
		worst = max(worst, int((c.Now()-start)/TickUnits))
	}
	if worst > 5*et {
		t.Fatalf("a new leader took up to %d ticks after a crash, want at most %d", worst, 5*et)
	}
	t.Logf("re-election after a crash took at most %d ticks (election timeout %d)", worst, et)
}

// A follower that can talk but not hear (its inbound links cut) times
// out again and again; the others, hearing the leader, refuse it, and
// the leader stays.
func TestDeafFollower(t *testing.T) {
	forSeeds(t, func(t *testing.T, seed uint64) {
		c, lead := startCluster(t, 5, seed)
		term := c.Status(lead).Term
		deaf := others(c, lead)[0]
		for _, id := range others(c, deaf) {
			c.Cut(id, deaf)
		}
		for range 20 {
			c.Propose(c.Command(8))
			c.Run(et)
		}
		if got := c.Leader(); got != lead || c.Status(lead).Term != term {
			c.Fatalf("deaf node %d deposed leader %d (term %d): leader %d term %d", deaf, lead, term, got, c.Status(got).Term)
		}
		c.HealNetwork()
		index := c.One(c.Command(8), 5, 10*et)
		if c.Applied(deaf) < index {
			c.Fatalf("node %d did not catch up", deaf)
		}
	})
}
