package raft

import (
	"errors"
	"maps"
	"slices"
	"strconv"
	"testing"

	"pgregory.net/rapid"
)

// confChange proposes cc on id and fails the test on an error.
func (cl *cluster) confChange(id uint64, cc ConfChange) uint64 {
	cl.t.Helper()
	i, _, err := cl.nodes[id].ProposeConfChange(cc)
	if err != nil {
		cl.t.Fatalf("ProposeConfChange(%+v) on %d: %v", cc, id, err)
	}
	return i
}

// checkConfiguration fails unless node id's configuration is voters and
// learners.
func (cl *cluster) checkConfiguration(id uint64, voters, learners []uint64) {
	cl.t.Helper()
	v, l := cl.nodes[id].Configuration()
	if !slices.Equal(v, voters) || !slices.Equal(l, learners) {
		cl.t.Fatalf("node %d: voters %v learners %v, want %v and %v", id, v, l, voters, learners)
	}
}

func TestLearnerCatchesUpAndIsPromoted(t *testing.T) {
	cl := newCluster(t, 3, func(c *Config) { c.PromoteLag = 5 })
	cl.elect(1)
	for i := range 30 {
		cl.propose(1, "x"+strconv.Itoa(i))
	}
	cl.settle()
	// Node 4 gets nothing at first: it is added but still far behind.
	cl.drop = func(m Message) bool { return m.To == 4 || m.From == 4 }
	cl.join(4)
	cl.confChange(1, ConfChange{Type: ConfAddLearner, NodeID: 4})
	cl.settle()
	for _, id := range []uint64{1, 2, 3} {
		cl.checkConfiguration(id, []uint64{1, 2, 3}, []uint64{4})
	}
	cl.tick()
	cl.checkConfiguration(1, []uint64{1, 2, 3}, []uint64{4}) // not promoted while behind
	cl.drop = nil
	for range 5 {
		cl.tick()
	}
	if got, want := cl.applied(4), cl.applied(1); !slices.Equal(got, want) || len(got) != 30 {
		t.Fatalf("learner applied %d commands, leader %d", len(got), len(want))
	}
	for _, id := range cl.ids {
		cl.checkConfiguration(id, []uint64{1, 2, 3, 4}, nil)
	}
}

func TestLearnerDoesNotCountForQuorum(t *testing.T) {
	cl := newCluster(t, 3, func(c *Config) { c.PromoteLag = -1 })
	cl.elect(1)
	cl.join(4)
	cl.confChange(1, ConfAddLearner4)
	cl.settle()
	cl.crash(2)
	cl.crash(3)
	i := cl.propose(1, "lost")
	cl.settle()
	if st := cl.nodes[1].Status(); st.Commit >= i {
		t.Fatalf("commit %d reached %d with one voter of three and a learner", st.Commit, i)
	}
	if l := cl.nodes[4].Status().LastIndex; l < i {
		t.Fatalf("learner holds up to %d, want %d: learners receive entries", l, i)
	}
	for range 25 {
		cl.tick()
	}
	if st := cl.nodes[1].Status(); st.Role == RoleLeader {
		t.Fatal("leader kept leading with only a learner answering (check-quorum)")
	}
	if st := cl.nodes[4].Status(); st.Role != RoleFollower || st.Term != cl.nodes[1].Status().Term {
		t.Fatalf("learner campaigned: %+v", st)
	}
}

// ConfAddLearner4 adds node 4 as a learner.
var ConfAddLearner4 = ConfChange{Type: ConfAddLearner, NodeID: 4, Addr: "n4:7000"}

func TestConfChangeRefusals(t *testing.T) {
	tests := []struct {
		name  string
		setup func(cl *cluster)
		cc    ConfChange
		want  error
	}{
		{"second while one is uncommitted", func(cl *cluster) {
			cl.elect(1)
			cl.join(4)
			cl.confChange(1, ConfAddLearner4) // not settled: uncommitted
		}, ConfChange{Type: ConfAddLearner, NodeID: 5}, ErrConfChangeInProgress},
		{"new leader before committing in its term", func(cl *cluster) {
			cl.drop = func(m Message) bool { return m.Type == MsgAppResp }
			cl.elect(1)
		}, ConfAddLearner4, ErrConfChangeInProgress},
		{"follower", func(cl *cluster) { cl.elect(2) }, ConfAddLearner4, ErrNotLeader},
		{"add a member", func(cl *cluster) { cl.elect(1) }, ConfChange{Type: ConfAddLearner, NodeID: 2}, ErrInvalidConfChange},
		{"promote a voter", func(cl *cluster) { cl.elect(1) }, ConfChange{Type: ConfPromoteLearner, NodeID: 2}, ErrInvalidConfChange},
		{"remove a non-member", func(cl *cluster) { cl.elect(1) }, ConfChange{Type: ConfRemoveMember, NodeID: 9}, ErrInvalidConfChange},
		{"remove a live voter with another one down", func(cl *cluster) {
			cl.elect(1)
			cl.crash(3)
			for range 10 {
				cl.tick()
			}
		}, ConfChange{Type: ConfRemoveMember, NodeID: 2}, ErrQuorumAtRisk},
		{"remove the leader with the rest down", func(cl *cluster) {
			cl.elect(1)
			cl.crash(3)
			for range 10 {
				cl.tick()
			}
		}, ConfChange{Type: ConfRemoveMember, NodeID: 1}, ErrQuorumAtRisk},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cl := newCluster(t, 3, nil)
			tt.setup(cl)
			if _, _, err := cl.nodes[1].ProposeConfChange(tt.cc); !errors.Is(err, tt.want) {
				t.Fatalf("ProposeConfChange(%+v) = %v, want %v", tt.cc, err, tt.want)
			}
		})
	}
}

func TestConfChangeAcceptedOnceSettled(t *testing.T) {
	t.Run("after the previous change committed", func(t *testing.T) {
		cl := newCluster(t, 3, func(c *Config) { c.PromoteLag = -1 })
		cl.elect(1)
		cl.join(4)
		cl.confChange(1, ConfAddLearner4)
		cl.settle()
		cl.confChange(1, ConfChange{Type: ConfPromoteLearner, NodeID: 4})
		cl.settle()
		cl.checkConfiguration(2, []uint64{1, 2, 3, 4}, nil)
	})
	t.Run("after the new leader committed in its term", func(t *testing.T) {
		cl := newCluster(t, 3, nil)
		cl.drop = func(m Message) bool { return m.Type == MsgAppResp }
		cl.elect(1)
		cl.drop = nil
		cl.tick()
		cl.confChange(1, ConfChange{Type: ConfRemoveMember, NodeID: 3})
	})
	t.Run("removing a voter that is down", func(t *testing.T) {
		cl := newCluster(t, 3, nil)
		cl.elect(1)
		cl.crash(3)
		for range 10 {
			cl.tick()
		}
		cl.confChange(1, ConfChange{Type: ConfRemoveMember, NodeID: 3})
		cl.settle()
		cl.checkConfiguration(2, []uint64{1, 2}, nil)
		i := cl.propose(1, "two of two")
		cl.settle()
		if st := cl.nodes[2].Status(); st.Commit < i {
			t.Fatalf("commit %d, want %d: two voters of two", st.Commit, i)
		}
	})
}

func TestRemoveLeader(t *testing.T) {
	cl := newCluster(t, 3, nil)
	cl.allowUnknown = true
	cl.elect(1)
	cl.propose(1, "a")
	i := cl.confChange(1, ConfChange{Type: ConfRemoveMember, NodeID: 1})
	// Before the removal commits the leader still leads and commits.
	cl.drop = func(m Message) bool { return m.Type == MsgAppResp }
	cl.settle()
	if st := cl.nodes[1].Status(); st.Role != RoleLeader || st.Commit >= i {
		t.Fatalf("leader before the removal committed: %+v", st)
	}
	cl.drop = nil
	for range 3 {
		cl.tick()
	}
	if st := cl.nodes[1].Status(); st.Role == RoleLeader {
		t.Fatalf("removed leader still leads after the removal committed: %+v", st)
	}
	for range 30 {
		cl.tick()
	}
	lead := cl.leader()
	if lead != 2 && lead != 3 {
		t.Fatalf("leader %d after removing node 1, want 2 or 3", lead)
	}
	j := cl.propose(lead, "b")
	cl.settle()
	for _, id := range []uint64{2, 3} {
		if st := cl.nodes[id].Status(); st.Commit < j {
			t.Fatalf("node %d commit %d, want %d", id, st.Commit, j)
		}
		cl.checkConfiguration(id, []uint64{2, 3}, nil)
	}
	if st := cl.nodes[1].Status(); st.Role != RoleFollower {
		t.Fatalf("removed node campaigns: %+v", st)
	}
}

func TestRemovedNodeCannotDisrupt(t *testing.T) {
	for _, preVote := range []bool{true, false} {
		t.Run("prevote="+strconv.FormatBool(preVote), func(t *testing.T) {
			cl := newCluster(t, 3, func(c *Config) { c.DisablePreVote = !preVote })
			cl.allowUnknown = true
			cl.elect(1)
			// Node 3 is cut off and never learns of its removal.
			cl.drop = func(m Message) bool { return m.To == 3 || m.From == 3 }
			cl.confChange(1, ConfChange{Type: ConfRemoveMember, NodeID: 3})
			cl.settle()
			for range 30 {
				cl.tick()
			}
			cl.drop = nil
			term := cl.nodes[1].Status().Term
			campaigned := false
			for range 50 {
				cl.tick()
				campaigned = campaigned || cl.nodes[3].Status().Role != RoleFollower
			}
			if st := cl.nodes[1].Status(); st.Role != RoleLeader || st.Term != term {
				t.Fatalf("leader disrupted by the removed node: %+v, term was %d", st, term)
			}
			if !campaigned {
				t.Fatal("the removed node never campaigned: the test shows nothing")
			}
			if st := cl.nodes[3].Status(); st.Role == RoleLeader {
				t.Fatalf("removed node leads: %+v", st)
			}
		})
	}
}

func TestConfRevertsOnTruncation(t *testing.T) {
	cl := newCluster(t, 3, nil)
	cl.allowUnknown = true
	cl.elect(1)
	cl.drop = func(m Message) bool { return m.From == 1 }
	cl.confChange(1, ConfAddLearner4)
	cl.settle()
	cl.checkConfiguration(1, []uint64{1, 2, 3}, []uint64{4})
	cl.checkConfiguration(2, []uint64{1, 2, 3}, nil)
	cl.nodes[2].campaignFor(false, true) // as if node 1 had handed over
	cl.settle()
	if cl.nodes[2].Status().Role != RoleLeader {
		t.Fatalf("node 2 did not win: %v", cl)
	}
	cl.drop = nil
	cl.tick()
	cl.tick()
	if st := cl.nodes[1].Status(); st.Role != RoleFollower || st.Lead != 2 {
		t.Fatalf("old leader: %+v", st)
	}
	cl.checkConfiguration(1, []uint64{1, 2, 3}, nil)
}

func TestRestartRebuildsMembership(t *testing.T) {
	cl := newCluster(t, 3, func(c *Config) { c.PromoteLag = -1 })
	cl.elect(1)
	cl.join(4)
	cl.confChange(1, ConfAddLearner4)
	cl.settle()
	cl.confChange(1, ConfChange{Type: ConfRemoveMember, NodeID: 3})
	cl.settle()
	for _, id := range []uint64{2, 4} {
		cl.crash(id)
		cl.restart(id)
		cl.checkConfiguration(id, []uint64{1, 2}, []uint64{4})
	}
}

func TestSnapshotCarriesMembership(t *testing.T) {
	cl := newCluster(t, 3, func(c *Config) { c.PromoteLag = -1 })
	cl.elect(1)
	cl.join(4)
	cl.confChange(1, ConfAddLearner4)
	cl.settle()
	c := cl.nodes[1]
	applied := c.Status().Applied
	if err := c.Compact(applied); err != nil {
		t.Fatal(err)
	}
	meta := c.newest()
	if !slices.Equal(meta.Voters, []uint64{1, 2, 3}) || !slices.Equal(meta.Learners, []uint64{4}) ||
		!maps.Equal(meta.Addrs, map[uint64]string{4: ConfAddLearner4.Addr}) {
		t.Fatalf("snapshot meta %+v lacks the configuration", meta)
	}

	// The leader's MsgSnap carries it, on the wire too, and the follower
	// installs it.
	f, err := New(Config{ID: 5, Voters: []uint64{1}, Learners: []uint64{5}})
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("state")
	m := Message{Type: MsgSnap, From: 1, To: 5, Term: 1, Index: meta.Index, LogTerm: meta.Term,
		SnapTotal: uint64(len(data)), SnapChecksum: SnapshotChecksum(data), SnapDone: true, SnapData: data,
		SnapVoters: meta.Voters, SnapLearners: []uint64{4, 5}, SnapAddrs: map[uint64]string{4: "n4:7000", 5: "n5:7000"}}
	b, _ := m.AppendBinary(nil)
	var got Message
	if err := got.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if err := f.Step(got); err != nil {
		t.Fatal(err)
	}
	rd := f.Ready()
	if !slices.Equal(rd.Snapshot.Voters, []uint64{1, 2, 3}) || !slices.Equal(rd.Snapshot.Learners, []uint64{4, 5}) ||
		!maps.Equal(rd.Snapshot.Addrs, m.SnapAddrs) {
		t.Fatalf("installed snapshot %+v", rd.Snapshot)
	}
	if v, l := f.Configuration(); !slices.Equal(v, []uint64{1, 2, 3}) || !slices.Equal(l, []uint64{4, 5}) {
		t.Fatalf("after install: voters %v learners %v", v, l)
	}

	// A restart from that snapshot takes its configuration over Voters,
	// and the snapshots it takes later carry the addresses on, less those
	// of members removed since.
	r, err := New(Config{ID: 4, Voters: []uint64{1, 2, 3}, Learners: []uint64{4}, Snapshot: SnapshotMeta{
		Index: 10, Term: 2, Voters: []uint64{1, 2, 4}, Learners: []uint64{7},
		Addrs: map[uint64]string{4: "n4:7000", 7: "n7:7000"}}})
	if err != nil {
		t.Fatal(err)
	}
	if v, l := r.Configuration(); !slices.Equal(v, []uint64{1, 2, 4}) || !slices.Equal(l, []uint64{7}) {
		t.Fatalf("after restart: voters %v learners %v", v, l)
	}
	remove7, _ := (&ConfChange{Type: ConfRemoveMember, NodeID: 7}).AppendBinary(nil)
	r.Step(Message{Type: MsgApp, From: 1, To: 4, Term: 2, Index: 10, LogTerm: 2, Commit: 11,
		Entries: []Entry{{Index: 11, Term: 2, Type: EntryConfig, Data: remove7}}})
	drain(r)
	if err := r.Compact(11); err != nil {
		t.Fatal(err)
	}
	if got := r.newest(); !slices.Equal(got.Learners, nil) || !maps.Equal(got.Addrs, map[uint64]string{4: "n4:7000"}) {
		t.Fatalf("snapshot after removing 7: %+v, want 7 and its address gone", got)
	}
}

func TestConfChangeRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		cc := ConfChange{
			Type:   ConfChangeType(rapid.IntRange(1, int(confChangeTypeEnd)-1).Draw(t, "type")),
			NodeID: rapid.Uint64Min(1).Draw(t, "id"),
			Addr:   rapid.String().Draw(t, "addr"),
		}
		b, _ := cc.AppendBinary(nil)
		var got ConfChange
		if err := got.UnmarshalBinary(b); err != nil || got != cc {
			t.Fatalf("round trip of %+v: %+v, %v", cc, got, err)
		}
	})
}

func TestMessageConfRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		m := Message{Type: MsgSnap, From: 1, To: 2, SnapTotal: 1, SnapDone: true, SnapData: []byte{7},
			SnapVoters:   rapid.SliceOfN(rapid.Uint64(), 1, 5).Draw(t, "voters"),
			SnapLearners: rapid.SliceOfN(rapid.Uint64(), 0, 5).Draw(t, "learners")}
		if len(m.SnapLearners) == 0 {
			m.SnapLearners = nil
		}
		m.SnapAddrs = rapid.MapOfN(rapid.Uint64Min(1), rapid.String(), 0, 5).Draw(t, "addrs")
		if len(m.SnapAddrs) == 0 {
			m.SnapAddrs = nil
		}
		b, _ := m.AppendBinary(nil)
		var got Message
		if err := got.UnmarshalBinary(b); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got.SnapVoters, m.SnapVoters) || !slices.Equal(got.SnapLearners, m.SnapLearners) ||
			!maps.Equal(got.SnapAddrs, m.SnapAddrs) {
			t.Fatalf("round trip: %v %v %v, want %v %v %v", got.SnapVoters, got.SnapLearners, got.SnapAddrs,
				m.SnapVoters, m.SnapLearners, m.SnapAddrs)
		}
	})
}

func FuzzConfChange(f *testing.F) {
	for _, cc := range []ConfChange{ConfAddLearner4, {Type: ConfRemoveMember, NodeID: 1 << 60}} {
		b, _ := cc.AppendBinary(nil)
		f.Add(b)
	}
	f.Add([]byte{1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		var cc ConfChange
		if cc.UnmarshalBinary(b) != nil {
			return
		}
		again, _ := cc.AppendBinary(nil)
		var cc2 ConfChange
		if err := cc2.UnmarshalBinary(again); err != nil || cc2 != cc {
			t.Fatalf("re-decoding %+v: %+v, %v", cc, cc2, err)
		}
	})
}

func FuzzMessageConfDecode(f *testing.F) {
	for _, m := range []Message{
		{Type: MsgSnap, From: 1, To: 2, Term: 3, Index: 9, LogTerm: 2, SnapTotal: 4, SnapData: []byte("abcd"), SnapDone: true,
			SnapVoters: []uint64{1, 2, 3}, SnapLearners: []uint64{4}},
		{Type: MsgSnap, From: 1, To: 2, Term: 3, Index: 9, LogTerm: 2, SnapTotal: 1, SnapData: []byte("a"), SnapDone: true,
			SnapVoters: []uint64{1, 4}, SnapAddrs: map[uint64]string{1: "a:1", 4: "[::1]:7000"}},
		{Type: MsgSnap, From: 1, To: 2, Term: 3, Index: 9, LogTerm: 2, SnapTotal: 8, SnapData: []byte("abcd"), SnapLearners: []uint64{1 << 62}},
	} {
		b, _ := m.AppendBinary(nil)
		f.Add(b)
	}
	f.Fuzz(checkMessageReencodes)
}

// A node whose removal is the uncommitted last configuration entry of its
// log still campaigns (thesis 4.2.2): it may hold the only complete log.
// It wins only with a quorum of the remaining voters, its own vote not
// counting, commits its removal as leader and steps down for good.
func TestRemovedButUncommittedNodeCampaigns(t *testing.T) {
	data, _ := (&ConfChange{Type: ConfRemoveMember, NodeID: 1}).AppendBinary(nil)
	c, err := New(Config{ID: 1, Voters: []uint64{1, 2, 3}, HardState: HardState{Term: 1},
		Entries: []Entry{{Index: 1, Term: 1, Type: EntryConfig, Data: data}}})
	if err != nil {
		t.Fatal(err)
	}
	var sent []Message
	for range 2 * DefaultElectionTicks {
		c.Tick()
		rd := drain(c)
		sent = append(sent, rd.AfterPersist...)
	}
	if st := c.Status(); st.Role != RolePreCandidate || len(sent) == 0 || sent[0].Type != MsgPreVote {
		t.Fatalf("after an election timeout: %+v, sent %v; want a pre-vote campaign", st, sent)
	}
	for _, from := range []uint64{2, 3} {
		c.Step(Message{Type: MsgPreVoteResp, From: from, To: 1, Term: 2})
	}
	if st := c.Status(); st.Role != RoleCandidate || st.Term != 2 {
		t.Fatalf("after two pre-votes: %+v, want a candidate of term 2", st)
	}
	c.Step(Message{Type: MsgVoteResp, From: 2, To: 1, Term: 2})
	if st := c.Status(); st.Role != RoleCandidate {
		t.Fatalf("won with one vote of the voters [2 3] and its own, which does not count: %+v", st)
	}
	c.Step(Message{Type: MsgVoteResp, From: 3, To: 1, Term: 2})
	if st := c.Status(); st.Role != RoleLeader {
		t.Fatalf("not leader with the votes of both remaining voters: %+v", st)
	}
	drain(c)
	for _, from := range []uint64{2, 3} {
		c.Step(Message{Type: MsgAppResp, From: from, To: 1, Term: 2, Index: 2})
	}
	if st := c.Status(); st.Commit != 2 || st.Role != RoleFollower {
		t.Fatalf("after both voters acknowledged its removal and no-op: %+v, want commit 2 and stepped down", st)
	}
	if rd := drain(c); len(rd.AfterPersist) != 1 || rd.AfterPersist[0].Type != MsgTimeoutNow {
		t.Fatalf("stepping down sent %v, want MsgTimeoutNow to the up-to-date voter", rd.AfterPersist)
	}
	for range 4 * DefaultElectionTicks {
		c.Tick()
		if rd := drain(c); len(rd.AfterPersist) > 0 {
			t.Fatalf("campaigns after its removal committed: %v", rd.AfterPersist)
		}
	}
}

// A single voter wins its election at once, before its new term is
// durable. Its appends to a learner must wait for that: should it crash
// first, it forgets the term, and another node may lead the same term
// (as one that its lost configuration entry still counted as a voter
// may), whose entries of that term the learner would take as matching.
func TestSingleVoterSpeaksAfterItsTermIsDurable(t *testing.T) {
	c, err := New(Config{ID: 1, Voters: []uint64{1}, Learners: []uint64{2}})
	if err != nil {
		t.Fatal(err)
	}
	for c.Status().Role != RoleLeader {
		c.Tick()
	}
	rd := c.Ready()
	if rd.HardState.Term != 1 || !rd.HardStateChanged {
		t.Fatalf("first Ready as leader has hard state %+v, want term 1 to persist", rd.HardState)
	}
	if len(rd.Messages) != 0 {
		t.Fatalf("leader of a term not yet durable sends at once: %v", rd.Messages)
	}
	if len(rd.AfterPersist) == 0 || rd.AfterPersist[0].Type != MsgApp || rd.AfterPersist[0].To != 2 {
		t.Fatalf("AfterPersist %v, want the MsgApp to the learner", rd.AfterPersist)
	}
	c.Advance(rd)
	c.Step(Message{Type: MsgAppResp, From: 2, To: 1, Term: 1, Index: 1})
	c.Propose([]byte("x"))
	if rd := c.Ready(); len(rd.Messages) == 0 || rd.Messages[0].Type != MsgApp {
		t.Fatalf("with its term durable the leader should send at once: %v then %v", rd.Messages, rd.AfterPersist)
	}
}
