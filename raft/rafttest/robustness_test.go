package rafttest

import (
	"testing"

	"github.com/bifrost-go/bifrost/raft"
)

// A leader must not panic on a follower's append acknowledgement that
// claims more than the leader's log holds. No correct follower sends one,
// but it comes from the network, and the design allows panics only for
// broken internal invariants. (The simulator's checker self-test found
// the core panicking here; fixed in the core since, kept as a regression
// test.)
func TestLeaderIgnoresAckBeyondItsLog(t *testing.T) {
	c, err := raft.New(raft.Config{ID: 1, Voters: []uint64{1, 2, 3}, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	for c.Status().Role != raft.RolePreCandidate && c.Status().Role != raft.RoleCandidate {
		c.Tick()
	}
	drain := func() {
		for c.HasReady() {
			c.Advance(c.Ready())
		}
	}
	drain()
	for c.Status().Role != raft.RoleLeader {
		st := c.Status()
		typ := raft.MsgVoteResp
		term := st.Term
		if st.Role == raft.RolePreCandidate {
			typ, term = raft.MsgPreVoteResp, st.Term+1
		}
		if err := c.Step(raft.Message{Type: typ, From: 2, To: 1, Term: term}); err != nil {
			t.Fatal(err)
		}
		drain()
	}
	st := c.Status()
	defer func() {
		if r := recover(); r != nil {
			t.Errorf("leader panicked on MsgAppResp with Index %d beyond its last index %d: %v",
				st.LastIndex+5, st.LastIndex, r)
		}
	}()
	if err := c.Step(raft.Message{Type: raft.MsgAppResp, From: 2, To: 1, Term: st.Term, Index: st.LastIndex + 5}); err != nil {
		t.Logf("Step refused it: %v", err)
	}
	drain()
	c.Propose([]byte("x"))
	drain()
}

// A follower steps a MsgApp of term 1 and, before the driver takes a
// Ready (its disk was busy), a MsgApp of term 2 that replaces those
// entries. The next Ready must not acknowledge the replaced term-1
// entries: they were never persisted.
func TestNoAckForReplacedEntries(t *testing.T) {
	c, err := raft.New(raft.Config{ID: 3, Voters: []uint64{1, 2, 3}, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	step := func(m raft.Message) {
		t.Helper()
		if err := c.Step(m); err != nil {
			t.Fatal(err)
		}
	}
	// Leader 1, term 1: entries 1-3.
	step(raft.Message{Type: raft.MsgApp, From: 1, To: 3, Term: 1, Index: 0, LogTerm: 0, Entries: []raft.Entry{
		{Index: 1, Term: 1}, {Index: 2, Term: 1, Data: []byte("a")}, {Index: 3, Term: 1, Data: []byte("b")},
	}})
	// Leader 2, term 2, elected without node 3: its entry 1 replaces them.
	step(raft.Message{Type: raft.MsgApp, From: 2, To: 3, Term: 2, Index: 0, LogTerm: 0, Entries: []raft.Entry{
		{Index: 1, Term: 2},
	}})
	rd := c.Ready()
	last := uint64(0)
	if n := len(rd.Entries); n > 0 {
		last = rd.Entries[n-1].Index
	}
	for _, m := range append(rd.Messages, rd.AfterPersist...) {
		if m.Type == raft.MsgAppResp && !m.Reject && m.Index > last {
			t.Errorf("the Ready persists the log up to %d (%v) but acknowledges index %d to node %d in term %d",
				last, rd.Entries, m.Index, m.To, m.Term)
		}
	}
}
