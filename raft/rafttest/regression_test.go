package rafttest

import (
	"bytes"
	"slices"
	"testing"

	"github.com/bifrost-go/bifrost/raft"
)

// Core bugs the simulator found, reduced to a few calls on one core.

// A member must hear the leader of a later term even when that leader is
// outside its own configuration: one added by a change the member missed
// (it lagged or was cut off), or removed by an uncommitted change in the
// member's log. Only that leader can bring the member up to date (thesis
// 4.1: a server accepts AppendEntries from a leader outside its latest
// configuration). Core.accepts refused every message from it with
// ErrUnknownPeer, so the member never learned the new term and stayed
// behind forever while the group counted it as a member.
func TestRegression_RefusesLeaderOutsideConfiguration(t *testing.T) {
	cc := raft.ConfChange{Type: raft.ConfRemoveMember, NodeID: 2}
	data, _ := cc.AppendBinary(nil)
	removed := []raft.Entry{{Index: 1, Term: 1, Type: raft.EntryConfig, Data: data}}
	for _, tc := range []struct {
		name    string
		entries []raft.Entry
		leader  uint64
	}{
		{"uncommitted removal of the leader", removed, 2},
		{"leader added by a change this node missed", nil, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			core, err := raft.New(raft.Config{ID: 3, Voters: []uint64{1, 2, 3},
				HardState: raft.HardState{Term: 1}, Entries: tc.entries})
			if err != nil {
				t.Fatal(err)
			}
			m := raft.Message{Type: raft.MsgHeartbeat, From: tc.leader, To: 3, Term: 2}
			if err := core.Step(m); err != nil {
				t.Fatalf("Step(MsgHeartbeat from %d, the leader of term 2) = %v, want it heard", tc.leader, err)
			}
			if st := core.Status(); st.Term != 2 || st.Lead != tc.leader {
				t.Fatalf("after the leader's heartbeat: term %d lead %d, want term 2 lead %d", st.Term, st.Lead, tc.leader)
			}
		})
	}
}

// A node whose configuration lacks the leader (it holds an uncommitted
// change the group has since replaced) and whose failed campaigns raised
// its term must answer the leader's older-term heartbeats with its term.
// The leader's followers ignore its vote requests while the leader's lease
// holds, so that answer is the only way its term reaches the group; a
// node that drops them as from a non-member stays behind forever.
func TestRegression_AnswersOlderLeaderOutsideConfiguration(t *testing.T) {
	core, err := raft.New(raft.Config{ID: 1, Voters: []uint64{1, 2}, HardState: raft.HardState{Term: 9}, DisablePreVote: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := core.Step(raft.Message{Type: raft.MsgHeartbeat, From: 4, To: 1, Term: 3}); err != nil {
		t.Fatalf("Step(MsgHeartbeat from 4, leader of term 3) = %v, want it answered", err)
	}
	rd := core.Ready()
	for _, m := range append(rd.Messages, rd.AfterPersist...) {
		if m.To == 4 && m.Term == 9 {
			return
		}
	}
	t.Fatalf("no answer to 4 carrying term 9 in %v", append(rd.Messages, rd.AfterPersist...))
}

// A Ready that installs snapshot A (Ready.Snapshot) may also carry, after
// A's last chunk, the first chunk of a newer snapshot B that arrived
// before the driver took the Ready. The contract says a chunk at offset 0
// starts a new snapshot and the driver drops what it held, and that A's
// bytes came in the chunks: a driver that follows it, as raft/node's
// receiveSnapshot does, saves B's first chunk as snapshot A. The
// simulator sets A's bytes apart when its last chunk is stored.
func TestRegression_ChunksAfterInstalledSnapshot(t *testing.T) {
	core, err := raft.New(raft.Config{ID: 2, Voters: []uint64{1, 2}})
	if err != nil {
		t.Fatal(err)
	}
	snapA, snapB := []byte("state-at-5"), []byte("state-at-9!!")
	chunk := func(index uint64, whole []byte, end int) raft.Message {
		return raft.Message{Type: raft.MsgSnap, From: 1, To: 2, Term: 1, Index: index, LogTerm: 1,
			SnapData: whole[:end], SnapTotal: uint64(len(whole)), SnapChecksum: raft.SnapshotChecksum(whole),
			SnapDone: end == len(whole), SnapVoters: []uint64{1, 2}}
	}
	for _, m := range []raft.Message{chunk(5, snapA, len(snapA)), chunk(9, snapB, 4)} {
		if err := core.Step(m); err != nil {
			t.Fatal(err)
		}
	}
	rd := core.Ready()
	var recv []byte // what raft/node.receiveSnapshot keeps
	for _, ch := range rd.SnapshotChunks {
		if ch.Offset == 0 {
			recv = nil
		}
		recv = append(recv, ch.Data...)
	}
	if rd.Snapshot.Index != 5 {
		t.Fatalf("Ready installs snapshot %d, want the completed snapshot 5", rd.Snapshot.Index)
	}
	if !bytes.Equal(recv, snapA) {
		t.Fatalf("Ready installs snapshot 5, but its chunks leave %q, not %q", recv, snapA)
	}
}

// A learner must grant its vote when a candidate asks: the candidate's
// log may hold the learner's promotion, which the learner has not
// received yet, and without the learner's vote that configuration has no
// quorum. (A single voter promotes a learner and crashes before the
// promotion reaches it: it restarts as one of two voters, and the
// learner refuses it forever.) handleVote (raft/election.go) grants
// nothing unless this node is a voter in its own configuration.
func TestRegression_LearnerNeverVotes(t *testing.T) {
	core, err := raft.New(raft.Config{ID: 2, Voters: []uint64{1}, Learners: []uint64{2}})
	if err != nil {
		t.Fatal(err)
	}
	if err := core.Step(raft.Message{Type: raft.MsgVote, From: 1, To: 2, Term: 2}); err != nil {
		t.Fatal(err)
	}
	rd := core.Ready()
	for _, m := range append(rd.Messages, rd.AfterPersist...) {
		if m.Type == raft.MsgVoteResp && m.Reject {
			t.Fatalf("learner 2 refused its vote to the candidate of term 2, whose log is as up to date")
		}
	}
}

// A configuration entry cut off the log must be undone even when the
// MsgApp that replaces it also commits its index. The core asked the
// commit index, raised in the same step, whether the entry could still
// be there, kept the removed configuration, and this node went on
// counting quorums over other voters than its group (a seed of the
// random schedules, once they changed voters: a leader elected by three
// nodes of seven, which cut a committed entry).
func TestRegression_ReplacedConfEntryCommittedInSameAppend(t *testing.T) {
	cc := raft.ConfChange{Type: raft.ConfRemoveMember, NodeID: 2}
	data, _ := cc.AppendBinary(nil)
	core, err := raft.New(raft.Config{ID: 3, Voters: []uint64{1, 2, 3}, HardState: raft.HardState{Term: 1},
		Entries: []raft.Entry{{Index: 1, Term: 1, Type: raft.EntryConfig, Data: data}}})
	if err != nil {
		t.Fatal(err)
	}
	if voters, _ := core.Configuration(); len(voters) != 2 {
		t.Fatalf("voters %v before the append, want the removal of 2 in effect", voters)
	}
	replace := raft.Message{Type: raft.MsgApp, From: 1, To: 3, Term: 2, Commit: 1,
		Entries: []raft.Entry{{Index: 1, Term: 2, Type: raft.EntryNoop}}}
	if err := core.Step(replace); err != nil {
		t.Fatal(err)
	}
	if st := core.Status(); st.Commit != 1 {
		t.Fatalf("commit %d after the append, want 1", st.Commit)
	}
	if voters, _ := core.Configuration(); !slices.Equal(voters, []uint64{1, 2, 3}) {
		t.Fatalf("voters %v after the removal was cut off, want [1 2 3]", voters)
	}
}
