package raft

import (
	"errors"
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

// checkMembership fails unless node id's configuration is voters and
// learners.
func (cl *cluster) checkMembership(id uint64, voters, learners []uint64) {
	cl.t.Helper()
	v, l := cl.nodes[id].Membership()
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
		cl.checkMembership(id, []uint64{1, 2, 3}, []uint64{4})
	}
	cl.tick()
	cl.checkMembership(1, []uint64{1, 2, 3}, []uint64{4}) // not promoted while behind
	cl.drop = nil
	for range 5 {
		cl.tick()
	}
	if got, want := cl.applied(4), cl.applied(1); !slices.Equal(got, want) || len(got) != 30 {
		t.Fatalf("learner applied %d commands, leader %d", len(got), len(want))
	}
	for _, id := range cl.ids {
		cl.checkMembership(id, []uint64{1, 2, 3, 4}, nil)
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
		cl.checkMembership(2, []uint64{1, 2, 3, 4}, nil)
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
		cl.checkMembership(2, []uint64{1, 2}, nil)
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
		cl.checkMembership(id, []uint64{2, 3}, nil)
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
			for range 50 {
				cl.tick()
			}
			if st := cl.nodes[1].Status(); st.Role != RoleLeader || st.Term != term {
				t.Fatalf("leader disrupted by the removed node: %+v, term was %d", st, term)
			}
			if cl.unknown == 0 {
				t.Fatal("the removed node sent nothing the members refused")
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
	cl.checkMembership(1, []uint64{1, 2, 3}, []uint64{4})
	cl.checkMembership(2, []uint64{1, 2, 3}, nil)
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
	cl.checkMembership(1, []uint64{1, 2, 3}, nil)
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
		cl.checkMembership(id, []uint64{1, 2}, []uint64{4})
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
	if !slices.Equal(meta.Voters, []uint64{1, 2, 3}) || !slices.Equal(meta.Learners, []uint64{4}) {
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
		SnapVoters: meta.Voters, SnapLearners: []uint64{4, 5}}
	b, _ := m.AppendBinary(nil)
	var got Message
	if err := got.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if err := f.Step(got); err != nil {
		t.Fatal(err)
	}
	rd := f.Ready()
	if !slices.Equal(rd.Snapshot.Voters, []uint64{1, 2, 3}) || !slices.Equal(rd.Snapshot.Learners, []uint64{4, 5}) {
		t.Fatalf("installed snapshot %+v", rd.Snapshot)
	}
	if v, l := f.Membership(); !slices.Equal(v, []uint64{1, 2, 3}) || !slices.Equal(l, []uint64{4, 5}) {
		t.Fatalf("after install: voters %v learners %v", v, l)
	}

	// A restart from that snapshot takes its configuration over Voters.
	r, err := New(Config{ID: 4, Voters: []uint64{1, 2, 3}, Learners: []uint64{4}, Snapshot: SnapshotMeta{
		Index: 10, Term: 2, Voters: []uint64{1, 2, 4}, Learners: []uint64{7}}})
	if err != nil {
		t.Fatal(err)
	}
	if v, l := r.Membership(); !slices.Equal(v, []uint64{1, 2, 4}) || !slices.Equal(l, []uint64{7}) {
		t.Fatalf("after restart: voters %v learners %v", v, l)
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
		b, _ := m.AppendBinary(nil)
		var got Message
		if err := got.UnmarshalBinary(b); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got.SnapVoters, m.SnapVoters) || !slices.Equal(got.SnapLearners, m.SnapLearners) {
			t.Fatalf("round trip: %v %v, want %v %v", got.SnapVoters, got.SnapLearners, m.SnapVoters, m.SnapLearners)
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
		{Type: MsgSnap, From: 1, To: 2, Term: 3, Index: 9, LogTerm: 2, SnapTotal: 8, SnapData: []byte("abcd"), SnapLearners: []uint64{1 << 62}},
	} {
		b, _ := m.AppendBinary(nil)
		f.Add(b)
	}
	f.Fuzz(checkMessageReencodes)
}
