package membership

import (
	"bytes"
	"errors"
	"maps"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

// stateLog applies commands to a state as the log would, at increasing
// indexes.
type stateLog struct {
	s     *state
	index uint64
	fx    effects // of the last command
}

func newStateLog() *stateLog { return &stateLog{s: newState()} }

func (l *stateLog) do(f func(fx *effects) error) error {
	l.index++
	l.fx = effects{}
	return f(&l.fx)
}

func (l *stateLog) join(name, addr string) (Member, error) {
	var m Member
	err := l.do(func(fx *effects) (err error) { m, err = l.s.join(fx, l.index, name, addr); return err })
	return m, err
}

func (l *stateLog) snapshot() []byte { return l.s.appendSnapshot(nil) }

func kinds(evs []Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Kind.String()+"@"+e.Group)
	}
	return out
}

func TestStateJoinRestartLeave(t *testing.T) {
	l := newStateLog()
	l.do(func(*effects) error { return l.s.createGroup("g") })
	a, _ := l.join("a", "a:1")
	if a.ID != MemberID(l.index) || a.Incarnation != 1 || !a.Online {
		t.Fatalf("join: %+v, want id %d incarnation 1 online", a, l.index)
	}
	b, _ := l.join("b", "b:1")
	l.do(func(fx *effects) error { return l.s.joinGroup(fx, a.ID, 1, "g", 1) })
	l.do(func(fx *effects) error { return l.s.joinGroup(fx, b.ID, 1, "g", 1) })
	l.do(func(fx *effects) error { l.s.mark(fx, []Transition{{ID: a.ID, Incarnation: 1}}); return nil })
	if got := kinds(l.fx.events); !slices.Equal(got, []string{"offline@", "offline@g"}) {
		t.Errorf("offline announces %v", got)
	}
	if len(l.fx.leaders) != 1 || l.fx.leaders[0].Old.ID != a.ID || l.fx.leaders[0].New.ID != b.ID {
		t.Errorf("leader changes %+v, want a to b", l.fx.leaders)
	}
	r, _ := l.join("a", "a:2") // restart at a new address
	if r.ID != a.ID || r.Incarnation != 2 || r.Addr != "a:2" || !r.Online {
		t.Fatalf("restart: %+v", r)
	}
	if got := kinds(l.fx.events); !slices.Equal(got, []string{"joined@", "joined@g"}) {
		t.Errorf("restart announces %v", got)
	}
	if len(l.fx.leaders) != 1 || l.fx.leaders[0].New.ID != a.ID || l.fx.leaders[0].New.Incarnation != 2 {
		t.Errorf("restart: leader changes %+v, want b to a#2", l.fx.leaders)
	}
	if err := l.do(func(fx *effects) error { return l.s.leave(fx, a.ID, 1) }); !errors.Is(err, ErrStaleIncarnation) {
		t.Errorf("leave of the old incarnation: %v", err)
	}
	l.do(func(fx *effects) error { return l.s.leave(fx, a.ID, 2) })
	if got := kinds(l.fx.events); !slices.Equal(got, []string{"left@", "left@g"}) {
		t.Errorf("leave announces %v", got)
	}
	again, _ := l.join("a", "a:3")
	if again.ID == a.ID || again.Incarnation != 1 {
		t.Errorf("a join after leaving: %+v, want a new member", again)
	}
	ls, _ := l.s.list("g", false)
	if len(ls.Members) != 1 || ls.Members[0].ID != b.ID {
		t.Errorf("group g: %v, want b alone", ls.Members)
	}
}

func TestStateDeleteGroup(t *testing.T) {
	l := newStateLog()
	l.do(func(*effects) error { return l.s.createGroup("g") })
	a, _ := l.join("a", "")
	l.do(func(fx *effects) error { return l.s.joinGroup(fx, a.ID, 1, "g", 2) })
	l.do(func(fx *effects) error { return l.s.deleteGroup(fx, "g") })
	if got := kinds(l.fx.events); !slices.Equal(got, []string{"left@g"}) || len(l.fx.leaders) != 1 || l.fx.leaders[0].New != nil {
		t.Errorf("delete announces %v, leaders %+v", got, l.fx.leaders)
	}
	if w := l.fx.events[0].Member.Weight; w != 2 {
		t.Errorf("left@g carries weight %d, want the 2 it had", w)
	}
	if err := l.do(func(fx *effects) error { return l.s.joinGroup(fx, a.ID, 1, "g", 1) }); !errors.Is(err, ErrNoGroup) {
		t.Errorf("join a deleted group: %v", err)
	}
	l.do(func(*effects) error { return l.s.createGroup("g") })
	l.do(func(fx *effects) error { return l.s.joinGroup(fx, a.ID, 1, "g", 1) })
	if ls, _ := l.s.list("g", false); len(ls.Members) != 1 || ls.Members[0].Weight != 1 {
		t.Errorf("a group made again: %v, want a at weight 1, not the old weight", ls.Members)
	}
}

// A weight lives in its group: joins set it (1 unless asked), set_weight
// and a second join change it, announced as Weighted in the group alone
// without a leader change; a restart keeps it, leaving the group drops it.
func TestStateWeights(t *testing.T) {
	l := newStateLog()
	l.do(func(*effects) error { return l.s.createGroup("g") })
	a, _ := l.join("a", "")
	b, _ := l.join("b", "")
	steps := []struct {
		name   string
		f      func(fx *effects) error
		events []string
		weight uint64 // of a's events in g, and of a in g's listing after
	}{
		{"join weighted", func(fx *effects) error { return l.s.joinGroup(fx, a.ID, 1, "g", 3) }, []string{"joined@g"}, 3},
		{"set", func(fx *effects) error { return l.s.setWeight(fx, a.ID, 1, "g", 5) }, []string{"weighted@g"}, 5},
		{"set, as an observer", func(fx *effects) error { return l.s.setWeight(fx, a.ID, 0, "g", 4) }, []string{"weighted@g"}, 4},
		{"set the same", func(fx *effects) error { return l.s.setWeight(fx, a.ID, 0, "g", 4) }, nil, 4},
		{"join again, another weight", func(fx *effects) error { return l.s.joinGroup(fx, a.ID, 1, "g", 7) }, []string{"weighted@g"}, 7},
		{"b joins", func(fx *effects) error { return l.s.joinGroup(fx, b.ID, 1, "g", 1) }, []string{"joined@g"}, 7},
		{"restart", func(fx *effects) error { _, err := l.s.join(fx, l.index, "a", "a:2"); return err }, []string{"joined@", "joined@g"}, 7},
		{"offline", func(fx *effects) error { l.s.mark(fx, []Transition{{ID: a.ID, Incarnation: 2}}); return nil }, []string{"offline@", "offline@g"}, 7},
		{"set while offline", func(fx *effects) error { return l.s.setWeight(fx, a.ID, 2, "g", 2) }, []string{"weighted@g"}, 2},
		{"leave the group", func(fx *effects) error { return l.s.leaveGroup(fx, a.ID, 2, "g") }, []string{"left@g"}, 2},
		{"join at the default", func(fx *effects) error { return l.s.joinGroup(fx, a.ID, 2, "g", 1) }, []string{"joined@g"}, 1},
	}
	for _, st := range steps {
		before, leader := l.s.version, l.s.leader("g")
		if err := l.do(st.f); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if got := kinds(l.fx.events); !slices.Equal(got, st.events) {
			t.Errorf("%s announces %v, want %v", st.name, got, st.events)
		}
		if bumped := l.s.version != before; bumped != (len(st.events) > 0) {
			t.Errorf("%s: version %d to %d", st.name, before, l.s.version)
		}
		for _, e := range l.fx.events {
			if want := map[bool]uint64{true: 0, false: st.weight}[e.Group == ""]; e.Member.ID == a.ID && e.Member.Weight != want {
				t.Errorf("%s: %v@%q carries weight %d, want %d", st.name, e.Kind, e.Group, e.Member.Weight, want)
			}
			if e.Kind == Weighted && (len(l.fx.leaders) != 0 || !sameMember(leader, l.s.leader("g"))) {
				t.Errorf("%s: a weight changed the leader: %+v", st.name, l.fx.leaders)
			}
		}
		ls, _ := l.s.list("g", false)
		i := slices.IndexFunc(ls.Members, func(m Member) bool { return m.ID == a.ID })
		if left := slices.Equal(st.events, []string{"left@g"}); left != (i < 0) || !left && ls.Members[i].Weight != st.weight {
			t.Errorf("%s: g lists %+v, want a at weight %d", st.name, ls.Members, st.weight)
		}
		if all, _ := l.s.list("", false); all.Members[0].Weight != 0 {
			t.Errorf("%s: the cluster lists %+v, want weight 0", st.name, all.Members[0])
		}
	}
	if m := l.s.leader("g"); m == nil || m.ID != b.ID || m.Weight != 1 {
		t.Errorf("leader of g: %+v, want b at weight 1", m)
	}
	l.do(func(fx *effects) error { return l.s.leave(fx, b.ID, 1) })
	if len(l.fx.events) != 2 || l.fx.events[1].Member.Weight != 1 || l.fx.events[0].Member.Weight != 0 {
		t.Errorf("b leaves: %+v, want left@ at weight 0, left@g at 1", l.fx.events)
	}
}

// A snapshot with a weight of 0 in a group, or one outside a group, is
// refused.
func TestDecodeStateChecksWeights(t *testing.T) {
	for _, tc := range []struct {
		name  string
		spoil func(r *record)
	}{
		{"weight 0 in a group", func(r *record) { r.weights["g"] = 0 }},
		{"weight outside a group", func(r *record) { r.Member.Weight = 1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newStateLog()
			l.do(func(*effects) error { return l.s.createGroup("g") })
			a, _ := l.join("a", "")
			l.do(func(fx *effects) error { return l.s.joinGroup(fx, a.ID, 1, "g", 2) })
			if _, err := decodeState(l.snapshot()); err != nil {
				t.Fatalf("a good snapshot: %v", err)
			}
			tc.spoil(l.s.members[a.ID])
			if _, err := decodeState(l.snapshot()); !errors.Is(err, ErrCorrupt) {
				t.Errorf("decode: %v, want ErrCorrupt", err)
			}
		})
	}
}

// Bad input is refused and changes nothing: not the state, not its
// version, and announces nothing.
func TestStateBadInputChangesNothing(t *testing.T) {
	l := newStateLog()
	l.do(func(*effects) error { return l.s.createGroup("g") })
	a, _ := l.join("a", "")
	b, _ := l.join("b", "")
	l.do(func(fx *effects) error { return l.s.joinGroup(fx, b.ID, 1, "g", 2) })
	cases := []struct {
		name string
		f    func(fx *effects) error
		want error
	}{
		{"join without a name", func(fx *effects) error { _, err := l.s.join(fx, l.index, "", "x"); return err }, ErrBadRequest},
		{"leave, unknown", func(fx *effects) error { return l.s.leave(fx, 99, 1) }, ErrUnknownMember},
		{"join group, unknown", func(fx *effects) error { return l.s.joinGroup(fx, 99, 1, "g", 1) }, ErrUnknownMember},
		{"join group, stale", func(fx *effects) error { return l.s.joinGroup(fx, a.ID, 0, "g", 1) }, ErrStaleIncarnation},
		{"join group, missing", func(fx *effects) error { return l.s.joinGroup(fx, a.ID, 1, "h", 1) }, ErrNoGroup},
		{"join group, empty", func(fx *effects) error { return l.s.joinGroup(fx, a.ID, 1, "", 1) }, ErrBadRequest},
		{"join group, weight 0", func(fx *effects) error { return l.s.joinGroup(fx, a.ID, 1, "g", 0) }, ErrBadRequest},
		{"join group again, same weight", func(fx *effects) error { return l.s.joinGroup(fx, b.ID, 1, "g", 2) }, nil},
		{"set weight 0", func(fx *effects) error { return l.s.setWeight(fx, b.ID, 1, "g", 0) }, ErrBadRequest},
		{"set weight, unknown", func(fx *effects) error { return l.s.setWeight(fx, 99, 0, "g", 3) }, ErrUnknownMember},
		{"set weight, stale", func(fx *effects) error { return l.s.setWeight(fx, b.ID, 2, "g", 3) }, ErrStaleIncarnation},
		{"set weight, missing", func(fx *effects) error { return l.s.setWeight(fx, b.ID, 0, "h", 3) }, ErrNoGroup},
		{"set weight, empty", func(fx *effects) error { return l.s.setWeight(fx, b.ID, 0, "", 3) }, ErrBadRequest},
		{"set weight, not in it", func(fx *effects) error { return l.s.setWeight(fx, a.ID, 0, "g", 3) }, ErrNotInGroup},
		{"set weight, same", func(fx *effects) error { return l.s.setWeight(fx, b.ID, 0, "g", 2) }, nil},
		{"leave group, unknown", func(fx *effects) error { return l.s.leaveGroup(fx, 99, 1, "g") }, ErrUnknownMember},
		{"create, empty", func(*effects) error { return l.s.createGroup("") }, ErrBadRequest},
		{"delete, missing", func(fx *effects) error { return l.s.deleteGroup(fx, "h") }, ErrNoGroup},
		{"mark, unknown and stale", func(fx *effects) error {
			l.s.mark(fx, []Transition{{ID: 99, Incarnation: 1}, {ID: a.ID, Incarnation: 2}, {ID: a.ID, Incarnation: 1, Online: true}})
			return nil
		}, nil},
		{"leave group, not in it", func(fx *effects) error { return l.s.leaveGroup(fx, a.ID, 1, "g") }, nil},
		{"create, exists", func(*effects) error { return l.s.createGroup("g") }, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := l.snapshot()
			if err := l.do(tc.f); !errors.Is(err, tc.want) {
				t.Errorf("%v, want %v", err, tc.want)
			}
			if !bytes.Equal(before, l.snapshot()) || len(l.fx.events)+len(l.fx.leaders) != 0 {
				t.Errorf("changed the state or announced %v %v", l.fx.events, l.fx.leaders)
			}
		})
	}
}

// model is what a subscriber to every group and to the cluster knows:
// the members, their weights and the leaders the events tell of (Joined
// carries the first weight, Weighted the next ones).
type model struct {
	groups  map[string]map[MemberID]Member // "" for the cluster
	leaders map[string]*Member
	version uint64
}

func (m *model) apply(t *rapid.T, fx effects) {
	for _, e := range fx.events {
		if e.Version < m.version {
			t.Fatalf("event %+v goes back from version %d", e, m.version)
		}
		m.version = e.Version
		g := m.groups[e.Group]
		if g == nil {
			g = map[MemberID]Member{}
			m.groups[e.Group] = g
		}
		_, there := g[e.Member.ID]
		switch {
		case (e.Group == "") != (e.Member.Weight == 0):
			t.Fatalf("event %+v: weight 0 belongs to the cluster's events alone", e)
		case e.Kind == Weighted && (e.Group == "" || !there || g[e.Member.ID].Weight == e.Member.Weight):
			t.Fatalf("event %+v: a weight changes only in a group, of a member there, to a new weight", e)
		case e.Kind == Left && g[e.Member.ID] != e.Member:
			t.Fatalf("event %+v: Left tells the member as it was, %+v", e, g[e.Member.ID])
		}
		if e.Kind == Left {
			delete(g, e.Member.ID)
		} else {
			g[e.Member.ID] = e.Member
		}
	}
	for _, c := range fx.leaders {
		if !sameMember(m.leaders[c.Group], c.Old) {
			t.Fatalf("leader change %+v, but the leader was %v", c, m.leaders[c.Group])
		}
		m.leaders[c.Group] = c.New
	}
}

// cmd is a command as the log holds it, to apply to any state.
type cmd func(s *state, index uint64, fx *effects) error

// Over random histories: the events and leader changes tell a subscriber
// exactly the state (nothing missed, nothing extra), the leader is the
// first online member by id, a failed command changes nothing, a snapshot
// restores to the same bytes, and two states fed the same commands are
// byte-identical.
func TestStateProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		l, twin := newStateLog(), newStateLog()
		m := &model{groups: map[string]map[MemberID]Member{}, leaders: map[string]*Member{}}
		names := rapid.SampledFrom([]string{"a", "b", "c", "d", "e"})
		groups := rapid.SampledFrom([]string{"g", "h"})
		member := func(t *rapid.T) (MemberID, uint64) {
			if len(l.s.order) == 0 || rapid.IntRange(0, 9).Draw(t, "unknown") == 0 {
				return MemberID(rapid.Uint64Range(0, 50).Draw(t, "id")), 1
			}
			id := rapid.SampledFrom(l.s.order).Draw(t, "member")
			return id, l.s.members[id].Incarnation - uint64(rapid.IntRange(0, 4).Draw(t, "stale")/4)
		}
		ops := map[string]func(*rapid.T) cmd{
			"join": func(t *rapid.T) cmd {
				name, addr := names.Draw(t, "name"), rapid.StringMatching(`[a-z]{0,3}`).Draw(t, "addr")
				return func(s *state, index uint64, fx *effects) error { _, err := s.join(fx, index, name, addr); return err }
			},
			"leave": func(t *rapid.T) cmd {
				id, inc := member(t)
				return func(s *state, _ uint64, fx *effects) error { return s.leave(fx, id, inc) }
			},
			"joinGroup": func(t *rapid.T) cmd {
				id, inc := member(t)
				g := groups.Draw(t, "group")
				w := rapid.Uint64Range(0, 3).Draw(t, "weight") // 0 is refused
				return func(s *state, _ uint64, fx *effects) error { return s.joinGroup(fx, id, inc, g, w) }
			},
			"setWeight": func(t *rapid.T) cmd {
				id, inc := member(t)
				if rapid.Bool().Draw(t, "observer") {
					inc = 0 // whichever is current
				}
				g, w := groups.Draw(t, "group"), rapid.Uint64Range(0, 3).Draw(t, "weight")
				return func(s *state, _ uint64, fx *effects) error { return s.setWeight(fx, id, inc, g, w) }
			},
			"leaveGroup": func(t *rapid.T) cmd {
				id, inc := member(t)
				g := groups.Draw(t, "group")
				return func(s *state, _ uint64, fx *effects) error { return s.leaveGroup(fx, id, inc, g) }
			},
			"createGroup": func(t *rapid.T) cmd {
				g := groups.Draw(t, "group")
				return func(s *state, _ uint64, _ *effects) error { return s.createGroup(g) }
			},
			"deleteGroup": func(t *rapid.T) cmd {
				g := groups.Draw(t, "group")
				return func(s *state, _ uint64, fx *effects) error { return s.deleteGroup(fx, g) }
			},
			"mark": func(t *rapid.T) cmd {
				var ts []Transition
				for range rapid.IntRange(0, 4).Draw(t, "n") {
					id, inc := member(t)
					ts = append(ts, Transition{ID: id, Incarnation: inc, Online: rapid.Bool().Draw(t, "online")})
				}
				return func(s *state, _ uint64, fx *effects) error { s.mark(fx, ts); return nil }
			},
		}
		opNames := slices.Sorted(maps.Keys(ops))
		for range rapid.IntRange(1, 60).Draw(t, "steps") {
			name := rapid.SampledFrom(opNames).Draw(t, "op")
			c := ops[name](t)
			before := l.snapshot()
			err := l.do(func(fx *effects) error { return c(l.s, l.index, fx) })
			twin.do(func(fx *effects) error { return c(twin.s, twin.index, fx) })
			if err != nil && !bytes.Equal(before, l.snapshot()) {
				t.Fatalf("%s failed (%v) but changed the state", name, err)
			}
			m.apply(t, l.fx)
			check(t, l.s, m)
		}
		snap := l.snapshot()
		if !bytes.Equal(snap, twin.snapshot()) {
			t.Fatalf("two states fed the same commands differ")
		}
		back, err := decodeState(snap)
		if err != nil {
			t.Fatalf("restore: %v", err)
		}
		if !bytes.Equal(back.appendSnapshot(nil), snap) {
			t.Fatalf("restored state encodes differently")
		}
		check(t, back, m)
	})
}

func check(t *rapid.T, s *state, m *model) {
	for _, g := range append([]string{""}, slices.Sorted(maps.Keys(s.groups))...) {
		ls, err := s.list(g, false)
		if err != nil {
			t.Fatalf("list %q: %v", g, err)
		}
		told := slices.SortedFunc(maps.Values(m.groups[g]), func(a, b Member) int { return int(a.ID) - int(b.ID) })
		if !slices.Equal(ls.Members, told) {
			t.Fatalf("group %q holds %v; the events told %v", g, ls.Members, told)
		}
		if g == "" {
			continue
		}
		var first *Member
		for i := range ls.Members {
			if ls.Members[i].Online {
				first = &ls.Members[i]
				break
			}
		}
		if !sameMember(s.leader(g), first) || !sameMember(m.leaders[g], first) {
			t.Fatalf("group %q: leader %v, first online %v, told %v", g, s.leader(g), first, m.leaders[g])
		}
	}
	for g, ms := range m.groups {
		if _, ok := s.groups[g]; !ok && g != "" && len(ms) > 0 {
			t.Fatalf("deleted group %q still told to hold %v", g, ms)
		}
	}
}
