package rafttest

import (
	"bytes"
	"testing"

	"github.com/bifrost-go/bifrost/raft"
)

// Lab 3B by intent: agreement.

func TestBasicAgree(t *testing.T) {
	forSeeds(t, func(t *testing.T, seed uint64) {
		c := newCluster(t, 5, seed)
		c.WaitLeader(3 * et)
		var last uint64
		for range 3 {
			next := c.Status(c.Leader()).LastIndex + 1
			if n := c.NApplied(next); n > 0 {
				c.Fatalf("%d nodes applied index %d before it was proposed", n, next)
			}
			index := c.One(c.Command(8), 5, 4*et)
			if index != next || index <= last {
				c.Fatalf("got index %d, want %d", index, next)
			}
			last = index
		}
	})
}

// Each command's bytes cross the network once per follower when nothing
// fails: no redundant resends.
func TestRPCBytes(t *testing.T) {
	forSeeds(t, func(t *testing.T, seed uint64) {
		c := newCluster(t, 3, seed)
		c.WaitLeader(3 * et)
		c.One(c.Command(8), 3, 4*et)
		c.ResetStats()
		sent := 0
		for range 10 {
			cmd := c.Command(5000)
			sent += len(cmd)
			c.One(cmd, 3, 4*et)
		}
		if got, want := c.Stats().EntryBytes, 2*sent; got != want {
			c.Fatalf("MsgApp carried %d bytes of entry data for %d bytes of commands to 2 followers, want %d",
				got, sent, want)
		}
	})
}

// A follower failure does not stop agreement; two of three do.
func TestFollowerFailure(t *testing.T) {
	forSeeds(t, func(t *testing.T, seed uint64) {
		c, lead := startCluster(t, 3, seed)
		f := others(c, lead)
		c.Crash(f[0])
		c.One(c.Command(8), 2, 4*et)
		c.Run(et)
		c.One(c.Command(8), 2, 4*et)
		c.Crash(f[1])
		lead = c.Leader()
		index, ok := c.ProposeTo(lead, c.Command(8))
		if !ok {
			c.Fatalf("leader %d refused a proposal", lead)
		}
		c.Run(4 * et)
		if n := c.NApplied(index); n > 0 {
			c.Fatalf("index %d applied by %d nodes with two of three down", index, n)
		}
	})
}

// A leader failure does not stop agreement; a second one does.
func TestLeaderFailure(t *testing.T) {
	forSeeds(t, func(t *testing.T, seed uint64) {
		c, l1 := startCluster(t, 3, seed)
		c.Crash(l1)
		c.One(c.Command(8), 2, 6*et)
		c.Run(et)
		c.One(c.Command(8), 2, 4*et)
		l2 := c.Leader()
		c.Crash(l2)
		// The survivor cannot commit anything: propose to every node.
		var index uint64
		for _, id := range c.IDs() {
			if i, ok := c.ProposeTo(id, c.Command(8)); ok {
				index = i
			}
		}
		c.Run(4 * et)
		if index != 0 && c.NApplied(index) > 0 {
			c.Fatalf("index %d applied with two of three down", index)
		}
	})
}

// One follower down: agreement goes on; it comes back and catches up.
func TestFailAgree(t *testing.T) {
	forSeeds(t, func(t *testing.T, seed uint64) {
		c, lead := startCluster(t, 3, seed)
		f := others(c, lead)[0]
		c.Isolate(f)
		for range 4 {
			c.One(c.Command(8), 2, 4*et)
		}
		c.Run(2 * et)
		c.One(c.Command(8), 2, 4*et)
		c.Reconnect(f)
		index := c.One(c.Command(8), 3, 6*et)
		if c.Applied(f) < index {
			c.Fatalf("rejoined follower %d applied %d, want %d", f, c.Applied(f), index)
		}
	})
}

// Three of five cut off: nothing commits; after healing, progress, and
// the entry proposed meanwhile either commits or is replaced.
func TestFailNoAgree(t *testing.T) {
	forSeeds(t, func(t *testing.T, seed uint64) {
		c, lead := startCluster(t, 5, seed)
		f := others(c, lead)
		c.Partition([]uint64{lead, f[0]}, []uint64{f[1]}, []uint64{f[2]}, []uint64{f[3]})
		index, ok := c.ProposeTo(lead, c.Command(8))
		if !ok {
			c.Fatalf("leader %d refused a proposal", lead)
		}
		c.Run(2 * et)
		if n := c.NApplied(index); n > 0 {
			c.Fatalf("index %d applied by %d nodes with 3 of 5 cut off", index, n)
		}
		if committedOn(c, lead, index) {
			c.Fatalf("leader %d committed index %d with 3 of 5 cut off", lead, index)
		}
		c.HealNetwork()
		c.One(c.Command(8), 5, 10*et)
	})
}

// Commands proposed together all commit, at distinct indexes, in one
// batch.
func TestConcurrentProposals(t *testing.T) {
	forSeeds(t, func(t *testing.T, seed uint64) {
		c, lead := startCluster(t, 3, seed)
		term := c.Status(lead).Term
		c.ResetStats()
		want := map[uint64][]byte{}
		for range 5 {
			cmd := c.Command(8)
			index, ok := c.ProposeTo(lead, cmd)
			if !ok {
				c.Fatalf("leader %d refused a proposal", lead)
			}
			if _, dup := want[index]; dup {
				c.Fatalf("two proposals got index %d", index)
			}
			want[index] = cmd
		}
		c.Run(3 * et)
		if c.Status(lead).Term != term {
			t.Skipf("leader changed during the test (seed %d)", seed)
		}
		for index, cmd := range want {
			if d, ok := c.AppliedData(index); !ok || !bytes.Equal(d, cmd) || c.NApplied(index) != 3 {
				c.Fatalf("index %d: applied %q on %d nodes, want %q on 3", index, d, c.NApplied(index), cmd)
			}
		}
		if s := c.Stats(); s.Entries != 2*5 || s.Messages[raft.MsgApp] > 2*3 {
			c.Fatalf("5 proposals made together took %d MsgApp with %d entries, want one batch per follower", s.Messages[raft.MsgApp], s.Entries)
		}
	})
}

// A leader partitioned away keeps proposals it can never commit; when it
// rejoins, the new leader's log replaces them.
func TestRejoinPartitionedLeader(t *testing.T) {
	forSeeds(t, func(t *testing.T, seed uint64) {
		c, l1 := startCluster(t, 3, seed)

		c.Isolate(l1)
		var lost []uint64
		for range 3 {
			if index, ok := c.ProposeTo(l1, c.Command(8)); ok {
				lost = append(lost, index)
			}
		}
		lostTerm := c.Status(l1).Term
		c.One(c.Command(8), 2, 6*et)

		l2 := c.Leader()
		c.Isolate(l2)
		c.Reconnect(l1)
		c.One(c.Command(8), 2, 6*et)

		c.HealNetwork()
		c.One(c.Command(8), 3, 6*et)
		log := c.Log(l1)
		for _, index := range lost {
			if index <= uint64(len(log)) && log[index-1].Term == lostTerm {
				c.Fatalf("old leader %d still has its uncommitted entry at index %d term %d", l1, index, lostTerm)
			}
		}
		for _, a := range c.Acked() {
			if a.Leader == l1 && a.Term == lostTerm && a.Index >= lost[0] {
				c.Fatalf("the client was told index %d from the partitioned leader committed", a.Index)
			}
		}
	})
}

// Leaders back up over 50 conflicting entries in a bounded number of
// round trips: a follower's rejection names where the conflicting term
// starts, so the leader skips the whole term at once.
func TestBackup(t *testing.T) {
	forSeeds(t, func(t *testing.T, seed uint64) {
		c, l1 := startCluster(t, 5, seed)

		// Leader and one follower alone: 50 entries that never commit.
		f := others(c, l1)
		c.Partition([]uint64{l1, f[0]}, f[1:])
		for range 50 {
			c.ProposeTo(l1, c.Command(8))
		}
		c.Run(et / 2)

		// The other three elect a leader and commit 50.
		c.Partition([]uint64{l1}, []uint64{f[0]}, f[1:])
		for range 50 {
			c.One(c.Command(8), 3, 10*et)
		}

		// Their leader and one other: 50 more that never commit.
		l2 := c.Leader()
		o := others(c, l1, f[0], l2)
		c.Partition([]uint64{l2, o[0]}, []uint64{o[1]}, []uint64{l1}, []uint64{f[0]})
		for range 50 {
			c.ProposeTo(l2, c.Command(8))
		}
		c.Run(et / 2)

		// The first pair comes back with the third, whose log is longer
		// than theirs: the new leader backs them up over their 50 entries
		// of an old term, then 50 more commit.
		c.ResetStats()
		c.Partition([]uint64{l1, f[0], o[1]}, []uint64{l2}, []uint64{o[0]})
		for range 50 {
			c.One(c.Command(8), 3, 10*et)
		}
		if r := c.Stats().Rejects; r > 4 {
			c.Fatalf("backing 2 followers up over 50 conflicting entries took %d rejected appends, want at most 2 each", r)
		}

		// Everyone: the two with 50 stale entries catch up.
		c.ResetStats()
		c.HealNetwork()
		c.One(c.Command(8), 5, 10*et)
		if r := c.Stats().Rejects; r > 4 {
			c.Fatalf("catching up 2 followers over 50 conflicting entries took %d rejected appends, want at most 2 each", r)
		}
	})
}

// Message counts stay bounded: for agreement, and when idle.
func TestMessageCounts(t *testing.T) {
	forSeeds(t, func(t *testing.T, seed uint64) {
		c, lead := startCluster(t, 3, seed)
		term := c.Status(lead).Term

		// Agreement: a few messages per command and follower.
		c.ResetStats()
		for range 10 {
			c.ProposeTo(lead, c.Command(8))
			c.Run(1)
		}
		c.Run(2)
		s := c.Stats()
		apps := s.Messages[raft.MsgApp] + s.Messages[raft.MsgAppResp]
		if apps > 10*2*3*2 { // three round trips per command and follower
			c.Fatalf("10 commands took %d MsgApp and MsgAppResp: %v", apps, s.Messages)
		}

		// Idle: heartbeats and their responses, nothing else.
		c.Run(et)
		c.ResetStats()
		const ticks = 100
		c.Run(ticks)
		if c.Status(lead).Term != term {
			t.Skipf("leader changed (seed %d)", seed)
		}
		s = c.Stats()
		hb := s.Messages[raft.MsgHeartbeat]
		if hb < ticks*2-4 || hb > ticks*2+4 {
			c.Fatalf("an idle 3-node cluster sent %d heartbeats in %d ticks, want about %d", hb, ticks, ticks*2)
		}
		if total := s.Total(); total > 2*hb+4 {
			c.Fatalf("an idle 3-node cluster sent %d messages in %d ticks, want about %d: %v", total, ticks, 2*hb, s.Messages)
		}
	})
}

// A follower far behind catches up in batches: as few MsgApp as the
// per-message limits allow, not one per entry.
func TestCatchUpInBatches(t *testing.T) {
	forSeeds(t, func(t *testing.T, seed uint64) {
		c := NewCluster(t, Options{Nodes: 3, Seed: seed, Config: raft.Config{MaxMsgEntries: 100}})
		lead := c.WaitLeader(3 * et)
		c.One(c.Command(8), 3, 4*et)
		f := others(c, lead)[0]
		c.Isolate(f)
		for range 10 {
			for range 100 {
				c.ProposeTo(lead, c.Command(8))
			}
			c.Run(1)
		}
		index := c.One(c.Command(8), 2, 4*et)
		c.ResetStats()
		c.Reconnect(f)
		c.MustRunUntil("the follower catching up", func() bool { return c.Applied(f) >= index }, 4*et)
		if s := c.Stats(); s.Entries > 1250 || s.Messages[raft.MsgApp] > 60 {
			c.Fatalf("catching up %d entries took %d MsgApp carrying %d entries", index, s.Messages[raft.MsgApp], s.Entries)
		}
	})
}
