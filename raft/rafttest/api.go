package rafttest

import (
	"bytes"
	"fmt"

	"github.com/bifrost-go/bifrost/raft"
)

// Leader returns the live leader of the highest term, or 0 if no live
// node believes it leads. A deposed leader that has not heard of the newer
// term yet may also still think it leads; see Leaders.
func (c *Cluster) Leader() uint64 {
	var lead, term uint64
	for _, n := range c.nodes {
		if n.core != nil && n.role == raft.RoleLeader && n.term >= term {
			lead, term = n.id, n.term
		}
	}
	return lead
}

// Leaders returns every live node that believes it leads.
func (c *Cluster) Leaders() []uint64 {
	var ids []uint64
	for _, n := range c.nodes {
		if n.core != nil && n.role == raft.RoleLeader {
			ids = append(ids, n.id)
		}
	}
	return ids
}

// WaitLeader runs until some node leads and returns it; it fails the test
// if none does within maxTicks.
func (c *Cluster) WaitLeader(maxTicks int) uint64 {
	c.t.Helper()
	c.MustRunUntil("electing a leader", func() bool { return c.Leader() != 0 }, maxTicks)
	return c.Leader()
}

// LeaderTerms returns how many terms have had a leader so far.
func (c *Cluster) LeaderTerms() int { return len(c.check.leaderOf) }

// Status returns the status of node id; the zero Status if it is down.
func (c *Cluster) Status(id uint64) raft.Status {
	n := c.node(id)
	if n.core == nil {
		return raft.Status{ID: id}
	}
	return n.core.Status()
}

// Alive reports whether node id is running.
func (c *Cluster) Alive(id uint64) bool { return c.node(id).core != nil }

// Log returns a copy of node id's durable log.
func (c *Cluster) Log(id uint64) []raft.Entry { return c.node(id).disk.entries() }

// HardState returns node id's durable hard state.
func (c *Cluster) HardState(id uint64) raft.HardState { return c.node(id).disk.hs }

// Crash stops node id at once: what it had not synced is gone, messages
// to it are lost until it restarts. Crashing a crashed node does nothing.
func (c *Cluster) Crash(id uint64) {
	if n := c.node(id); n.core != nil {
		c.down(n, event{kind: evCrash})
	}
}

// Restart starts node id again from its disk. Restarting a running node
// does nothing.
func (c *Cluster) Restart(id uint64) {
	if n := c.node(id); n.core == nil {
		c.start(n)
	}
}

// Cut loses every message from one node to another from now on, including
// those already in flight; the other direction is unaffected.
func (c *Cluster) Cut(from, to uint64) {
	c.node(from)
	c.node(to)
	c.net.cut[from][to] = true
	c.Note("cut %d->%d", from, to)
}

// Isolate cuts node id off from every other node, both ways.
func (c *Cluster) Isolate(id uint64) {
	for _, o := range c.ids {
		if o != id {
			c.net.cut[id][o], c.net.cut[o][id] = true, true
		}
	}
	c.Note("isolated %d", id)
}

// Reconnect restores every link to and from node id.
func (c *Cluster) Reconnect(id uint64) {
	for _, o := range c.ids {
		c.net.cut[id][o], c.net.cut[o][id] = false, false
	}
	c.Note("reconnected %d", id)
}

// Partition splits the cluster: nodes talk only within their group. A
// node named in no group is isolated.
func (c *Cluster) Partition(groups ...[]uint64) {
	group := make([]int, len(c.nodes)+1)
	for i := range group {
		group[i] = -i - 1 // alone unless named
	}
	for g, ids := range groups {
		for _, id := range ids {
			c.node(id)
			group[id] = g
		}
	}
	for _, a := range c.ids {
		for _, b := range c.ids {
			c.net.cut[a][b] = group[a] != group[b]
		}
	}
	c.Note("partition %v", groups)
}

// HealNetwork restores every link. Faults set with SetFaults stay.
func (c *Cluster) HealNetwork() {
	c.net.healLinks()
	c.Note("network healed")
}

// Heal ends every fault: all links up, a reliable network, no torn
// writes or stalled disks, every crashed node restarted. Messages already
// in flight still arrive, late ones late.
func (c *Cluster) Heal() {
	c.net.healLinks()
	c.net.faults = Faults{}.normalized()
	c.Note("healed")
	for _, n := range c.nodes {
		// A stalled write completes at the next unit.
		if n.writing != nil && n.syncAt == n.stallUntil {
			n.syncAt = c.now
		}
		n.stallUntil = 0
		if n.core == nil && n.incarnation > 0 {
			c.start(n)
		}
	}
}

// StallDisk makes node id's disk hang for ticks ticks: no write of it
// becomes durable before then, including one in flight. The node keeps
// stepping messages and ticking, but, like a driver blocked in fsync,
// takes no new Ready, so it sends nothing either.
func (c *Cluster) StallDisk(id uint64, ticks int) {
	n := c.node(id)
	n.stallUntil = c.now + Time(ticks)*TickUnits
	if n.writing != nil {
		n.syncAt = max(n.syncAt, n.stallUntil)
	}
	c.Note("disk of %d stalls for %d ticks", id, ticks)
}

// SetFaults changes how the network and disks misbehave from now on.
func (c *Cluster) SetFaults(f Faults) {
	c.net.faults = f.normalized()
	c.Note("faults %+v", c.net.faults)
}

// Faults returns the current faults.
func (c *Cluster) Faults() Faults { return c.net.faults }

// Stats returns the message counters since the start or ResetStats.
func (c *Cluster) Stats() Stats { return c.stats.stats() }

// ResetStats zeroes the message counters.
func (c *Cluster) ResetStats() { c.stats = counters{} }

// Command returns unique command data of at least size bytes.
func (c *Cluster) Command(size int) []byte {
	c.cmds++
	b := fmt.Appendf(nil, "cmd-%d-", c.cmds)
	for len(b) < size {
		b = append(b, byte('a'+len(b)%26))
	}
	return b
}

// Propose hands data to the current leader (see Leader). It reports the
// index the leader gave it, and false if there is no leader or it refused.
func (c *Cluster) Propose(data []byte) (index uint64, ok bool) {
	lead := c.Leader()
	if lead == 0 {
		return 0, false
	}
	return c.ProposeTo(lead, data)
}

// ProposeTo hands data to node id. Like a driver that drains its proposal
// queue before calling Ready, the simulator handles the node's Ready at
// the next time unit (or its next input), so proposals made together are
// replicated together. The client learns it committed when
// node id hands out an entry with the same index and term as committed:
// see Acked.
func (c *Cluster) ProposeTo(id uint64, data []byte) (index uint64, ok bool) {
	n := c.node(id)
	if n.core == nil {
		return 0, false
	}
	index, term, err := n.core.Propose(data)
	if err != nil {
		return 0, false
	}
	n.pending[index] = proposal{term: term, data: data}
	c.trace.add(event{at: c.now, kind: evPropose, node: id, a: index, b: term})
	c.observe(n)
	n.proposed = true // the driver handles the Ready at the next time unit, batching
	return index, true
}

// Acked returns the commands the client was told committed, in the order
// it was told.
func (c *Cluster) Acked() []Ack { return append([]Ack(nil), c.acked...) }

// Applied returns node id's applied index; 0 while it is down.
func (c *Cluster) Applied(id uint64) uint64 {
	if n := c.node(id); n.core != nil {
		return n.applied
	}
	return 0
}

// NApplied returns how many live nodes have applied index.
func (c *Cluster) NApplied(index uint64) int {
	k := 0
	for _, n := range c.nodes {
		if n.core != nil && n.applied >= index {
			k++
		}
	}
	return k
}

// AppliedData returns the data of the entry applied at index, if any
// node applied it.
func (c *Cluster) AppliedData(index uint64) ([]byte, bool) {
	for _, n := range c.nodes {
		if e, ok := n.disk.entry(index); ok && n.core != nil && n.applied >= index {
			return e.Data, true
		}
	}
	return nil, false
}

// One proposes data to whoever leads until it is applied, at the index
// it was given, by at least want live nodes, and returns that index. It
// retries when a leader changes or loses the proposal, and fails the
// test after maxTicks.
func (c *Cluster) One(data []byte, want int, maxTicks int) uint64 {
	c.t.Helper()
	deadline := c.now + Time(maxTicks)*TickUnits
	for c.now < deadline {
		index, ok := c.Propose(data)
		if !ok {
			c.Run(1)
			continue
		}
		wait := min(2*c.ElectionTicks(), int((deadline-c.now+TickUnits-1)/TickUnits))
		if c.RunUntil(func() bool { return c.NApplied(index) >= want }, wait) {
			if d, _ := c.AppliedData(index); bytes.Equal(d, data) {
				return index
			}
		}
	}
	c.Fatalf("One(%q): not applied by %d nodes within %d ticks", data, want, maxTicks)
	return 0
}

// CheckLiveness heals the cluster and checks that it recovers: a leader
// within leaderTicks, then a new command applied on every member, and with
// it every command the client was told committed, within commitTicks.
func (c *Cluster) CheckLiveness(leaderTicks, commitTicks int) {
	c.t.Helper()
	c.Heal()
	c.MustRunUntil("liveness: a leader after healing", func() bool { return c.Leader() != 0 }, leaderTicks)
	acked := c.acked
	start := c.now
	index := c.One(c.Command(0), 1, commitTicks)
	for _, a := range acked {
		if a.Index >= index {
			c.Fatalf("liveness: acknowledged index %d at or after the new command's index %d", a.Index, index)
		}
	}
	left := commitTicks - int((c.now-start)/TickUnits)
	behind := func() []raft.Status {
		var sts []raft.Status
		for _, id := range c.Members() {
			if c.Applied(id) < index {
				sts = append(sts, c.Status(id))
			}
		}
		return sts
	}
	if !c.RunUntil(func() bool { return len(behind()) == 0 }, max(left, 0)) {
		voters, learners := c.Configuration()
		c.Fatalf("liveness: members (voters %v, learners %v) did not all apply index %d within %d ticks: behind %+v",
			voters, learners, index, commitTicks, behind())
	}
}

// Members returns the voters and learners of the configuration the
// leader (see Leader) holds, or of the initial one if no node leads.
func (c *Cluster) Members() []uint64 {
	voters, learners := c.Configuration()
	return append(voters, learners...)
}

// Configuration returns the voters and learners of the leader's
// configuration (see Leader), or the initial voters if no node leads.
func (c *Cluster) Configuration() (voters, learners []uint64) {
	if l := c.Leader(); l != 0 {
		return c.node(l).core.Configuration()
	}
	return c.node(1).voters, nil
}

// AddNode asks the leader to add the next spare node (Options.Spares) as
// a learner and, if it takes the change, starts that node with empty
// storage, knowing the leader's configuration and itself as a learner.
// The leader promotes it once it caught up (raft.Config.PromoteLag). It
// returns the node's id, or false if there is no leader, no spare left,
// or the leader refused.
func (c *Cluster) AddNode() (uint64, bool) {
	lead := c.Leader()
	id := uint64(len(c.ids) + 1)
	if lead == 0 || id > uint64(len(c.nodes)) {
		return 0, false
	}
	if !c.confChange(lead, raft.ConfChange{Type: raft.ConfAddLearner, NodeID: id, Addr: fmt.Sprint("sim-", id)}) {
		return 0, false
	}
	n := c.node(id)
	n.voters, n.learners = c.node(lead).core.Configuration()
	c.ids = append(c.ids, id)
	c.start(n)
	return id, true
}

// PromoteNode asks the leader to make learner id a voter; RemoveNode asks
// it to remove member id, which keeps running. Each reports whether the
// leader took the change (it commits later, or is lost with the leader).
func (c *Cluster) PromoteNode(id uint64) bool {
	return c.confChange(c.Leader(), raft.ConfChange{Type: raft.ConfPromoteLearner, NodeID: id})
}

// RemoveNode: see PromoteNode.
func (c *Cluster) RemoveNode(id uint64) bool {
	return c.confChange(c.Leader(), raft.ConfChange{Type: raft.ConfRemoveMember, NodeID: id})
}

// confChange proposes cc to node lead.
func (c *Cluster) confChange(lead uint64, cc raft.ConfChange) bool {
	if lead == 0 {
		return false
	}
	n := c.node(lead)
	_, _, err := n.core.ProposeConfChange(cc)
	c.Note("%s %d proposed to %d: %v", cc.Type, cc.NodeID, lead, err)
	if err != nil {
		return false
	}
	c.events.ConfChanges++
	c.observe(n)
	n.proposed = true
	return true
}

// Events counts what the cluster went through besides messages.
type Events struct {
	Snapshots   int // snapshots taken (Compact)
	Installs    int // snapshots installed from a leader
	ConfChanges int // configuration changes a leader took
	Transfers   int // leadership transfers a leader started
}

// Events returns the counts of snapshots, installs, configuration
// changes and transfers so far.
func (c *Cluster) Events() Events { return c.events }

// Fingerprint hashes every event of the run so far (messages sent,
// delivered and dropped, crashes, restarts, role changes, commits): equal
// fingerprints mean the runs went the same way.
func (c *Cluster) Fingerprint() uint64 { return c.trace.hash }
