package raft

import (
	"errors"
	"fmt"
	"testing"
)

// countSent counts the messages of type typ sent since sent[from:].
func countSent(cl *cluster, from int, typ MessageType) int {
	n := 0
	for _, m := range cl.sent[from:] {
		if m.Type == typ {
			n++
		}
	}
	return n
}

// servedReads returns node id's ReadStates by request id.
func servedReads(cl *cluster, id uint64) map[uint64]uint64 {
	out := map[uint64]uint64{}
	for _, rs := range cl.stores[id].reads {
		out[rs.ID] = rs.Index
	}
	return out
}

func TestReadIndexBatchesReadsIntoOneRound(t *testing.T) {
	for _, size := range []int{1, 3, 5} {
		t.Run(fmt.Sprintf("nodes=%d", size), func(t *testing.T) {
			cl := newCluster(t, size, nil)
			cl.elect(1)
			cl.propose(1, "x")
			cl.settle()
			commit := cl.nodes[1].Status().Commit
			before := len(cl.sent)
			for id := uint64(100); id < 200; id++ {
				if err := cl.nodes[1].ReadIndex(id); err != nil {
					t.Fatalf("ReadIndex(%d): %v", id, err)
				}
			}
			cl.settle()
			if got, want := countSent(cl, before, MsgHeartbeat), size-1; got != want {
				t.Errorf("100 reads sent %d heartbeats, want one round of %d", got, want)
			}
			got := servedReads(cl, 1)
			for id := uint64(100); id < 200; id++ {
				if got[id] != commit {
					t.Fatalf("read %d served at %d (ok=%v), want %d", id, got[id], got[id] != 0, commit)
				}
			}
		})
	}
}

func TestReadIndexNeedsARoundSentAfterIt(t *testing.T) {
	cl := newCluster(t, 3, nil)
	cl.elect(1)
	c := cl.nodes[1]
	c.ReadIndex(1)
	rd := drain(c)
	c.ReadIndex(2) // queued while round 1 is out
	for _, m := range rd.Messages {
		if m.Type != MsgHeartbeat {
			continue
		}
		f := cl.nodes[m.To]
		f.Step(m)
		frd := drain(f)
		for _, resp := range append(frd.Messages, frd.AfterPersist...) {
			c.Step(resp)
		}
	}
	rd = drain(c)
	if len(rd.ReadStates) != 1 || rd.ReadStates[0].ID != 1 {
		t.Errorf("after round 1: ReadStates %+v, want read 1 only", rd.ReadStates)
	}
	hb := 0
	for _, m := range rd.Messages {
		if m.Type == MsgHeartbeat {
			hb++
			if m.Context <= 1 {
				t.Errorf("heartbeat for read 2 has round %d, want a later round", m.Context)
			}
		}
	}
	if hb != 2 {
		t.Errorf("read 2 sent %d heartbeats, want a new round to both followers", hb)
	}
}

func TestReadIndexWaitsForTermCommit(t *testing.T) {
	cl := newCluster(t, 3, nil)
	cl.elect(1)
	cl.propose(1, "x")
	cl.settle()
	// Node 1 fails and another takes over, but its no-op cannot commit:
	// appends are answered into the void while heartbeats (read rounds)
	// still go through.
	cl.crash(1)
	blocked := true
	cl.drop = func(m Message) bool { return blocked && m.Type == MsgAppResp }
	for range 40 {
		if cl.leader() != 0 {
			break
		}
		cl.tick()
	}
	lead := cl.leader()
	c := cl.nodes[lead]
	if st := c.Status(); st.Role != RoleLeader || st.Commit == st.LastIndex {
		t.Fatalf("node %d = %+v, want a leader with its no-op uncommitted", lead, st)
	}
	if err := c.ReadIndex(7); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		cl.tick()
	}
	if got := cl.stores[lead].reads; len(got) != 0 {
		t.Fatalf("read served before the leader's no-op committed: %+v", got)
	}
	blocked = false
	for range 3 {
		cl.tick()
	}
	got := servedReads(cl, lead)
	if want := c.Status().Commit; got[7] != want || want < c.Status().LastIndex {
		t.Errorf("read served at %d, want the commit index %d including the no-op", got[7], want)
	}
}

func TestPartitionedLeaderCannotServeReadIndex(t *testing.T) {
	cl := newCluster(t, 3, nil)
	cl.elect(1)
	cl.settle()
	cl.drop = func(m Message) bool { return m.From == 1 || m.To == 1 }
	if err := cl.nodes[1].ReadIndex(9); err != nil {
		t.Fatal(err)
	}
	for range 40 {
		cl.tick()
		if i, ok := servedReads(cl, 1)[9]; ok && i != 0 {
			t.Fatalf("cut-off leader served read at %d", i)
		}
	}
	lead := cl.leader()
	if lead == 1 || lead == 0 {
		t.Fatalf("leader = %d, want 2 or 3 to take over:\n%v", lead, cl)
	}
	if i, ok := servedReads(cl, 1)[9]; !ok || i != 0 {
		t.Errorf("read on the deposed leader: served=%v index %d; want refused (index 0)", ok, i)
	}
}

func TestFollowerForwardsReadIndex(t *testing.T) {
	cl := newCluster(t, 3, nil)
	cl.elect(1)
	cl.propose(1, "x")
	cl.settle()
	if err := cl.nodes[2].ReadIndex(5); err != nil {
		t.Fatalf("ReadIndex on follower: %v", err)
	}
	cl.settle()
	if got, want := servedReads(cl, 2)[5], cl.nodes[1].Status().Commit; got != want {
		t.Errorf("forwarded read index = %d, want the leader's commit %d", got, want)
	}
	// A node that knows no leader refuses at once.
	c := newFollower(t, 1, HardState{})
	if err := c.ReadIndex(6); !errors.Is(err, ErrNotLeader) {
		t.Errorf("ReadIndex without a leader: %v, want ErrNotLeader", err)
	}
	// A stale forward is refused by whoever no longer leads.
	c.Step(Message{Type: MsgReadIndex, From: 2, To: 1, Term: 0, Context: 8})
	rd := drain(c)
	if len(rd.AfterPersist) != 1 || rd.AfterPersist[0].Type != MsgReadIndexResp || !rd.AfterPersist[0].Reject {
		t.Errorf("answer to a read sent to a follower: %+v, want a rejection", rd.AfterPersist)
	}
}

// leaseCluster returns a 3-node cluster with lease reads on and a leader
// that has heard from everyone.
func leaseCluster(t *testing.T) (*cluster, uint64) {
	cl := newCluster(t, 3, func(c *Config) { c.LeaseReads = true })
	for range 40 {
		if cl.leader() != 0 {
			break
		}
		cl.tick()
	}
	lead := cl.leader()
	if lead == 0 {
		t.Fatalf("no leader:\n%v", cl)
	}
	cl.tick()
	return cl, lead
}

func TestLeaseReadServedWithoutRound(t *testing.T) {
	cl, lead := leaseCluster(t)
	before := len(cl.sent)
	if err := cl.nodes[lead].LeaseRead(1); err != nil {
		t.Fatal(err)
	}
	cl.settle()
	if got := countSent(cl, before, MsgHeartbeat); got != 0 {
		t.Errorf("lease read sent %d heartbeats, want none", got)
	}
	if got, want := servedReads(cl, lead)[1], cl.nodes[lead].Status().Commit; got != want {
		t.Errorf("lease read index = %d, want %d", got, want)
	}
}

func TestLeaseExpires(t *testing.T) {
	cl, lead := leaseCluster(t)
	c := cl.nodes[lead]
	lease := c.cfg.ElectionTicks - c.cfg.LeaseMarginTicks
	cl.drop = func(m Message) bool { return m.From == lead || m.To == lead }
	for i := 1; ; i++ {
		cl.tick()
		if c.Status().Role != RoleLeader {
			if i < lease {
				t.Fatalf("leader stepped down after %d ticks, before its lease of %d ran out", i, lease)
			}
			break
		}
		id := uint64(100 + i)
		c.LeaseRead(id)
		cl.settle()
		_, served := servedReads(cl, lead)[id]
		if want := i < lease; served != want {
			t.Fatalf("%d ticks after the partition: lease read served=%v, want %v (lease %d ticks)", i, served, want, lease)
		}
		// Safety: while the old leader's lease holds, nobody else leads.
		if served && cl.leader() != lead {
			t.Fatalf("node %d leads while node %d holds its lease", cl.leader(), lead)
		}
	}
}

func TestLeaseReadOffFallsBackToReadIndex(t *testing.T) {
	cl := newCluster(t, 3, nil)
	cl.elect(1)
	cl.settle()
	before := len(cl.sent)
	cl.nodes[1].LeaseRead(1)
	cl.settle()
	if got := countSent(cl, before, MsgHeartbeat); got != 2 {
		t.Errorf("lease read with leases off sent %d heartbeats, want a round of 2", got)
	}
	if _, ok := servedReads(cl, 1)[1]; !ok {
		t.Error("read not served")
	}
}

func TestLeaseConfig(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no check-quorum": {ID: 1, Voters: []uint64{1}, LeaseReads: true, DisableCheckQuorum: true},
		"margin too big":  {ID: 1, Voters: []uint64{1}, LeaseReads: true, LeaseMarginTicks: 10},
		"negative margin": {ID: 1, Voters: []uint64{1}, LeaseMarginTicks: -1},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: New succeeded, want an error", name)
		}
	}
	c, err := New(Config{ID: 1, Voters: []uint64{1}, LeaseReads: true})
	if err != nil {
		t.Fatal(err)
	}
	if m := c.cfg.LeaseMarginTicks; m < 1 || m >= c.cfg.ElectionTicks {
		t.Errorf("default margin %d, want in [1, %d)", m, c.cfg.ElectionTicks)
	}
}

// TestLeaseReadsRestartedVoterWaits: with leases on, a node that just
// (re)started may have promised a leader not to vote before it crashed,
// so it ignores vote requests for an election timeout.
func TestLeaseReadsRestartedVoterWaits(t *testing.T) {
	for _, lease := range []bool{false, true} {
		t.Run(fmt.Sprintf("lease=%v", lease), func(t *testing.T) {
			c, err := New(Config{ID: 1, Voters: []uint64{1, 2, 3}, LeaseReads: lease,
				HardState: HardState{Term: 2}, Entries: logOf(1, 2)})
			if err != nil {
				t.Fatal(err)
			}
			c.randomizedTimeout = 100
			c.Step(Message{Type: MsgVote, From: 2, To: 1, Term: 3, Index: 2, LogTerm: 2})
			rd := drain(c)
			if answered := len(rd.AfterPersist) > 0; answered == lease {
				t.Errorf("vote request right after start answered = %v, want %v", answered, !lease)
			}
			for range c.cfg.ElectionTicks {
				c.Tick()
			}
			c.Step(Message{Type: MsgVote, From: 2, To: 1, Term: 3, Index: 2, LogTerm: 2})
			if rd := drain(c); len(rd.AfterPersist) != 1 || rd.AfterPersist[0].Reject {
				t.Errorf("after an election timeout: %+v, want a grant", rd.AfterPersist)
			}
		})
	}
}

func TestForwardedReadRefusedWhenLeaderStepsDown(t *testing.T) {
	cl := newCluster(t, 3, nil)
	cl.elect(1)
	cl.settle()
	// The leader hears no answers: its rounds never confirm, and
	// check-quorum makes it step down.
	cl.drop = func(m Message) bool {
		return m.To == 1 && (m.Type == MsgHeartbeatResp || m.Type == MsgAppResp)
	}
	if err := cl.nodes[2].ReadIndex(5); err != nil {
		t.Fatal(err)
	}
	for range cl.nodes[1].cfg.ElectionTicks + 1 {
		cl.tick()
	}
	if st := cl.nodes[1].Status(); st.Role == RoleLeader {
		t.Fatalf("leader did not step down: %+v", st)
	}
	if i, ok := servedReads(cl, 2)[5]; !ok || i != 0 {
		t.Errorf("forwarded read: served=%v index %d, want refused (index 0)", ok, i)
	}
}
