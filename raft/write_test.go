package raft

import (
	"slices"
	"testing"
)

// A leader's Ready hands out at most MaxWriteBytes of entries, and the
// leader replicates only what it handed out: no entry leaves before the
// write that makes it durable here has begun, and no follower's log
// claims more.
func TestLeaderWritesAndSendsInBoundedReadys(t *testing.T) {
	cl := newCluster(t, 3, func(c *Config) { c.MaxWriteBytes = 1 })
	cl.elect(1)
	c := cl.nodes[1]
	for _, cmd := range []string{"a", "b", "c"} {
		cl.propose(1, cmd)
	}
	last := c.Status().LastIndex
	for i := last - 2; i <= last; i++ {
		rd := c.Ready()
		if len(rd.Entries) != 1 || rd.Entries[0].Index != i {
			t.Fatalf("Ready hands out %+v, want entry %d alone", rd.Entries, i)
		}
		for _, m := range rd.Messages {
			if n := len(m.Entries); n > 0 && m.Entries[n-1].Index > i {
				t.Errorf("Ready of entry %d sends entries up to %d to %d", i, m.Entries[n-1].Index, m.To)
			}
		}
		c.Advance(rd)
	}
}

// A follower's Ready is not bounded: its acknowledgements and vote
// requests speak for everything it appended, so they may go only once
// all of it is written.
func TestFollowerWritesWholeLog(t *testing.T) {
	c, err := New(Config{ID: 2, Voters: []uint64{1, 2}, MaxWriteBytes: 1, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	ents := []Entry{{Index: 1, Term: 1, Data: []byte("a")}, {Index: 2, Term: 1, Data: []byte("b")}}
	if err := c.Step(Message{Type: MsgApp, From: 1, To: 2, Term: 1, Entries: ents, Commit: 2}); err != nil {
		t.Fatal(err)
	}
	rd := c.Ready()
	if len(rd.Entries) != 2 || rd.HardState.Commit != 2 {
		t.Errorf("follower's Ready hands out %d entries, commit %d; want both, commit 2", len(rd.Entries), rd.HardState.Commit)
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
