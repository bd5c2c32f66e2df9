package raft

import (
	"errors"
	"fmt"
	"slices"
	"testing"
)

// newFollower returns a member of {1,2,3} restarted from hs and a log
// whose entry i has term terms[i-1].
func newFollower(t *testing.T, id uint64, hs HardState, terms ...uint64) *Core {
	t.Helper()
	c, err := New(Config{ID: id, Voters: []uint64{1, 2, 3}, HardState: hs, Entries: logOf(terms...)})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func logOf(terms ...uint64) []Entry {
	ents := make([]Entry, len(terms))
	for i, term := range terms {
		ents[i] = Entry{Index: uint64(i + 1), Term: term, Data: []byte{byte(i)}}
	}
	return ents
}

// drain takes a Ready, acting as if it was persisted, sent and applied.
func drain(c *Core) Ready {
	rd := c.Ready()
	c.Advance(rd)
	return rd
}

func TestNewRejectsBadConfig(t *testing.T) {
	for name, cfg := range map[string]Config{
		"zero id":        {Voters: []uint64{1}},
		"id not voter":   {ID: 4, Voters: []uint64{1, 2}},
		"duplicate":      {ID: 1, Voters: []uint64{1, 2, 2}},
		"heartbeat long": {ID: 1, Voters: []uint64{1}, ElectionTicks: 3, HeartbeatTicks: 3},
		"gap in log":     {ID: 1, Voters: []uint64{1}, Entries: []Entry{{Index: 2, Term: 1}}},
		"commit past":    {ID: 1, Voters: []uint64{1}, HardState: HardState{Term: 1, Commit: 1}},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: New(%+v) succeeded, want an error", name, cfg)
		}
	}
}

func TestVoteUpToDateComparesTermFirst(t *testing.T) {
	// The voter's log ends at index 3, term 2.
	tests := []struct {
		lastIndex, lastTerm uint64
		grant               bool
	}{
		{1, 3, true},   // shorter but a higher last term
		{3, 2, true},   // identical
		{5, 2, true},   // same term, longer
		{2, 2, false},  // same term, shorter
		{10, 1, false}, // longer but a lower last term
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("index=%d,term=%d", tt.lastIndex, tt.lastTerm), func(t *testing.T) {
			c := newFollower(t, 1, HardState{Term: 2}, 1, 2, 2)
			c.Step(Message{Type: MsgVote, From: 2, To: 1, Term: 3, Index: tt.lastIndex, LogTerm: tt.lastTerm})
			rd := drain(c)
			if len(rd.AfterPersist) != 1 || rd.AfterPersist[0].Type != MsgVoteResp {
				t.Fatalf("AfterPersist = %+v, want one MsgVoteResp", rd.AfterPersist)
			}
			if got := !rd.AfterPersist[0].Reject; got != tt.grant {
				t.Errorf("granted = %v, want %v", got, tt.grant)
			}
			if st := c.Status(); st.Term != 3 || (st.Vote == 2) != tt.grant {
				t.Errorf("status = %+v, want term 3 and vote for 2 iff granted", st)
			}
			if !rd.HardStateChanged || rd.HardState.Term != 3 {
				t.Errorf("the new term and vote are not in the Ready: %+v", rd.HardState)
			}
		})
	}
}

func TestPreVoteChangesNothing(t *testing.T) {
	for _, grant := range []bool{true, false} {
		t.Run(fmt.Sprintf("grant=%v", grant), func(t *testing.T) {
			c := newFollower(t, 1, HardState{Term: 5}, 1, 5)
			drain(c)
			c.Tick()
			elapsed := c.electionElapsed
			lastTerm := uint64(5)
			if !grant {
				lastTerm = 4
			}
			c.Step(Message{Type: MsgPreVote, From: 2, To: 1, Term: 6, Index: 2, LogTerm: lastTerm})
			if st := c.Status(); st.Term != 5 || st.Vote != 0 || st.Role != RoleFollower {
				t.Errorf("status after pre-vote = %+v, want term 5, no vote", st)
			}
			if c.electionElapsed != elapsed {
				t.Errorf("election timer moved from %d to %d", elapsed, c.electionElapsed)
			}
			rd := drain(c)
			if rd.HardStateChanged {
				t.Errorf("hard state changed: %+v", rd.HardState)
			}
			want := Message{Type: MsgPreVoteResp, From: 1, To: 2, Term: 5, Reject: true}
			if grant {
				want = Message{Type: MsgPreVoteResp, From: 1, To: 2, Term: 6}
			}
			if len(rd.AfterPersist) != 1 || !equalMsg(rd.AfterPersist[0], want) {
				t.Errorf("answer = %+v, want %+v", rd.AfterPersist, want)
			}
		})
	}
}

func equalMsg(a, b Message) bool {
	return a.Type == b.Type && a.From == b.From && a.To == b.To && a.Term == b.Term &&
		a.Index == b.Index && a.LogTerm == b.LogTerm && a.Reject == b.Reject &&
		a.RejectHint == b.RejectHint && a.Commit == b.Commit && len(a.Entries) == len(b.Entries)
}

func TestRecentLeaderIgnoresVoteRequests(t *testing.T) {
	for _, typ := range []MessageType{MsgPreVote, MsgVote} {
		t.Run(typ.String(), func(t *testing.T) {
			c := newFollower(t, 1, HardState{Term: 2}, 1)
			c.randomizedTimeout = 100 // keep it from campaigning itself
			c.Step(Message{Type: MsgHeartbeat, From: 3, To: 1, Term: 2})
			drain(c)
			for range c.cfg.ElectionTicks - 1 {
				c.Tick()
			}
			c.Step(Message{Type: typ, From: 2, To: 1, Term: 3, Index: 5, LogTerm: 3})
			rd := drain(c)
			if st := c.Status(); st.Term != 2 || st.Vote != 0 || st.Lead != 3 {
				t.Errorf("status = %+v, want term 2, no vote, leader 3", st)
			}
			if len(rd.AfterPersist)+len(rd.Messages) != 0 {
				t.Errorf("answered %+v, want silence", rd.AfterPersist)
			}
			// Once the lease ran out, the same request is answered.
			c.Tick()
			c.Step(Message{Type: typ, From: 2, To: 1, Term: 3, Index: 5, LogTerm: 3})
			if rd := drain(c); len(rd.AfterPersist) != 1 || rd.AfterPersist[0].Reject {
				t.Errorf("after the lease: %+v, want a grant", rd.AfterPersist)
			}
		})
	}
}

func TestCheckQuorumStepsDown(t *testing.T) {
	cl := newCluster(t, 3, nil)
	cl.elect(1)
	cl.drop = func(m Message) bool { return m.From == 1 || m.To == 1 }
	for range 9 {
		cl.nodes[1].Tick()
		cl.settle()
	}
	if st := cl.nodes[1].Status(); st.Role != RoleLeader {
		t.Fatalf("leader stepped down before an election timeout passed: %+v", st)
	}
	cl.nodes[1].Tick()
	if st := cl.nodes[1].Status(); st.Role != RoleFollower || st.Lead != 0 {
		t.Errorf("cut-off leader after an election timeout: %+v, want a follower", st)
	}
}

func TestCheckQuorumKeepsHealthyLeader(t *testing.T) {
	cl := newCluster(t, 3, nil)
	cl.elect(1)
	cl.crash(3)
	for range 50 {
		cl.tick()
	}
	if st := cl.nodes[1].Status(); st.Role != RoleLeader {
		t.Errorf("leader with a quorum stepped down: %+v", st)
	}
}

func TestLeaderDoesNotCommitOlderTermByCounting(t *testing.T) {
	// Figure 8: node 1 holds an entry of term 2 it did not create as leader
	// of term 4; a quorum holding it does not commit it, only the no-op of
	// term 4 does (and index 2 with it).
	c, err := New(Config{ID: 1, Voters: []uint64{1, 2, 3}, DisablePreVote: true,
		HardState: HardState{Term: 3}, Entries: logOf(1, 2)})
	if err != nil {
		t.Fatal(err)
	}
	c.campaign(false)
	c.Step(Message{Type: MsgVoteResp, From: 2, To: 1, Term: 4})
	if c.Status().Role != RoleLeader {
		t.Fatalf("not leader: %+v", c.Status())
	}
	drain(c) // the no-op at index 3 is now durable on the leader
	c.Step(Message{Type: MsgAppResp, From: 2, To: 1, Term: 4, Index: 2})
	if got := c.Status().Commit; got != 0 {
		t.Fatalf("commit = %d after a quorum holds the term-2 entry, want 0", got)
	}
	c.Step(Message{Type: MsgAppResp, From: 2, To: 1, Term: 4, Index: 3})
	if got := c.Status().Commit; got != 3 {
		t.Fatalf("commit = %d after a quorum holds the no-op, want 3", got)
	}
}

func TestLeaderCountsOwnEntryOnlyWhenDurable(t *testing.T) {
	c, _ := New(Config{ID: 1, Voters: []uint64{1, 2, 3}, DisablePreVote: true})
	c.campaign(false)
	c.Step(Message{Type: MsgVoteResp, From: 2, To: 1, Term: 1})
	rd := c.Ready() // the no-op, not yet durable
	c.Step(Message{Type: MsgAppResp, From: 2, To: 1, Term: 1, Index: 1})
	if got := c.Status().Commit; got != 0 {
		t.Fatalf("commit = %d before the leader's own write, want 0", got)
	}
	c.Advance(rd)
	if got := c.Status().Commit; got != 1 {
		t.Fatalf("commit = %d after the leader's own write, want 1", got)
	}
}

func TestAppendTruncatesOnlyOnRealConflict(t *testing.T) {
	tests := []struct {
		name      string
		prev      uint64 // index before the entries; its term is the log's
		ents      []uint64
		wantTerms []uint64
		wantLast  uint64 // in the answer
	}{
		{"all match", 1, []uint64{1, 2}, []uint64{1, 1, 2, 2}, 3},
		{"stale prefix", 0, []uint64{1}, []uint64{1, 1, 2, 2}, 1},
		{"extends", 3, []uint64{2, 3}, []uint64{1, 1, 2, 2, 3}, 5},
		{"conflict", 2, []uint64{3}, []uint64{1, 1, 3}, 3},
		{"match then conflict", 1, []uint64{1, 3, 3, 3}, []uint64{1, 1, 3, 3, 3}, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newFollower(t, 1, HardState{Term: 3}, 1, 1, 2, 2)
			ents := make([]Entry, len(tt.ents))
			for i, term := range tt.ents {
				ents[i] = Entry{Index: tt.prev + uint64(i) + 1, Term: term, Data: []byte{byte(tt.prev + uint64(i))}}
			}
			prevTerm, _ := c.log.term(tt.prev)
			c.Step(Message{Type: MsgApp, From: 2, To: 1, Term: 3, Index: tt.prev, LogTerm: prevTerm, Entries: ents})
			rd := drain(c)
			var got []uint64
			for _, e := range c.log.slice(c.log.offset+1, c.log.lastIndex()+1) {
				got = append(got, e.Term)
			}
			if !slices.Equal(got, tt.wantTerms) {
				t.Errorf("log terms = %v, want %v", got, tt.wantTerms)
			}
			if len(rd.AfterPersist) != 1 || rd.AfterPersist[0].Reject || rd.AfterPersist[0].Index != tt.wantLast {
				t.Errorf("answer = %+v, want success at %d", rd.AfterPersist, tt.wantLast)
			}
		})
	}
}

func TestStaleAppendDoesNotTruncate(t *testing.T) {
	c := newFollower(t, 1, HardState{Term: 1})
	full := logOf(1, 1, 1, 1, 1)
	c.Step(Message{Type: MsgApp, From: 2, To: 1, Term: 1, Entries: full})
	drain(c)
	// The same leader's earlier MsgApp, delayed, arrives now.
	c.Step(Message{Type: MsgApp, From: 2, To: 1, Term: 1, Entries: full[:2]})
	rd := drain(c)
	if got := c.log.lastIndex(); got != 5 {
		t.Errorf("last index = %d after a stale MsgApp, want 5", got)
	}
	if len(rd.Entries) != 0 {
		t.Errorf("stale MsgApp produced entries to persist: %+v", rd.Entries)
	}
}

func TestCommitNeverRegresses(t *testing.T) {
	c := newFollower(t, 1, HardState{Term: 1})
	c.Step(Message{Type: MsgApp, From: 2, To: 1, Term: 1, Entries: logOf(1, 1, 1, 1, 1), Commit: 5})
	drain(c)
	for _, m := range []Message{
		{Type: MsgHeartbeat, From: 2, To: 1, Term: 1, Commit: 2},
		{Type: MsgApp, From: 2, To: 1, Term: 1, Index: 1, LogTerm: 1, Commit: 1},
		{Type: MsgApp, From: 2, To: 1, Term: 1, Entries: logOf(1, 1), Commit: 3},
	} {
		c.Step(m)
		drain(c)
		if got := c.Status().Commit; got != 5 {
			t.Fatalf("commit = %d after %+v, want 5", got, m)
		}
	}
}

func TestFollowerCommitCappedByMatchingEntries(t *testing.T) {
	// The follower has a stale tail of term 1; the leader's commit of 5
	// must not commit it, only what this MsgApp proves matches.
	c := newFollower(t, 1, HardState{Term: 2}, 1, 1, 1, 1, 1)
	c.Step(Message{Type: MsgApp, From: 2, To: 1, Term: 2, Index: 1, LogTerm: 1, Commit: 5})
	drain(c)
	if got := c.Status().Commit; got != 1 {
		t.Errorf("commit = %d, want 1 (the last index this MsgApp proves)", got)
	}
}

func TestRestartKeepsVote(t *testing.T) {
	c := newFollower(t, 1, HardState{})
	c.Step(Message{Type: MsgVote, From: 2, To: 1, Term: 5})
	rd := drain(c)
	if rd.AfterPersist[0].Reject {
		t.Fatal("first vote rejected")
	}
	c2, err := New(Config{ID: 1, Voters: []uint64{1, 2, 3}, HardState: rd.HardState})
	if err != nil {
		t.Fatal(err)
	}
	c2.Step(Message{Type: MsgVote, From: 3, To: 1, Term: 5})
	rd2 := drain(c2)
	if !rd2.AfterPersist[0].Reject {
		t.Errorf("restarted node voted twice in term 5")
	}
	c2.Step(Message{Type: MsgVote, From: 2, To: 1, Term: 5})
	if rd3 := drain(c2); rd3.AfterPersist[0].Reject {
		t.Errorf("restarted node refused to repeat its vote")
	}
}

func TestStepUnknownPeer(t *testing.T) {
	c := newFollower(t, 1, HardState{})
	// Vote requests and a current leader's messages are heard from any
	// node (Core.accepts); an answer or a stale-term append is not.
	for _, m := range []Message{
		{Type: MsgAppResp, From: 4, To: 1}, {Type: MsgVoteResp, From: 4, To: 1},
		{Type: MsgHeartbeatResp, From: 4, To: 1}, {Type: MsgTimeoutNow, From: 4, To: 1},
		{Type: MsgApp, From: 2, To: 3}, {Type: MsgApp, From: 1, To: 1},
	} {
		if err := c.Step(m); !errors.Is(err, ErrUnknownPeer) {
			t.Errorf("Step(%+v) = %v, want ErrUnknownPeer", m, err)
		}
	}
}

func TestProposeOnFollower(t *testing.T) {
	c := newFollower(t, 1, HardState{})
	if _, _, err := c.Propose([]byte("x")); !errors.Is(err, ErrNotLeader) {
		t.Errorf("Propose on a follower = %v, want ErrNotLeader", err)
	}
}

func TestRestartWithEntriesBeyondTerm(t *testing.T) {
	// Entries of term 4 reached the disk, the hard state of term 4 did not.
	c, err := New(Config{ID: 1, Voters: []uint64{1, 2, 3},
		HardState: HardState{Term: 3, Vote: 2}, Entries: logOf(1, 4)})
	if err != nil {
		t.Fatal(err)
	}
	if st := c.Status(); st.Term != 4 || st.Vote != 0 {
		t.Errorf("status = %+v, want term 4 and no vote", st)
	}
	if rd := c.Ready(); !rd.HardStateChanged || rd.HardState.Term != 4 {
		t.Errorf("Ready hard state = %+v, changed %v; want term 4 to persist", rd.HardState, rd.HardStateChanged)
	}
}

func TestRestartHandsOutOnlyUnapplied(t *testing.T) {
	c, err := New(Config{ID: 1, Voters: []uint64{1, 2, 3},
		HardState: HardState{Term: 1, Commit: 3}, Entries: logOf(1, 1, 1, 1), Applied: 2})
	if err != nil {
		t.Fatal(err)
	}
	rd := drain(c)
	if len(rd.Committed) != 1 || rd.Committed[0].Index != 3 {
		t.Errorf("Committed = %+v, want only entry 3", rd.Committed)
	}
	if c.HasReady() {
		t.Errorf("HasReady after the only Ready: %+v", c.Ready())
	}
}
