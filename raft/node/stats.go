package node

import (
	"github.com/bifrost-go/bifrost/internal/metrics"
	"github.com/bifrost-go/bifrost/raft"
)

// Stats counts what a node has done since it started. Its role, term and
// indexes are in Status.
type Stats struct {
	// EntriesApplied counts the entries handed to the state machine:
	// commands, no-ops and configuration changes.
	EntriesApplied uint64
	// Proposals counts the commands and configuration changes this node
	// took into its log as leader.
	Proposals uint64
	// ElectionsStarted counts the elections this node stood in as a
	// candidate (a pre-vote that fails to win one does not count);
	// ElectionsWon counts those it won.
	ElectionsStarted, ElectionsWon uint64
	// LeaderChanges counts the times this node learned of a new leader,
	// itself included.
	LeaderChanges uint64
}

// counters are a node's Stats as the driver goroutine keeps them, read
// by any goroutine.
type counters struct {
	applied, proposals, started, won, leaders metrics.Counter
}

// Stats returns the node's counts so far.
func (n *Node) Stats() Stats {
	c := &n.counters
	return Stats{EntriesApplied: c.applied.Load(), Proposals: c.proposals.Load(),
		ElectionsStarted: c.started.Load(), ElectionsWon: c.won.Load(), LeaderChanges: c.leaders.Load()}
}

// countChanges counts the elections and leaders of a change of status
// from old to st. The driver publishes a status once a turn, so a turn
// may take a node from follower straight to leader: that was an election
// too.
func (c *counters) countChanges(old, st *Status) {
	wasCandidate := old.Role == raft.RoleCandidate
	switch {
	case st.Role == raft.RoleCandidate && (!wasCandidate || st.Term != old.Term):
		c.started.Inc()
	case st.Role == raft.RoleLeader && old.Role != raft.RoleLeader && !wasCandidate:
		c.started.Inc()
	}
	if st.Role == raft.RoleLeader && old.Role != raft.RoleLeader {
		c.won.Inc()
	}
	if st.Lead != old.Lead && st.Lead != 0 {
		c.leaders.Inc()
	}
}
