package rafttest

import (
	"fmt"
	"testing"

	"github.com/bifrost-go/bifrost/raft"
)

// et is the election timeout of the scenario clusters, in ticks.
const et = 10

// scenarioSeeds is how many seeds each scenario runs: the scenarios are
// fixed, the timing and faults under them vary with the seed.
const scenarioSeeds = 10

// forSeeds runs f as a subtest once per scenario seed.
func forSeeds(t *testing.T, f func(t *testing.T, seed uint64)) {
	for seed := range uint64(scenarioSeeds) {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) { f(t, seed) })
	}
}

func newCluster(t *testing.T, nodes int, seed uint64) *Cluster {
	return NewCluster(t, Options{Nodes: nodes, Seed: seed, TraceEvents: *traceFlag})
}

// startCluster is newCluster once a leader is elected and a first command
// is applied on every node; it returns the cluster and that leader.
func startCluster(t *testing.T, nodes int, seed uint64) (*Cluster, uint64) {
	t.Helper()
	c := newCluster(t, nodes, seed)
	lead := c.WaitLeader(3 * et)
	c.One(c.Command(8), nodes, 4*et)
	return c, lead
}

// leaderAmong returns the leader of the highest term among ids, or 0.
func leaderAmong(c *Cluster, ids []uint64) uint64 {
	var lead, term uint64
	for _, id := range ids {
		if st := c.Status(id); st.Role == raft.RoleLeader && st.Term >= term {
			lead, term = id, st.Term
		}
	}
	return lead
}

// waitLeaderAmong runs until one of ids leads and returns it.
func waitLeaderAmong(c *Cluster, ids []uint64, maxTicks int) uint64 {
	c.t.Helper()
	c.MustRunUntil(fmt.Sprintf("a leader among %v", ids), func() bool { return leaderAmong(c, ids) != 0 }, maxTicks)
	return leaderAmong(c, ids)
}

// others returns the ids of c other than the given ones.
func others(c *Cluster, not ...uint64) []uint64 {
	var ids []uint64
	for _, id := range c.IDs() {
		skip := false
		for _, n := range not {
			skip = skip || id == n
		}
		if !skip {
			ids = append(ids, id)
		}
	}
	return ids
}

// committedOn reports whether index is committed on leader id.
func committedOn(c *Cluster, id, index uint64) bool { return c.Status(id).Commit >= index }
