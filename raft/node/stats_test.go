package node

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bifrost-go/bifrost/raft"
)

func TestCountChanges(t *testing.T) {
	const (
		f  = raft.RoleFollower
		pc = raft.RolePreCandidate
		c  = raft.RoleCandidate
		l  = raft.RoleLeader
	)
	status := func(role raft.Role, term, lead uint64) *Status {
		return &Status{Status: raft.Status{Role: role, Term: term, Lead: lead}}
	}
	for _, tc := range []struct {
		name                  string
		old, st               *Status
		started, won, leaders uint64
	}{
		{"follower to candidate", status(f, 1, 2), status(c, 2, 0), 1, 0, 0},
		{"pre-vote only", status(f, 1, 2), status(pc, 1, 0), 0, 0, 0},
		{"pre-vote to candidate", status(pc, 1, 0), status(c, 2, 0), 1, 0, 0},
		{"candidate again", status(c, 2, 0), status(c, 3, 0), 1, 0, 0},
		{"candidate wins", status(c, 2, 0), status(l, 2, 1), 0, 1, 1},
		{"follower to leader in one turn", status(f, 1, 0), status(l, 2, 1), 1, 1, 1},
		{"new leader heard", status(f, 1, 2), status(f, 2, 3), 0, 0, 1},
		{"leader lost", status(f, 2, 3), status(f, 3, 0), 0, 0, 0},
		{"leader steps down", status(l, 2, 1), status(f, 3, 2), 0, 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var cs counters
			cs.countChanges(tc.old, tc.st)
			if cs.started.Load() != tc.started || cs.won.Load() != tc.won || cs.leaders.Load() != tc.leaders {
				t.Errorf("got started %d won %d leaders %d, want %d %d %d", cs.started.Load(), cs.won.Load(),
					cs.leaders.Load(), tc.started, tc.won, tc.leaders)
			}
		})
	}
}

// A group's stats show its election and, once a command applied
// everywhere, the entries applied and the leader's proposal.
func TestStatsCountElectionsAndEntries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newTestCluster(t, 3)
		lead := c.waitLeader(time.Second)
		index, _, err := c.nodes[lead].Propose(context.Background(), []byte("x"))
		if err != nil {
			t.Fatal(err)
		}
		for id, n := range c.nodes {
			if err := n.WaitFor(context.Background(), func(st Status) bool { return st.Applied >= index }); err != nil {
				t.Fatal(err)
			}
			s := n.Stats()
			if s.EntriesApplied < 2 || s.LeaderChanges < 1 {
				t.Errorf("node %d: %+v, want at least 2 entries applied (no-op, command) and a leader", id, s)
			}
		}
		s := c.nodes[lead].Stats()
		if s.ElectionsStarted < 1 || s.ElectionsWon < 1 || s.Proposals < 1 {
			t.Errorf("leader %d: %+v, want an election started and won, and a proposal", lead, s)
		}
	})
}
