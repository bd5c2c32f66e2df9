package raft

import (
	"slices"
	"testing"
)

// A follower whose Ready hands out only part of what it appended
// (MaxWriteBytes) acknowledges, persists as committed and applies only
// what that Ready writes; the rest comes with the next Ready.
func TestPartialReadyPromisesOnlyWhatItWrites(t *testing.T) {
	c, err := New(Config{ID: 2, Voters: []uint64{1, 2}, MaxWriteBytes: 1, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	ents := []Entry{{Index: 1, Term: 1, Data: []byte("a")}, {Index: 2, Term: 1, Data: []byte("b")}, {Index: 3, Term: 1, Data: []byte("c")}}
	if err := c.Step(Message{Type: MsgApp, From: 1, To: 2, Term: 1, Entries: ents, Commit: 3}); err != nil {
		t.Fatal(err)
	}
	for want := uint64(1); want <= 3; want++ {
		rd := c.Ready()
		if len(rd.Entries) != 1 || rd.Entries[0].Index != want {
			t.Fatalf("Ready %d hands out %+v, want entry %d alone", want, rd.Entries, want)
		}
		for _, m := range rd.AfterPersist {
			if m.Type == MsgAppResp && !m.Reject && m.Index > want {
				t.Errorf("Ready %d acknowledges up to %d", want, m.Index)
			}
		}
		if rd.HardState.Commit > want {
			t.Errorf("Ready %d persists commit %d", want, rd.HardState.Commit)
		}
		if n := len(rd.Committed); n > 0 && rd.Committed[n-1].Index > want {
			t.Errorf("Ready %d applies up to %d", want, rd.Committed[n-1].Index)
		}
		c.Advance(rd)
	}
	if c.HasReady() {
		if rd := c.Ready(); len(rd.Entries) > 0 {
			t.Errorf("entries left after three Readys: %+v", rd.Entries)
		}
	}
}

// A heartbeat's answer does not wait for the disk: it promises nothing
// about the log or the vote, and a large write in flight must not cost the
// leader its quorum.
func TestHeartbeatAnswerLeavesAtOnce(t *testing.T) {
	c, err := New(Config{ID: 2, Voters: []uint64{1, 2, 3}, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Step(Message{Type: MsgHeartbeat, From: 1, To: 2, Term: 1}); err != nil {
		t.Fatal(err)
	}
	rd := c.Ready()
	if !slices.ContainsFunc(rd.Messages, func(m Message) bool { return m.Type == MsgHeartbeatResp }) {
		t.Errorf("heartbeat answer not among the messages that leave at once: %+v / %+v", rd.Messages, rd.AfterPersist)
	}
	// While that write is in flight, the next heartbeat is answered too.
	if err := c.Step(Message{Type: MsgHeartbeat, From: 1, To: 2, Term: 1}); err != nil {
		t.Fatal(err)
	}
	if msgs := c.TakeMessages(); len(msgs) != 1 || msgs[0].Type != MsgHeartbeatResp {
		t.Errorf("TakeMessages during the write = %+v, want the heartbeat answer", msgs)
	}
}

// A leader whose write stays in flight for WriteStallTicks steps down:
// its disk hangs, and it must not hold the group.
func TestLeaderStepsDownOnAStalledWrite(t *testing.T) {
	cl := newCluster(t, 3, func(c *Config) { c.WriteStallTicks = 20 })
	cl.elect(1)
	c := cl.nodes[1]
	c.Propose([]byte("x"))
	c.Ready() // the write begins and never ends
	for range 19 {
		c.Tick()
		for _, m := range c.TakeMessages() { // followers answer heartbeats
			if m.Type == MsgHeartbeat {
				c.Step(Message{Type: MsgHeartbeatResp, From: m.To, To: 1, Term: m.Term, Context: m.Context})
			}
		}
	}
	if c.Status().Role != RoleLeader {
		t.Fatalf("leader stepped down before WriteStallTicks: %+v", c.Status())
	}
	c.Tick()
	if st := c.Status(); st.Role == RoleLeader {
		t.Errorf("leader still leads after its write was in flight for WriteStallTicks: %+v", st)
	}
}
