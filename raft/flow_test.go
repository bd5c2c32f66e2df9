package raft

import (
	"fmt"
	"slices"
	"testing"
)

func TestReadySplitsMessagesByDurability(t *testing.T) {
	c, _ := New(Config{ID: 1, Voters: []uint64{1, 2, 3}, DisablePreVote: true})
	c.campaign(false)
	rd := drain(c)
	if len(rd.Messages) != 0 || len(rd.AfterPersist) != 2 || rd.AfterPersist[0].Type != MsgVote {
		t.Errorf("candidate: Messages %v, AfterPersist %v; want the vote requests after persisting", rd.Messages, rd.AfterPersist)
	}
	if !rd.HardStateChanged || rd.HardState.Vote != 1 || rd.HardState.Term != 1 {
		t.Errorf("candidate's Ready lacks its term and vote: %+v", rd.HardState)
	}
	c.Step(Message{Type: MsgVoteResp, From: 2, To: 1, Term: 1})
	rd = drain(c)
	if len(rd.Messages) != 2 || rd.Messages[0].Type != MsgApp || len(rd.AfterPersist) != 0 {
		t.Errorf("leader: Messages %v, AfterPersist %v; want MsgApp at once", rd.Messages, rd.AfterPersist)
	}
	if len(rd.Entries) != 1 || rd.Entries[0].Type != EntryNoop {
		t.Errorf("leader's Ready entries = %+v, want its no-op", rd.Entries)
	}

	f := newFollower(t, 2, HardState{})
	f.Step(rd.Messages[0])
	frd := drain(f)
	if len(frd.Messages) != 0 || len(frd.AfterPersist) != 1 || frd.AfterPersist[0].Type != MsgAppResp {
		t.Errorf("follower: Messages %v, AfterPersist %v; want the answer after persisting", frd.Messages, frd.AfterPersist)
	}
}

func TestProbeResumesOnHeartbeatResponse(t *testing.T) {
	cl := newCluster(t, 3, nil)
	cl.crash(3)
	cl.elect(1)
	cl.propose(1, "a")
	cl.settle()
	// Node 3 missed everything; its probe went nowhere. Once back, the
	// next heartbeat answer makes the leader probe again and catch it up.
	cl.restart(3)
	for range 3 {
		cl.tick()
	}
	if got := cl.applied(3); !slices.Equal(got, []string{"a"}) {
		t.Errorf("node 3 applied %q, want [a]:\n%v", got, cl)
	}
}

func TestLostPipelinedAppendIsRepaired(t *testing.T) {
	cl := newCluster(t, 2, nil)
	cl.elect(1)
	lost := false
	cl.drop = func(m Message) bool {
		if m.Type == MsgApp && len(m.Entries) > 0 && string(m.Entries[0].Data) == "c" && !lost {
			lost = true
			return true
		}
		return false
	}
	for _, cmd := range []string{"a", "b", "c"} {
		cl.propose(1, cmd)
		cl.settle()
	}
	// The last MsgApp is lost and nothing follows it: only heartbeat
	// answers can reveal the gap.
	if got := cl.nodes[1].Status().Commit; got != 3 {
		t.Fatalf("commit = %d with c lost, want 3 (no-op, a, b)", got)
	}
	for range 3 {
		cl.tick()
	}
	if got := cl.applied(2); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Errorf("follower applied %q, want [a b c]", got)
	}
}

func TestPipelineWindow(t *testing.T) {
	// Nothing answers: the leader sends at most MaxInflight MsgApp.
	cl := newCluster(t, 2, func(c *Config) { c.MaxInflight = 3; c.MaxMsgEntries = 1 })
	cl.elect(1)
	cl.drop = func(m Message) bool { return m.From == 2 }
	cl.sent = nil
	for i := range 10 {
		cl.propose(1, fmt.Sprint(i))
	}
	cl.settle()
	apps := 0
	for _, m := range cl.sent {
		if m.Type == MsgApp {
			apps++
		}
	}
	if apps != 3 {
		t.Errorf("sent %d MsgApp without answers, want the window of 3", apps)
	}
}

func TestPartitionedNodeDoesNotDisrupt(t *testing.T) {
	// Node 3 is cut off from the leader only (a partial partition). With
	// pre-vote and the 4.2.3 rule, its campaigns must not move the term.
	cl := newCluster(t, 3, nil)
	cl.elect(1)
	term := cl.nodes[1].Status().Term
	cl.drop = func(m Message) bool {
		return (m.From == 1 && m.To == 3) || (m.From == 3 && m.To == 1)
	}
	for range 100 {
		cl.tick()
	}
	if st := cl.nodes[1].Status(); st.Role != RoleLeader || st.Term != term {
		t.Errorf("leader disrupted: %+v, want leader of term %d", st, term)
	}
	if st := cl.nodes[3].Status(); st.Term != term {
		t.Errorf("cut-off node raised its term to %d, want %d", st.Term, term)
	}
}

func TestRejoiningNodeWithHigherTermWithoutPreVote(t *testing.T) {
	// Without pre-vote an isolated node raises its term; back in the
	// group, it must learn the log it missed and the group must go on.
	cl := newCluster(t, 3, func(c *Config) { c.DisablePreVote = true })
	cl.elect(1)
	cl.drop = func(m Message) bool { return m.From == 3 || m.To == 3 }
	for range 50 {
		cl.tick()
	}
	cl.propose(cl.leader(), "a")
	cl.settle()
	cl.drop = nil
	for range 60 {
		cl.tick()
	}
	lead := cl.leader()
	if lead == 0 {
		t.Fatalf("no leader after the rejoin:\n%v", cl)
	}
	cl.propose(lead, "b")
	for range 3 {
		cl.tick()
	}
	for _, id := range cl.ids {
		if got := cl.applied(id); !slices.Equal(got, []string{"a", "b"}) {
			t.Errorf("node %d applied %q, want [a b]", id, got)
		}
	}
}
