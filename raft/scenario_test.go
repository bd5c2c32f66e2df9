package raft

import (
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
)

func TestSingleNodeElectsItselfAndCommits(t *testing.T) {
	cl := newCluster(t, 1, nil)
	for range 20 {
		cl.tick()
	}
	if cl.leader() != 1 {
		t.Fatalf("single node did not elect itself:\n%v", cl)
	}
	cl.propose(1, "a")
	cl.propose(1, "b")
	cl.settle()
	if got := cl.applied(1); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("applied %q, want [a b]", got)
	}
}

func TestElectionByTicks(t *testing.T) {
	for _, preVote := range []bool{true, false} {
		t.Run(fmt.Sprintf("prevote=%v", preVote), func(t *testing.T) {
			cl := newCluster(t, 3, func(c *Config) { c.DisablePreVote = !preVote })
			for range 30 {
				cl.tick()
			}
			lead := cl.leader()
			if lead == 0 {
				t.Fatalf("no leader after 30 ticks:\n%v", cl)
			}
			for _, id := range cl.ids {
				if st := cl.nodes[id].Status(); st.Lead != lead {
					t.Errorf("node %d follows %d, want %d", id, st.Lead, lead)
				}
			}
		})
	}
}

func TestThreeNodesWithOneDownCommit(t *testing.T) {
	cl := newCluster(t, 3, nil)
	cl.crash(3)
	for range 40 {
		cl.tick()
	}
	lead := cl.leader()
	if lead == 0 {
		t.Fatalf("no leader with two of three up:\n%v", cl)
	}
	cl.propose(lead, "x")
	cl.settle()
	for _, id := range []uint64{1, 2} {
		cl.tick() // followers learn the commit index
		if got := cl.applied(id); !slices.Equal(got, []string{"x"}) {
			t.Errorf("node %d applied %q, want [x]", id, got)
		}
	}
}

func TestNoCommitWithoutMajority(t *testing.T) {
	cl := newCluster(t, 5, nil)
	cl.elect(1)
	for _, id := range []uint64{3, 4, 5} {
		cl.crash(id)
	}
	i := cl.propose(1, "x")
	for range 5 {
		cl.tick()
	}
	if got := cl.nodes[1].Status().Commit; got >= i {
		t.Errorf("commit = %d with 3 of 5 down, want below %d", got, i)
	}
}

func TestVoterTimesOutAgain(t *testing.T) {
	// Node 2 votes for 1, then 1 vanishes: 2 must campaign later rather
	// than wait for a leader forever.
	cl := newCluster(t, 3, func(c *Config) { c.DisablePreVote = true })
	cl.nodes[1].campaign(false)
	cl.process(1)
	cl.crash(1)
	cl.settle()
	if st := cl.nodes[2].Status(); st.Vote != 1 {
		t.Fatalf("node 2 did not vote for 1: %+v", st)
	}
	for range 60 {
		cl.tick()
	}
	if lead := cl.leader(); lead == 0 || lead == 1 {
		t.Errorf("leader = %d after the candidate vanished, want 2 or 3:\n%v", lead, cl)
	}
}

func TestEachEntrySentOncePerPeer(t *testing.T) {
	cl := newCluster(t, 3, nil)
	cl.elect(1)
	cl.sent = nil
	want := map[string]bool{}
	for i := range 100 {
		cmd := fmt.Sprintf("cmd-%d", i)
		want[cmd] = true
		cl.propose(1, cmd)
		if i%7 == 0 {
			cl.tick()
		}
		cl.settle()
	}
	for range 5 {
		cl.tick()
	}
	counts := map[string]int{}
	for _, m := range cl.sent {
		if m.Type == MsgHeartbeat && len(m.Entries) > 0 {
			t.Errorf("heartbeat carries entries: %+v", m)
		}
		for _, e := range m.Entries {
			counts[fmt.Sprintf("%d:%s", m.To, e.Data)]++
		}
	}
	for _, to := range []uint64{2, 3} {
		for cmd := range want {
			if n := counts[fmt.Sprintf("%d:%s", to, cmd)]; n != 1 {
				t.Errorf("%s sent %d times to node %d, want once", cmd, n, to)
			}
		}
		if got := len(cl.applied(to)); got != 100 {
			t.Errorf("node %d applied %d commands, want 100", to, got)
		}
	}
}

func TestBatchLimits(t *testing.T) {
	cl := newCluster(t, 2, func(c *Config) { c.MaxMsgEntries = 4; c.MaxMsgBytes = 1 << 20 })
	cl.elect(1)
	for i := range 10 {
		cl.propose(1, fmt.Sprint(i))
	}
	cl.sent = nil
	cl.settle()
	for _, m := range cl.sent {
		if len(m.Entries) > 4 {
			t.Errorf("MsgApp with %d entries, limit 4", len(m.Entries))
		}
	}
	if got := len(cl.applied(1)); got != 10 {
		t.Errorf("leader applied %d, want 10", got)
	}
}

func TestFastBackupOverConflictingTerm(t *testing.T) {
	// Nodes 1 and 2 hold 10 entries of term 1 then 50 of term 3; node 3
	// holds the same 10 then 50 of term 2 from a leader that never
	// committed them. Node 1 leads term 4 and must repair node 3 in a
	// few round trips, not fifty.
	good := append(slices.Repeat([]uint64{1}, 10), slices.Repeat([]uint64{3}, 50)...)
	bad := append(slices.Repeat([]uint64{1}, 10), slices.Repeat([]uint64{2}, 50)...)
	cl := backUp(t, good, bad, HardState{Term: 3, Commit: 10})
	if got, want := cl.nodes[3].log.lastTerm(), uint64(4); got != want {
		t.Errorf("node 3 last term = %d, want %d", got, want)
	}
	if got := cl.nodes[3].Status().LastIndex; got != 61 {
		t.Errorf("node 3 last index = %d, want 61", got)
	}
}

func TestFastBackupOverManyTerms(t *testing.T) {
	// The follower's conflicting tail has a term per entry; each round
	// trip still skips all of them below the leader's term.
	good := append(slices.Repeat([]uint64{1}, 5), slices.Repeat([]uint64{60}, 50)...)
	bad := slices.Repeat([]uint64{1}, 5)
	for i := range 50 {
		bad = append(bad, uint64(2+i))
	}
	cl := backUp(t, good, bad, HardState{Term: 60})
	if got := cl.nodes[3].log.lastIndex(); got != 56 {
		t.Errorf("node 3 last index = %d, want 56", got)
	}
}

// backUp starts nodes 1 and 2 with the log of terms good and node 3 with
// bad, all with hard state hs, elects node 1, and fails the test if node 3
// needed more than two rejected MsgApp to find where its log matches.
func backUp(t *testing.T, good, bad []uint64, hs HardState) *cluster {
	t.Helper()
	cl := newCluster(t, 3, nil)
	for id, terms := range map[uint64][]uint64{1: good, 2: good, 3: bad} {
		cl.stores[id].ents = logOf(terms...)
		cl.stores[id].hs = hs
		cl.start(id)
	}
	cl.elect(1)
	rejects := 0
	for _, m := range cl.sent {
		if m.Type == MsgAppResp && m.From == 3 && m.Reject {
			rejects++
		}
	}
	if rejects > 2 {
		t.Errorf("node 3 rejected %d MsgApp, want at most 2", rejects)
	}
	return cl
}

func TestRejoinOfPartitionedLeader(t *testing.T) {
	cl := newCluster(t, 3, nil)
	cl.elect(1)
	cl.propose(1, "a")
	cl.settle()
	cut := func(m Message) bool { return m.From == 1 || m.To == 1 }
	cl.drop = cut
	cl.propose(1, "lost") // never commits
	for range 40 {
		cl.tick()
	}
	lead := cl.leader()
	if lead == 0 || lead == 1 {
		t.Fatalf("no new leader behind the partition:\n%v", cl)
	}
	cl.propose(lead, "b")
	cl.settle()
	cl.drop = nil
	for range 10 {
		cl.tick()
	}
	for _, id := range cl.ids {
		if got := cl.applied(id); !slices.Equal(got, []string{"a", "b"}) {
			t.Errorf("node %d applied %q, want [a b]", id, got)
		}
	}
}

func TestRestartDoesNotReapply(t *testing.T) {
	cl := newCluster(t, 3, nil)
	cl.elect(1)
	for i := range 5 {
		cl.propose(1, fmt.Sprint(i))
	}
	cl.settle()
	cl.tick()
	for _, id := range cl.ids {
		cl.crash(id)
	}
	for _, id := range cl.ids {
		cl.restart(id)
	}
	for range 40 {
		cl.tick()
	}
	lead := cl.leader()
	if lead == 0 {
		t.Fatalf("no leader after a full restart:\n%v", cl)
	}
	cl.propose(lead, "5")
	cl.settle()
	cl.tick()
	want := []string{"0", "1", "2", "3", "4", "5"}
	for _, id := range cl.ids {
		if got := cl.applied(id); !slices.Equal(got, want) {
			t.Errorf("node %d applied %q, want %q", id, got, want)
		}
	}
}

// TestRandomFaults runs small clusters under message loss, reordering,
// crashes and restarts, checking state-machine safety as it goes (the
// pump fails on two different entries applied at one index) and that
// everything commits once the faults stop.
func TestRandomFaults(t *testing.T) {
	seeds := uint64(60)
	if s, err := strconv.ParseUint(os.Getenv("RAFT_SEEDS"), 10, 64); err == nil {
		seeds = s
	}
	for seed := range seeds {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) { runRandomFaults(t, seed, false) })
		t.Run(fmt.Sprint("lazy,seed=", seed), func(t *testing.T) { runRandomFaults(t, seed, true) })
	}
}

func runRandomFaults(t *testing.T, seed uint64, lazy bool) {
	rng := rand.New(rand.NewPCG(seed, 7))
	n := 3 + 2*int(seed%2)
	cl := newCluster(t, n, func(c *Config) { c.Seed = seed; c.MaxInflight = 4; c.MaxMsgEntries = 3 })
	cl.rng, cl.shuffle, cl.lazy = rand.New(rand.NewPCG(seed, 9)), true, lazy
	side := map[uint64]bool{} // a partition: these nodes hear only each other
	cl.drop = func(m Message) bool { return side[m.From] != side[m.To] || rng.IntN(10) == 0 }
	for round := range 300 {
		cl.faultStep(rng)
		if rng.IntN(30) == 0 {
			clear(side)
			side[cl.ids[rng.IntN(n)]] = true
			side[cl.ids[rng.IntN(n)]] = true
		}
		if rng.IntN(20) == 0 {
			clear(side)
		}
		if lead := cl.leader(); lead != 0 && rng.IntN(2) == 0 {
			cl.propose(lead, fmt.Sprintf("%d-%d", seed, round))
		}
		cl.tick()
	}
	cl.heal()
	for range 100 {
		cl.tick()
	}
	lead := cl.leader()
	if lead == 0 {
		t.Fatalf("no leader after healing:\n%v", cl)
	}
	cl.propose(lead, "final")
	for range 20 {
		cl.tick()
	}
	for _, id := range cl.ids {
		got := cl.applied(id)
		if len(got) == 0 || got[len(got)-1] != "final" {
			t.Fatalf("node %d did not apply the final command (seed %d):\n%v", id, seed, cl)
		}
	}
}

// faultStep crashes or restarts a node now and then, the leader more
// often than others, keeping a majority up.
func (cl *cluster) faultStep(rng *rand.Rand) {
	if rng.IntN(10) != 0 {
		return
	}
	id := cl.ids[rng.IntN(len(cl.ids))]
	if lead := cl.leader(); lead != 0 && rng.IntN(2) == 0 {
		id = lead
	}
	downs := 0
	for _, d := range cl.down {
		if d {
			downs++
		}
	}
	switch {
	case cl.down[id]:
		cl.restart(id)
	case downs < (len(cl.ids)-1)/2:
		cl.crash(id)
	}
}

func (cl *cluster) heal() {
	cl.drop, cl.shuffle = nil, false
	for _, id := range cl.ids {
		if cl.down[id] {
			cl.restart(id)
		}
	}
}
