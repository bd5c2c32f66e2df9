package raft

import "testing"

func TestTakeDurableCommittedOnlyDurableAndOnce(t *testing.T) {
	c, _ := New(Config{ID: 1, Voters: []uint64{1, 2, 3}, DisablePreVote: true})
	c.campaign(false)
	c.Step(Message{Type: MsgVoteResp, From: 2, To: 1, Term: 1})
	drain(c) // the no-op at 1 is durable, not committed
	if _, _, err := c.Propose([]byte("a")); err != nil {
		t.Fatal(err)
	}
	syncing := c.Ready() // entry 2, being synced

	c.Step(Message{Type: MsgAppResp, From: 2, To: 1, Term: 1, Index: 1})
	got := c.TakeDurableCommitted(c.Status().Applied)
	if len(got) != 1 || got[0].Index != 1 {
		t.Fatalf("TakeDurableCommitted = %+v, want the no-op at 1", got)
	}
	if st := c.Status(); st.Applied != 1 {
		t.Errorf("applied = %d after taking entry 1, want 1", st.Applied)
	}

	// Both followers hold entry 2: it commits, but it is not durable here.
	c.Step(Message{Type: MsgAppResp, From: 2, To: 1, Term: 1, Index: 2})
	c.Step(Message{Type: MsgAppResp, From: 3, To: 1, Term: 1, Index: 2})
	if st := c.Status(); st.Commit != 2 {
		t.Fatalf("commit = %d, want 2", st.Commit)
	}
	if got := c.TakeDurableCommitted(c.Status().Applied); len(got) != 0 {
		t.Fatalf("TakeDurableCommitted = %+v while entry 2 is being synced, want none", got)
	}
	c.Advance(syncing)
	rd := drain(c)
	if len(rd.Committed) != 1 || rd.Committed[0].Index != 2 {
		t.Errorf("next Ready's Committed = %+v, want entry 2 alone (1 was taken)", rd.Committed)
	}
	if got := c.TakeDurableCommitted(c.Status().Applied); len(got) != 0 {
		t.Errorf("TakeDurableCommitted = %+v after everything was handed out, want none", got)
	}
}

// Entries handed out in a Ready and not yet applied come first: entries
// taken now would be applied before them.
func TestTakeDurableCommittedWaitsForHandedOutEntries(t *testing.T) {
	c, _ := New(Config{ID: 1, Voters: []uint64{1, 2, 3}, DisablePreVote: true})
	c.campaign(false)
	c.Step(Message{Type: MsgVoteResp, From: 2, To: 1, Term: 1})
	drain(c) // the no-op at 1 is durable
	c.Propose([]byte("a"))
	drain(c) // entry 2 durable
	c.Step(Message{Type: MsgAppResp, From: 2, To: 1, Term: 1, Index: 1})
	rd := c.Ready() // hands out entry 1, being "synced" (nothing to write)
	if len(rd.Committed) != 1 {
		t.Fatalf("Ready.Committed = %+v, want entry 1", rd.Committed)
	}
	c.Step(Message{Type: MsgAppResp, From: 2, To: 1, Term: 1, Index: 2})
	if got := c.TakeDurableCommitted(0); len(got) != 0 {
		t.Fatalf("TakeDurableCommitted(0) = %+v with entry 1 handed out, not applied; want none", got)
	}
	if got := c.TakeDurableCommitted(1); len(got) != 1 || got[0].Index != 2 {
		t.Fatalf("TakeDurableCommitted(1) = %+v, want entry 2", got)
	}
	c.Advance(rd)
}
