package raft

import (
	"errors"
	"testing"
)

func TestTransferLeadership(t *testing.T) {
	tests := []struct {
		name string
		to   uint64
		down uint64 // a follower that is down, so the other is more up to date
		want uint64
	}{
		{"named", 3, 0, 3},
		{"named lagging", 2, 0, 2},
		{"most up to date", 0, 2, 3},
		{"most up to date, ties to lowest id", 0, 0, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cl := newCluster(t, 3, nil)
			cl.elect(1)
			if tt.down != 0 {
				cl.crash(tt.down)
			}
			cl.propose(1, "a")
			cl.settle()
			term := cl.nodes[1].Status().Term
			if err := cl.nodes[1].TransferLeadership(tt.to); err != nil {
				t.Fatalf("TransferLeadership(%d): %v", tt.to, err)
			}
			if got := cl.nodes[1].Status().Transferee; got != tt.want {
				t.Errorf("transferee = %d, want %d", got, tt.want)
			}
			if _, _, err := cl.nodes[1].Propose([]byte("b")); !errors.Is(err, ErrTransferring) || !errors.Is(err, ErrProposalDropped) {
				t.Errorf("Propose during transfer: %v, want ErrTransferring wrapping ErrProposalDropped", err)
			}
			cl.settle()
			st := cl.nodes[tt.want].Status()
			if st.Role != RoleLeader || st.Term != term+1 {
				t.Fatalf("after transfer node %d = %+v, want leader of term %d:\n%v", tt.want, st, term+1, cl)
			}
			if st := cl.nodes[1].Status(); st.Role != RoleFollower || st.Lead != tt.want {
				t.Errorf("old leader = %+v, want a follower of %d", st, tt.want)
			}
			cl.propose(tt.want, "c")
			cl.settle()
			if got := cl.applied(tt.want); len(got) != 2 || got[1] != "c" {
				t.Errorf("new leader applied %q, want [a c]", got)
			}
		})
	}
}

func TestTransferWaitsForTargetToCatchUp(t *testing.T) {
	cl := newCluster(t, 3, nil)
	cl.elect(1)
	blocked := true
	cl.drop = func(m Message) bool { return blocked && m.To == 3 && m.Type == MsgApp }
	for _, s := range []string{"a", "b", "c"} {
		cl.propose(1, s)
	}
	cl.settle()
	before := len(cl.sent)
	cl.nodes[1].TransferLeadership(3)
	cl.settle()
	if n := countSent(cl, before, MsgTimeoutNow); n != 0 {
		t.Fatalf("sent %d MsgTimeoutNow to a target that lacks entries", n)
	}
	blocked = false
	for range 5 { // heartbeat answers reveal the lost appends
		if cl.nodes[3].Status().Role == RoleLeader {
			break
		}
		cl.tick()
	}
	if st := cl.nodes[3].Status(); st.Role != RoleLeader || st.LastIndex < 4 {
		t.Errorf("node 3 = %+v, want leader with the whole log", st)
	}
}

func TestTransferTimeoutResumesProposals(t *testing.T) {
	cl := newCluster(t, 3, nil)
	cl.elect(1)
	cl.crash(3)
	c := cl.nodes[1]
	if err := c.TransferLeadership(3); err != nil {
		t.Fatal(err)
	}
	for i := range c.cfg.ElectionTicks - 1 {
		cl.tick()
		if _, _, err := c.Propose([]byte("x")); !errors.Is(err, ErrTransferring) {
			t.Fatalf("tick %d of the transfer: Propose = %v, want ErrTransferring", i+1, err)
		}
	}
	cl.tick()
	if st := c.Status(); st.Role != RoleLeader || st.Transferee != 0 {
		t.Fatalf("after an election timeout: %+v, want a leader with no transfer", st)
	}
	cl.propose(1, "y")
	cl.settle()
	if got := cl.applied(1); len(got) != 1 || got[0] != "y" {
		t.Errorf("applied %q, want [y]", got)
	}
}

func TestTransferErrors(t *testing.T) {
	cl := newCluster(t, 3, nil)
	cl.elect(1)
	if err := cl.nodes[2].TransferLeadership(3); !errors.Is(err, ErrNotLeader) {
		t.Errorf("on a follower: %v, want ErrNotLeader", err)
	}
	if err := cl.nodes[1].TransferLeadership(7); !errors.Is(err, ErrUnknownPeer) {
		t.Errorf("to a stranger: %v, want ErrUnknownPeer", err)
	}
	if err := cl.nodes[1].TransferLeadership(1); err != nil || cl.nodes[1].Status().Transferee != 0 {
		t.Errorf("to itself: %v, transferee %d; want nothing done", err, cl.nodes[1].Status().Transferee)
	}
	one := newCluster(t, 1, nil)
	one.elect(1)
	if err := one.nodes[1].TransferLeadership(0); !errors.Is(err, ErrUnknownPeer) {
		t.Errorf("in a group of one: %v, want ErrUnknownPeer", err)
	}
}

// TestTransferBypassesRecentLeaderRule: a voter that just heard from its
// leader ignores vote requests (thesis 4.2.3) unless the request comes
// from a transfer the leader asked for.
func TestTransferBypassesRecentLeaderRule(t *testing.T) {
	tests := []struct {
		typ      MessageType
		transfer bool
		answered bool
	}{
		{MsgVote, false, false},
		{MsgPreVote, false, false},
		{MsgPreVote, true, false}, // pre-votes never bypass it
		{MsgVote, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.typ.String()+map[bool]string{true: "/transfer", false: ""}[tt.transfer], func(t *testing.T) {
			c := newFollower(t, 1, HardState{Term: 2}, 1)
			c.randomizedTimeout = 100
			c.Step(Message{Type: MsgHeartbeat, From: 3, To: 1, Term: 2})
			drain(c)
			c.Step(Message{Type: tt.typ, From: 2, To: 1, Term: 3, Index: 5, LogTerm: 3, Transfer: tt.transfer})
			rd := drain(c)
			answered := len(rd.AfterPersist) == 1 && !rd.AfterPersist[0].Reject
			if answered != tt.answered {
				t.Errorf("answered with a grant = %v (%+v), want %v", answered, rd.AfterPersist, tt.answered)
			}
		})
	}
}

func TestTimeoutNowCampaignsWithoutPreVote(t *testing.T) {
	cl := newCluster(t, 3, nil) // pre-vote on
	cl.elect(1)
	cl.settle()
	c := cl.nodes[2]
	c.Step(Message{Type: MsgTimeoutNow, From: 1, To: 2, Term: c.Status().Term})
	rd := drain(c)
	if st := c.Status(); st.Role != RoleCandidate {
		t.Fatalf("after MsgTimeoutNow: %+v, want a candidate", st)
	}
	for _, m := range rd.AfterPersist {
		if m.Type != MsgVote || !m.Transfer {
			t.Errorf("sent %v transfer=%v, want MsgVote with Transfer", m.Type, m.Transfer)
		}
	}
	// An ordinary election carries no Transfer flag.
	c = cl.nodes[3]
	c.campaign(false)
	for _, m := range drain(c).AfterPersist {
		if m.Transfer {
			t.Errorf("ordinary campaign sent %+v with Transfer", m)
		}
	}
}

func TestTransferEndsLease(t *testing.T) {
	cl, lead := leaseCluster(t)
	c := cl.nodes[lead]
	to := lead%3 + 1
	cl.drop = func(m Message) bool { return m.Type == MsgTimeoutNow }
	if err := c.TransferLeadership(to); err != nil {
		t.Fatal(err)
	}
	cl.settle()
	if c.leaseHolds() {
		t.Error("lease holds during a transfer")
	}
	for range c.cfg.ElectionTicks {
		cl.tick()
	}
	if st := c.Status(); st.Role != RoleLeader || st.Transferee != 0 {
		t.Fatalf("after the abandoned transfer: %+v, want still leading", st)
	}
	// MsgTimeoutNow went out (and might still arrive): no lease this term.
	before := len(cl.sent)
	c.LeaseRead(1)
	cl.settle()
	if got := countSent(cl, before, MsgHeartbeat); got != 2 {
		t.Errorf("lease read after a transfer sent %d heartbeats, want a ReadIndex round of 2", got)
	}
	if _, ok := servedReads(cl, lead)[1]; !ok {
		t.Error("read not served by the round")
	}
}
