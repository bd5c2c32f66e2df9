package membership

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/bifrost-go/bifrost/raft/node"
	"github.com/bifrost-go/bifrost/sm"
)

// Tests on real nodes: loopback TCP, WALs, the wall clock. Timings are
// shorter than the defaults so that they run quickly, and long enough
// that a CPU-starved race build does not miss a heartbeat.
var realTimings = Config{HeartbeatInterval: 100 * time.Millisecond, Timeout: time.Second}

// offlines counts the offline events a recorder heard.
func offlines(r *recorder) int { return r.count(func(e Event) bool { return e.Kind == Offline }) }

// joinMany registers n members in group.
func joinMany(ctx context.Context, t *testing.T, c *cluster, n int, group string) []*MemberHandle {
	t.Helper()
	var hs []*MemberHandle
	for i := range n {
		h := c.join(ctx, fmt.Sprintf("m%02d", i), fmt.Sprintf("10.0.0.%d:7000", i))
		if group != "" {
			if err := h.JoinGroup(ctx, group); err != nil {
				t.Fatal(err)
			}
		}
		hs = append(hs, h)
	}
	return hs
}

// allOnline checks that the cluster holds hs, online.
func allOnline(ctx context.Context, t *testing.T, o *Observer, hs []*MemberHandle) {
	t.Helper()
	ms, _, err := o.All(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != len(hs) {
		t.Fatalf("%d members, want %d", len(ms), len(hs))
	}
	for i, m := range ms {
		if !m.Online || m.ID != hs[i].ID() {
			t.Errorf("member %v online %v, want %v online", m, m.Online, hs[i].Member())
		}
	}
}

// Killing the raft leader, twice, marks no live member offline and loses
// no online state; detection still works afterwards.
func TestKillLeaderOnRealNodes(t *testing.T) {
	c := newLoopbackCluster(t, 3, realTimings, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	o := c.observer()
	if err := o.CreateGroup(ctx, "cache"); err != nil {
		t.Fatal(err)
	}
	hs := joinMany(ctx, t, c, 5, "cache")
	group, any := watchGroup(ctx, t, o, "cache"), watchGroup(ctx, t, o, "")
	for range 2 {
		lead := c.detector(ctx)
		c.stop(lead.id)
		c.detector(ctx)
		// The new leader's grace, and a timeout more of heartbeats.
		observeFor(c.cfg.Grace + c.cfg.Timeout)
		c.start(lead.id, nil)
	}
	if n, m := offlines(group), offlines(any); n+m != 0 {
		t.Errorf("%d group and %d cluster offline events for live members: %v", n, m, any.all())
	}
	allOnline(ctx, t, o, hs)
	hs[0].silent.Store(true)
	if _, err := group.wait(ctx, is(Offline, hs[0].ID())); err != nil {
		t.Fatal(err)
	}
}

// observeFor lets d of wall time pass with the cluster running. It waits
// for nothing: what the caller checks afterwards is that nothing happened
// in that time (no false offline), which takes the time it takes.
func observeFor(d time.Duration) { time.Sleep(d) }

// Membership, online marks included, survives snapshots and a restart of
// the whole cluster; after it, nobody heartbeating goes offline.
func TestMembershipSurvivesSnapshotAndFullRestart(t *testing.T) {
	c := newLoopbackCluster(t, 3, realTimings, func(cfg *node.Config) { cfg.SnapshotEntries = 5 })
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	o := c.observer()
	for _, g := range []string{"cache", "db"} {
		if err := o.CreateGroup(ctx, g); err != nil {
			t.Fatal(err)
		}
	}
	hs := joinMany(ctx, t, c, 6, "cache")
	hs[5].silent.Store(true)
	any := watchGroup(ctx, t, o, "")
	if _, err := any.wait(ctx, is(Offline, hs[5].ID())); err != nil {
		t.Fatal(err)
	}
	hs[1].JoinGroup(ctx, "db")
	for _, s := range c.running() {
		if err := s.node.WaitFor(ctx, func(st node.Status) bool { return st.Snapshot >= 10 }); err != nil {
			t.Fatalf("member %d took no snapshot: %v", s.id, err)
		}
	}
	before, version, err := o.All(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range c.ids {
		c.stop(id)
	}
	for _, id := range c.ids {
		c.start(id, nil)
	}
	c.detector(ctx)
	after, v, err := o.All(ctx)
	if err != nil || !slices.Equal(after, before) || v != version {
		t.Errorf("after the restart: %v at %d, %v; want %v at %d", after, v, err, before, version)
	}
	observeFor(c.cfg.Grace + c.cfg.Timeout)
	if ms, _, err := o.Members(ctx, "db", true); err != nil || len(ms) != 1 || ms[0].ID != hs[1].ID() {
		t.Errorf("db after the restart: %v, %v", ms, err)
	}
	now, v2, err := o.All(ctx)
	if err != nil || !slices.Equal(now, before) || v2 != version {
		t.Errorf("a grace and a timeout later: %v at %d, %v; want no change", now, v2, err)
	}
	if n := offlines(any); n != 1 {
		t.Errorf("%d offline events, want the silent member's alone", n)
	}
}

// Every replica answers a query the same way at the same applied index,
// and their states are byte-identical.
func TestReplicasAnswerIdentically(t *testing.T) {
	c := newLoopbackCluster(t, 3, realTimings, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	o := c.observer()
	o.CreateGroup(ctx, "cache")
	o.CreateGroup(ctx, "gone")
	hs := joinMany(ctx, t, c, 4, "cache")
	hs[2].LeaveGroup(ctx, "cache")
	hs[3].Close(ctx)
	o.DeleteGroup(ctx, "gone")
	hs[1].silent.Store(true)
	any := watchGroup(ctx, t, o, "")
	if _, err := any.wait(ctx, is(Offline, hs[1].ID())); err != nil {
		t.Fatal(err)
	}
	lead := c.detector(ctx)
	commit := lead.node.Status().Commit
	var snaps [][]byte
	var answers []string
	for _, s := range c.running() {
		if err := s.node.WaitFor(ctx, func(st node.Status) bool { return st.Applied >= commit }); err != nil {
			t.Fatal(err)
		}
		applied := s.host.Applied()
		snap, err := s.host.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		one, err := sm.NewClient(sm.ClientConfig{Group: testGroup, Servers: []string{c.addrs[s.id]}, Pool: c.newPool()})
		if err != nil {
			t.Fatal(err)
		}
		replica := NewObserver(one).ReadAs(sm.Follower)
		var answer bytes.Buffer
		for _, g := range []string{"", "cache"} {
			ms, v, err := replica.Members(ctx, g, false)
			l, lv, lerr := replica.GroupLeader(ctx, "cache")
			fmt.Fprintf(&answer, "%q: %#v %d %v; leader %#v %d %v\n", g, ms, v, err, l, lv, lerr)
		}
		if s.host.Applied() != applied {
			t.Fatalf("member %d applied more while being read: compare again", s.id)
		}
		snaps, answers = append(snaps, snap), append(answers, answer.String())
	}
	for i := range snaps {
		if !bytes.Equal(snaps[i], snaps[0]) || answers[i] != answers[0] {
			t.Errorf("replica %d differs at index %d:\n%s\nfrom\n%s", i, commit, answers[i], answers[0])
		}
	}
	t.Logf("every replica at index %d:\n%s", commit, answers[0])
}
