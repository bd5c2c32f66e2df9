package node

import (
	"context"
	"encoding/binary"
	"fmt"
	"maps"
	"net"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bifrost-go/bifrost/raft"
)

// join starts node id, outside the cluster's configuration, as a learner
// of its voters.
func (c *testCluster) join(id uint64) {
	c.t.Helper()
	c.storage[id] = NewMemoryStorage()
	c.sms[id] = &recorder{}
	cfg := Config{Raft: raft.Config{ID: id, Voters: c.voters, Learners: []uint64{id}}, Storage: c.storage[id],
		Transport: c.nw.transport(id), StateMachine: c.sms[id], TickInterval: testTick}
	if c.tweak != nil {
		c.tweak(&cfg)
	}
	n, err := Start(cfg)
	if err != nil {
		c.t.Fatalf("start node %d: %v", id, err)
	}
	c.nodes[id] = n
}

// waitVoter advances fake time until node on counts id among the voters.
func (c *testCluster) waitVoter(on, id uint64, want bool) {
	c.t.Helper()
	for range 200 {
		synctest.Wait()
		voters, _, err := c.nodes[on].Configuration(c.t.Context())
		if err != nil {
			c.t.Fatal(err)
		}
		if slices.Contains(voters, id) == want {
			return
		}
		time.Sleep(testTick)
	}
	c.t.Fatalf("node %d: node %d voter is not %v after 200 ticks", on, id, want)
}

// waitApplied waits until n has applied its whole log.
func waitApplied(t *testing.T, ctx context.Context, n *Node) {
	t.Helper()
	last := n.Status().LastIndex
	if err := n.WaitFor(ctx, func(st Status) bool { return st.Applied >= last }); err != nil {
		t.Fatalf("log not applied through %d: %v", last, err)
	}
}

// waitNewLeader advances fake time until a node other than old leads.
func (c *testCluster) waitNewLeader(old uint64) uint64 {
	c.t.Helper()
	for range 200 {
		synctest.Wait()
		for id, n := range c.nodes {
			if id != old && n.Status().Role == raft.RoleLeader {
				return id
			}
		}
		time.Sleep(testTick)
	}
	c.t.Fatalf("no leader other than %d after 200 ticks", old)
	return 0
}

func TestAddLearnerPromoteAndRemoveLeader(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newTestCluster(t, 3)
		lead := c.waitLeader(time.Second)
		ctx := t.Context()
		for i := range 10 {
			if _, _, err := c.nodes[lead].Propose(ctx, fmt.Appendf(nil, "a%d", i)); err != nil {
				t.Fatal(err)
			}
		}
		c.join(4)
		if err := c.nodes[lead].AddLearner(ctx, 4, "mem:4"); err != nil {
			t.Fatalf("AddLearner: %v", err)
		}
		c.waitVoter(lead, 4, true) // promoted automatically
		c.waitVoter(4, 4, true)
		waitApplied(t, ctx, c.nodes[lead])
		for _, id := range []uint64{1, 2, 3} {
			if id != lead {
				if got := c.nw.addr(id, 4); got != "mem:4" {
					t.Errorf("node %d learned address %q for node 4, want mem:4", id, got)
				}
			}
		}
		if err := c.nodes[lead].RemoveMember(ctx, lead); err != nil {
			t.Fatalf("RemoveMember(leader): %v", err)
		}
		next := c.waitNewLeader(lead)
		if _, _, err := c.nodes[next].Propose(ctx, []byte("after")); err != nil {
			t.Fatalf("propose on the new leader: %v", err)
		}
		time.Sleep(5 * testTick)
		synctest.Wait()
		for id, sm := range c.sms {
			if id == lead {
				continue
			}
			if got := sm.snapshot(); len(got) != 11 || got[10][len(got[10])-5:] != "after" {
				t.Errorf("node %d applied %v", id, got)
			}
		}
		if st := c.nodes[lead].Status(); st.Role == raft.RoleLeader {
			t.Errorf("removed node leads: %+v", st)
		}
		if voters, _, _ := c.nodes[next].Configuration(ctx); slices.Contains(voters, lead) || len(voters) != 3 {
			t.Errorf("voters %v after removing %d", voters, lead)
		}
	})
}

func TestJoinAndLeave(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newTestCluster(t, 3)
		lead := c.waitLeader(time.Second)
		ctx := t.Context()
		c.join(4)
		if err := c.nodes[4].Join(ctx, "mem:4"); err != nil {
			t.Fatalf("Join: %v", err)
		}
		c.waitVoter(lead, 4, true)
		waitApplied(t, ctx, c.nodes[lead])
		if err := c.nodes[4].Join(ctx, "mem:4"); err != nil {
			t.Fatalf("Join again: %v", err)
		}
		// A follower leaves, then the leader, which hands over first.
		follower := lead%3 + 1
		if err := c.nodes[follower].Leave(ctx); err != nil {
			t.Fatalf("Leave on follower %d: %v", follower, err)
		}
		c.waitVoter(lead, follower, false)
		c.stop(follower)
		if err := c.nodes[lead].Leave(ctx); err != nil {
			t.Fatalf("Leave on leader %d: %v", lead, err)
		}
		next := c.waitNewLeader(lead)
		c.waitVoter(next, lead, false)
		c.stop(lead)
		if _, _, err := c.nodes[next].Propose(ctx, []byte("two left")); err != nil {
			t.Fatalf("propose with two voters left: %v", err)
		}
		if voters, _, _ := c.nodes[next].Configuration(ctx); len(voters) != 2 || !slices.Contains(voters, 4) {
			t.Errorf("voters %v", voters)
		}
	})
}

func TestConfChangeRefusedOnFollower(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newTestCluster(t, 3)
		lead := c.waitLeader(time.Second)
		err := c.nodes[lead%3+1].AddLearner(t.Context(), 4, "")
		if err != raft.ErrNotLeader {
			t.Fatalf("AddLearner on a follower: %v, want raft.ErrNotLeader", err)
		}
	})
}

// TestRPCAddLearnerPromoteRemoveLeader runs the configuration cycle on real
// loopback TCP: the new member's address reaches the others through the
// log.
func TestRPCAddLearnerPromoteRemoveLeader(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	g := newLoopbackGroup(t, 3)
	lead := g.waitLeader(ctx)
	for i := range 20 {
		if _, _, err := lead.node.Propose(ctx, fmt.Appendf(nil, "a%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	g.addLearner(ctx, lead, 4)
	isVoter := func(n *Node, id uint64) func(Status) bool {
		return func(Status) bool {
			voters, _, err := n.Configuration(ctx)
			return err == nil && slices.Contains(voters, id)
		}
	}
	if err := lead.node.WaitFor(ctx, isVoter(lead.node, 4)); err != nil {
		t.Fatalf("learner not promoted: %v", err)
	}
	waitApplied(t, ctx, lead.node) // the promotion commits: one change at a time
	if err := lead.node.RemoveMember(ctx, lead.id); err != nil {
		t.Fatalf("RemoveMember(leader): %v", err)
	}
	g.stop(lead.id)
	next := g.waitLeader(ctx)
	index, _, err := next.node.Propose(ctx, []byte("after"))
	for err != nil && ctx.Err() == nil { // a leader elected just before may still be replaced
		next = g.waitLeader(ctx)
		index, _, err = next.node.Propose(ctx, []byte("after"))
	}
	if err != nil {
		t.Fatalf("propose after removing the leader: %v", err)
	}
	// The index Propose returned, not the proposer's Status: that is
	// published at the end of the driver's turn, after the caller wakes.
	applied := index
	if err := g.members[4].node.WaitFor(ctx, func(st Status) bool { return st.Applied >= applied }); err != nil {
		t.Fatalf("new member did not apply: %v", err)
	}
	// a0..a19, then "after": more than once if an attempt the loop
	// retried (ErrLeadershipLost: outcome unknown) committed after all.
	got := g.members[4].sm.snapshot()
	ok := len(got) >= 21
	for i, cmd := range got {
		want := fmt.Sprintf("a%d", i)
		if i >= 20 {
			want = "after"
		}
		ok = ok && strings.HasSuffix(cmd, ":"+want)
	}
	if !ok {
		t.Errorf("new member applied %q, want a0..a19 then after", got)
	}
}

// addLearner starts member id on a new loopback listener and has lead
// add it as a learner.
func (g *loopbackGroup) addLearner(ctx context.Context, lead *loopbackMember, id uint64) {
	g.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		g.t.Fatal(err)
	}
	g.addrs[id], g.dirs[id] = ln.Addr().String(), g.t.TempDir()
	g.start(id, ln)
	if err := lead.node.AddLearner(ctx, id, g.addrs[id]); err != nil {
		g.t.Fatalf("AddLearner(%d): %v", id, err)
	}
}

func TestSnapshotFileCarriesMembership(t *testing.T) {
	meta := raft.SnapshotMeta{Index: 9, Term: 3, Voters: []uint64{1, 2, 4}, Learners: []uint64{1 << 40},
		Addrs: map[uint64]string{4: "n4:7000", 1 << 40: ""}}
	b := append(encodeSnapshotHeader(meta, []byte("state")), "state"...)
	got, data, err := decodeSnapshotFile(b)
	if err != nil || !got.Same(meta) || !slices.Equal(got.Voters, meta.Voters) ||
		!slices.Equal(got.Learners, meta.Learners) || !maps.Equal(got.Addrs, meta.Addrs) || string(data) != "state" {
		t.Fatalf("decoded %+v %q %v, want %+v", got, data, err, meta)
	}
	// A version 1 file, written before configuration changes, still loads.
	v1 := []byte(snapMagicV1)
	for _, v := range []uint64{9, 3, 5} {
		v1 = binary.LittleEndian.AppendUint64(v1, v)
	}
	v1 = binary.LittleEndian.AppendUint32(v1, raft.SnapshotChecksum([]byte("state")))
	v1 = binary.LittleEndian.AppendUint32(v1, raft.SnapshotChecksum(v1))
	got, data, err = decodeSnapshotFile(append(v1, "state"...))
	if err != nil || !got.Same(meta) || got.Voters != nil || string(data) != "state" {
		t.Fatalf("version 1 file: %+v %q %v", got, data, err)
	}
}
