package membership

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bifrost-go/bifrost/internal/leakcheck"
	"github.com/bifrost-go/bifrost/rpc"
)

func TestMain(m *testing.M) { leakcheck.Main(m, "github.com/bifrost-go/bifrost/membership") }

// Tests on an in-process cluster of three run in a synctest bubble: the
// clock is fake, so default timings (500ms heartbeats, 3s timeout) cost
// no wall time and timing bounds hold exactly.

// inBubble runs f in a bubble, with a 3-member cluster at default timings
// whose detector leads.
func inBubble(t *testing.T, f func(ctx context.Context, t *testing.T, c *cluster)) {
	synctest.Test(t, func(t *testing.T) {
		c := newLocalCluster(t, 3, Config{})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		c.detector(ctx)
		f(ctx, t, c)
	})
}

func names(ms []Member) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Name)
	}
	return out
}

func TestMembersJoinGroups(t *testing.T) {
	inBubble(t, func(ctx context.Context, t *testing.T, c *cluster) {
		o := c.observer()
		for _, g := range []string{"cache", "db"} {
			if err := o.CreateGroup(ctx, g); err != nil {
				t.Fatal(err)
			}
		}
		a, b, d := c.join(ctx, "a", "10.0.0.1:1"), c.join(ctx, "b", "10.0.0.2:1"), c.join(ctx, "d", "10.0.0.3:1")
		for _, step := range []struct {
			h     *MemberHandle
			group string
		}{{a, "cache"}, {b, "cache"}, {b, "db"}, {b, "db"}} {
			if err := step.h.JoinGroup(ctx, step.group); err != nil {
				t.Fatalf("%s joins %s: %v", step.h.Member().Name, step.group, err)
			}
		}
		if err := d.JoinGroup(ctx, "nowhere"); !errors.Is(err, ErrNoGroup) {
			t.Errorf("join of a missing group: %v, want ErrNoGroup", err)
		}
		if !(a.ID() < b.ID() && b.ID() < d.ID()) {
			t.Errorf("ids %d, %d, %d: want them in the order of the joins", a.ID(), b.ID(), d.ID())
		}
		cases := []struct {
			group string
			want  []string
		}{{"cache", []string{"a", "b"}}, {"db", []string{"b"}}, {"", []string{"a", "b", "d"}}}
		for _, tc := range cases {
			ms, _, err := o.Members(ctx, tc.group, true)
			if err != nil || !slices.Equal(names(ms), tc.want) {
				t.Errorf("members of %q: %v, %v; want %v", tc.group, names(ms), err, tc.want)
			}
		}
		if l, _, err := o.GroupLeader(ctx, "cache"); err != nil || l == nil || l.ID != a.ID() {
			t.Errorf("leader of cache: %v, %v; want a", l, err)
		}
		all, v, err := o.All(ctx)
		if err != nil || len(all) != 3 || !all[0].Online || all[0].Addr != "10.0.0.1:1" || all[0].Incarnation != 1 {
			t.Errorf("all: %v, %v", all, err)
		}
		// create x2, join x3, join group x3 (the repeat changes nothing)
		if now, err := o.Version(ctx); err != nil || now != v || v != 8 {
			t.Errorf("version %d, %v; the listing said %d, want 8", now, err, v)
		}
		if _, _, err := o.Members(ctx, "nowhere", false); !errors.Is(err, ErrNoGroup) {
			t.Errorf("members of a missing group: %v, want ErrNoGroup", err)
		}
	})
}

// A member that stops heartbeating goes offline: the subscribers of its
// group and of the cluster hear it once, within the timeout, one
// heartbeat and a commit; its next heartbeat brings it back, heard once.
func TestSilentMemberGoesOfflineAndBackOnce(t *testing.T) {
	inBubble(t, func(ctx context.Context, t *testing.T, c *cluster) {
		o := c.observer()
		if err := o.CreateGroup(ctx, "cache"); err != nil {
			t.Fatal(err)
		}
		a, b := c.join(ctx, "a", "a:1"), c.join(ctx, "b", "b:1")
		for _, h := range []*MemberHandle{a, b} {
			if err := h.JoinGroup(ctx, "cache"); err != nil {
				t.Fatal(err)
			}
		}
		group, any := watchGroup(ctx, t, o, "cache"), watchGroup(ctx, t, o, "")
		_, _, lst, err := o.WatchGroupLeader(ctx, "cache")
		if err != nil {
			t.Fatal(err)
		}
		defer lst.Close(ctx)
		time.Sleep(2 * time.Second) // steady heartbeats

		a.silent.Store(true)
		off, err := group.wait(ctx, is(Offline, a.ID()))
		if err != nil {
			t.Fatal(err)
		}
		last := time.Unix(0, a.lastBeat.Load())
		cfg, _ := c.cfg.withDefaults()
		if took, bound := off.at.Sub(last), cfg.Timeout+cfg.HeartbeatInterval+100*time.Millisecond; took < cfg.Timeout || took > bound {
			t.Errorf("offline heard %v after the last heartbeat; want between %v and %v", took, cfg.Timeout, bound)
		}
		if off.Member.Online || off.Member.Incarnation != 1 || off.Group != "cache" {
			t.Errorf("offline event %+v", off.Event)
		}
		if ev, err := lst.Next(ctx); err != nil || !sameMember(ev.Value.Old, &a.me) || !sameMember(ev.Value.New, &b.me) {
			t.Errorf("leader change %+v, %v; want a to b", ev.Value, err)
		}
		time.Sleep(3 * cfg.Timeout)
		a.silent.Store(false)
		on, err := any.wait(ctx, is(Online, a.ID()))
		if err != nil {
			t.Fatal(err)
		}
		if !on.Member.Online || on.Version <= off.Version {
			t.Errorf("online event %+v after offline at version %d", on.Event, off.Version)
		}
		if ev, err := lst.Next(ctx); err != nil || !sameMember(ev.Value.Old, &b.me) || !sameMember(ev.Value.New, &a.me) {
			t.Errorf("leader change %+v, %v; want b to a", ev.Value, err)
		}
		time.Sleep(3 * cfg.Timeout)
		for name, r := range map[string]*recorder{"group": group, "cluster": any} {
			for _, k := range []EventKind{Offline, Online} {
				if n := r.count(is(k, a.ID())); n != 1 {
					t.Errorf("%s subscribers heard a %v %d times, want once", name, k, n)
				}
			}
			if n := r.count(func(e Event) bool { return e.Member.ID == b.ID() }); n != 0 {
				t.Errorf("%s subscribers heard %d events of b, which kept heartbeating", name, n)
			}
		}
	})
}

func TestLeaveFiresLeft(t *testing.T) {
	inBubble(t, func(ctx context.Context, t *testing.T, c *cluster) {
		o := c.observer()
		o.CreateGroup(ctx, "cache")
		a := c.join(ctx, "a", "a:1")
		if err := a.JoinGroup(ctx, "cache"); err != nil {
			t.Fatal(err)
		}
		group, any := watchGroup(ctx, t, o, "cache"), watchGroup(ctx, t, o, "")
		if err := a.Close(ctx); err != nil {
			t.Fatal(err)
		}
		for name, r := range map[string]*recorder{"group": group, "cluster": any} {
			if _, err := r.wait(ctx, is(Left, a.ID())); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
		if ms, _, err := o.All(ctx); err != nil || len(ms) != 0 {
			t.Errorf("members after the leave: %v, %v", ms, err)
		}
		if l, _, err := o.GroupLeader(ctx, "cache"); err != nil || l != nil {
			t.Errorf("leader after the leave: %v, %v; want none", l, err)
		}
		if err := a.JoinGroup(ctx, "cache"); !errors.Is(err, ErrClosed) {
			t.Errorf("join group after close: %v, want ErrClosed", err)
		}
		time.Sleep(2 * c.cfg.Timeout)
		if n := any.count(is(Offline, a.ID())); n != 0 {
			t.Errorf("a member that left went offline %d times", n)
		}
	})
}

// A member that restarts, at a new address, is the same member (same id,
// same groups) with a new incarnation; its old self is told it is stale.
func TestRestartedMemberIsOneMember(t *testing.T) {
	inBubble(t, func(ctx context.Context, t *testing.T, c *cluster) {
		o := c.observer()
		o.CreateGroup(ctx, "cache")
		old := c.join(ctx, "a", "10.0.0.1:1")
		if err := old.JoinGroup(ctx, "cache"); err != nil {
			t.Fatal(err)
		}
		group := watchGroup(ctx, t, o, "cache")
		restarted := c.join(ctx, "a", "10.0.0.9:2")
		if restarted.ID() != old.ID() || restarted.Member().Incarnation != 2 {
			t.Fatalf("restart: %v, was %v; want the same id, incarnation 2", restarted.Member(), old.Member())
		}
		<-old.Done()
		if err := old.Err(); !errors.Is(err, ErrStaleIncarnation) {
			t.Errorf("old incarnation's heartbeats: %v, want ErrStaleIncarnation", err)
		}
		if err := old.JoinGroup(ctx, "cache"); !errors.Is(err, ErrStaleIncarnation) {
			t.Errorf("old incarnation joins a group: %v, want ErrStaleIncarnation", err)
		}
		ev, err := group.wait(ctx, is(Joined, old.ID()))
		if err != nil || ev.Member.Incarnation != 2 || ev.Member.Addr != "10.0.0.9:2" {
			t.Errorf("group event %+v, %v; want a joined at incarnation 2", ev.Event, err)
		}
		for _, g := range []string{"", "cache"} {
			want := restarted.Member()
			if g != "" {
				want.Weight = 1 // the weight it joined with, kept
			}
			ms, _, err := o.Members(ctx, g, false)
			if err != nil || len(ms) != 1 || ms[0] != want {
				t.Errorf("members of %q: %+v, %v; want only %+v", g, ms, err, want)
			}
		}
		if err := old.Close(ctx); !errors.Is(err, ErrStaleIncarnation) {
			t.Errorf("old incarnation's leave: %v, want ErrStaleIncarnation", err)
		}
		time.Sleep(2 * c.cfg.Timeout)
		if ms, _, err := o.Members(ctx, "cache", true); err != nil || len(ms) != 1 {
			t.Errorf("the new incarnation, heartbeating, is online in its group: %v, %v", ms, err)
		}
	})
}

// heartbeatTo sends one raw heartbeat to addr.
func heartbeatTo(ctx context.Context, pool *rpc.Pool, addr string, hb heartbeat) (heartbeatAnswer, error) {
	cl, err := pool.Client(ctx, addr)
	if err != nil {
		return heartbeatAnswer{}, err
	}
	return heartbeatMethod(testGroup).Call(ctx, cl, hb)
}

// Heartbeats and group operations for an id that never joined, or for a
// replaced incarnation, are refused clearly and change nothing; the
// leader goes on.
func TestBadInputChangesNothing(t *testing.T) {
	inBubble(t, func(ctx context.Context, t *testing.T, c *cluster) {
		o := c.observer()
		o.CreateGroup(ctx, "cache")
		a := c.join(ctx, "a", "a:1")
		any := watchGroup(ctx, t, o, "")
		before, err := o.Version(ctx)
		if err != nil {
			t.Fatal(err)
		}
		lead := c.detector(ctx)
		pool := c.newPool()
		for _, hb := range []struct {
			hb   heartbeat
			want byte
		}{{heartbeat{ID: 999, Incarnation: 1}, hbUnknown}, {heartbeat{ID: a.ID(), Incarnation: 0}, hbStale}} {
			if ans, err := heartbeatTo(ctx, pool, c.addrs[lead.id], hb.hb); err != nil || ans.Status != hb.want {
				t.Errorf("heartbeat %+v: %+v, %v; want status %d", hb.hb, ans, err, hb.want)
			}
		}
		follower := c.ids[lead.id%3]
		if ans, err := heartbeatTo(ctx, pool, c.addrs[follower], heartbeat{ID: a.ID(), Incarnation: 1}); err != nil || ans.Status != hbNotLeader || ans.Leader != c.addrs[lead.id] {
			t.Errorf("heartbeat to a follower: %+v, %v; want a pointer to %s", ans, err, c.addrs[lead.id])
		}
		cl := c.client()
		steps := []struct {
			name string
			do   func() error
			want error
		}{
			{"join group, unknown id", func() error {
				_, err := joinGroupCmd.Do(ctx, cl, request{ID: 999, Incarnation: 1, Group: "cache", Weight: 1})
				return err
			}, ErrUnknownMember},
			{"leave group, stale incarnation", func() error {
				_, err := leaveGroupCmd.Do(ctx, cl, request{ID: a.ID(), Incarnation: 7, Group: "cache"})
				return err
			}, ErrStaleIncarnation},
			{"leave, unknown id", func() error { _, err := leaveCmd.Do(ctx, cl, request{ID: 999}); return err }, ErrUnknownMember},
			{"join, no name", func() error { _, err := joinCmd.Do(ctx, cl, request{Addr: "x"}); return err }, ErrBadRequest},
			{"create, no name", func() error { return o.CreateGroup(ctx, "") }, ErrBadRequest},
			{"delete a missing group", func() error { return o.DeleteGroup(ctx, "nowhere") }, ErrNoGroup},
		}
		for _, s := range steps {
			if err := fromRemote(s.do()); !errors.Is(err, s.want) {
				t.Errorf("%s: %v, want %v", s.name, err, s.want)
			}
		}
		time.Sleep(2 * c.cfg.Timeout) // the unknown id's "member" would expire now
		if after, err := o.Version(ctx); err != nil || after != before {
			t.Errorf("version %d after bad input, %v; want %d", after, err, before)
		}
		if evs := any.all(); len(evs) != 0 {
			t.Errorf("bad input announced %v", evs)
		}
		if now := c.detector(ctx); now.id != lead.id {
			t.Errorf("the leader changed from %d to %d", lead.id, now.id)
		}
	})
}

// A leader whose detector is paused for longer than the timeout (its
// heartbeats wait unread) expires nobody when it resumes.
func TestPausedLeaderExpiresNobody(t *testing.T) {
	inBubble(t, func(ctx context.Context, t *testing.T, c *cluster) {
		o := c.observer()
		var hs []*MemberHandle
		for i := range 5 {
			hs = append(hs, c.join(ctx, fmt.Sprint("m", i), "x"))
		}
		any := watchGroup(ctx, t, o, "")
		time.Sleep(time.Second)
		lead := c.detector(ctx)
		resume := lead.svc.freeze()
		time.Sleep(2 * c.cfg.Timeout)
		resume()
		time.Sleep(2 * c.cfg.Timeout)
		if now := c.detector(ctx); now.id != lead.id {
			t.Fatalf("leadership moved from %d to %d: the pause was not the detector's alone", lead.id, now.id)
		}
		if evs := any.all(); len(evs) != 0 {
			t.Errorf("the paused leader announced %v", evs)
		}
		hs[0].silent.Store(true) // and the detector still works
		if _, err := any.wait(ctx, is(Offline, hs[0].ID())); err != nil {
			t.Fatal(err)
		}
	})
}

// Killing the raft leader marks no live member offline and loses no
// online state: the new leader gives every member the grace first.
func TestNewLeaderKeepsOnlineState(t *testing.T) {
	inBubble(t, func(ctx context.Context, t *testing.T, c *cluster) {
		o := c.observer()
		var hs []*MemberHandle
		for i := range 5 {
			hs = append(hs, c.join(ctx, fmt.Sprint("m", i), "x"))
		}
		hs[4].silent.Store(true)
		any := watchGroup(ctx, t, o, "")
		if _, err := any.wait(ctx, is(Offline, hs[4].ID())); err != nil {
			t.Fatal(err)
		}
		for kill := range 3 {
			lead := c.detector(ctx)
			c.stop(lead.id)
			next := c.detector(ctx)
			time.Sleep(2 * c.cfg.Timeout)
			c.start(lead.id, nil)
			c.route(lead.id, c.node(lead.id))
			t.Logf("kill %d: %d led, then %d", kill, lead.id, next.id)
		}
		if n := any.count(func(e Event) bool { return e.Kind == Offline }); n != 1 {
			t.Errorf("%d offline events, want the silent member's alone: %v", n, any.all())
		}
		ms, _, err := o.All(ctx)
		if err != nil || len(ms) != 5 {
			t.Fatalf("members: %v, %v", ms, err)
		}
		for i, m := range ms {
			if m.Online != (i < 4) {
				t.Errorf("%v online %v after the leader changes", m, m.Online)
			}
		}
	})
}

// A detector that lost track of a member (a change it did not hear of)
// checks the state before refusing a heartbeat: the member stays.
func TestDetectorThatLostTrackAsksTheState(t *testing.T) {
	inBubble(t, func(ctx context.Context, t *testing.T, c *cluster) {
		o := c.observer()
		a := c.join(ctx, "a", "a:1")
		any := watchGroup(ctx, t, o, "")
		lead := c.detector(ctx)
		lead.svc.mu.Lock()
		delete(lead.svc.det.watches, a.ID())
		lead.svc.mu.Unlock()
		time.Sleep(3 * c.cfg.Timeout)
		select {
		case <-a.Done():
			t.Fatalf("the member was refused: %v", a.Err())
		default:
		}
		if evs := any.all(); len(evs) != 0 {
			t.Errorf("announced %v", evs)
		}
		a.silent.Store(true) // and it is watched again
		if _, err := any.wait(ctx, is(Offline, a.ID())); err != nil {
			t.Fatal(err)
		}
	})
}

// A weight set through the Observer or the member reaches the group's
// stream as one Weighted event and its listings; the cluster's stream
// hears nothing of it, and the refusals arrive as themselves.
func TestSetWeightReachesWatchers(t *testing.T) {
	inBubble(t, func(ctx context.Context, t *testing.T, c *cluster) {
		o := c.observer()
		for _, g := range []string{"cache", "db"} {
			if err := o.CreateGroup(ctx, g); err != nil {
				t.Fatal(err)
			}
		}
		a, b := c.join(ctx, "a", "10.0.0.1:1"), c.join(ctx, "b", "10.0.0.2:1")
		if err := a.JoinGroup(ctx, "cache"); err != nil {
			t.Fatal(err)
		}
		if err := b.JoinGroupWeighted(ctx, "cache", 3); err != nil {
			t.Fatal(err)
		}
		ms, v, st, err := o.WatchGroup(ctx, "cache")
		if err != nil || len(ms) != 2 || ms[0].Weight != 1 || ms[1].Weight != 3 {
			t.Fatalf("watch cache: %+v, %v; want a at 1, b at 3", ms, err)
		}
		group, cl := recordStream(t, st), watchGroup(ctx, t, o, "")
		if err := o.SetWeight(ctx, "cache", a.ID(), 5); err != nil {
			t.Fatal(err)
		}
		e, err := group.wait(ctx, is(Weighted, a.ID()))
		if err != nil || e.Group != "cache" || e.Member.Weight != 5 || e.Version != v+1 {
			t.Errorf("weighted: %+v, %v; want cache, weight 5, version %d", e.Event, err, v+1)
		}
		if ms, _, err := o.Members(ctx, "cache", false); err != nil || ms[0].Weight != 5 {
			t.Errorf("members of cache: %+v, %v; want a at 5", ms, err)
		}
		if l, _, err := o.GroupLeader(ctx, "cache"); err != nil || l == nil || l.ID != a.ID() || l.Weight != 5 {
			t.Errorf("leader of cache: %+v, %v; want a at 5", l, err)
		}
		if all, _, err := o.All(ctx); err != nil || all[0].Weight != 0 {
			t.Errorf("all: %+v, %v; want weight 0", all, err)
		}
		for _, tc := range []struct {
			group  string
			id     MemberID
			weight uint64
			want   error
		}{{"cache", a.ID(), 0, ErrBadRequest}, {"cache", 999, 2, ErrUnknownMember}, {"nowhere", a.ID(), 2, ErrNoGroup},
			{"db", a.ID(), 2, ErrNotInGroup}, {"cache", a.ID(), 5, nil}} {
			if err := o.SetWeight(ctx, tc.group, tc.id, tc.weight); !errors.Is(err, tc.want) {
				t.Errorf("set %d in %q to %d: %v, want %v", tc.id, tc.group, tc.weight, err, tc.want)
			}
		}
		if now, err := o.Version(ctx); err != nil || now != v+1 {
			t.Errorf("version %d, %v after refusals and a repeat; want %d", now, err, v+1)
		}
		if err := b.SetWeight(ctx, "cache", 4); err != nil {
			t.Fatal(err)
		}
		if e, err := group.wait(ctx, is(Weighted, b.ID())); err != nil || e.Member.Weight != 4 {
			t.Errorf("b weighted: %+v, %v; want weight 4", e.Event, err)
		}
		d := c.join(ctx, "d", "10.0.0.3:1") // the cluster's stream is past the weights once it hears d
		if _, err := cl.wait(ctx, is(Joined, d.ID())); err != nil {
			t.Fatal(err)
		}
		if n := cl.count(func(e Event) bool { return e.Kind == Weighted }); n != 0 {
			t.Errorf("the cluster's stream heard %d Weighted events, want none", n)
		}
		if n := group.count(func(e Event) bool { return e.Kind == Weighted }); n != 2 {
			t.Errorf("cache's stream heard %d Weighted events, want 2", n)
		}
	})
}
