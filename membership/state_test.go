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
	l.do(func(fx *effects) error { return l.s.joinGroup(fx, a.ID, 1, "g") })
	l.do(func(fx *effects) error { return l.s.joinGroup(fx, b.ID, 1, "g") })
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
	l.do(func(fx *effects) error { return l.s.joinGroup(fx, a.ID, 1, "g") })
	l.do(func(fx *effects) error { return l.s.deleteGroup(fx, "g") })
	if got := kinds(l.fx.events); !slices.Equal(got, []string{"left@g"}) || len(l.fx.leaders) != 1 || l.fx.leaders[0].New != nil {
		t.Errorf("delete announces %v, leaders %+v", got, l.fx.leaders)
	}
	if err := l.do(func(fx *effects) error { return l.s.joinGroup(fx, a.ID, 1, "g") }); !errors.Is(err, ErrNoGroup) {
		t.Errorf("join a deleted group: %v", err)
	}
}

// Bad input is refused and changes nothing: not the state, not its
// version, and announces nothing.
func TestStateBadInputChangesNothing(t *testing.T) {
	l := newStateLog()
	l.do(func(*effects) error { return l.s.createGroup("g") })
	a, _ := l.join("a", "")
	cases := []struct {
		name string
		f    func(fx *effects) error
		want error
	}{
		{"join without a name", func(fx *effects) error { _, err := l.s.join(fx, l.index, "", "x"); return err }, ErrBadRequest},
		{"leave, unknown", func(fx *effects) error { return l.s.leave(fx, 99, 1) }, ErrUnknownMember},
		{"join group, unknown", func(fx *effects) error { return l.s.joinGroup(fx, 99, 1, "g") }, ErrUnknownMember},
		{"join group, stale", func(fx *effects) error { return l.s.joinGroup(fx, a.ID, 0, "g") }, ErrStaleIncarnation},
		{"join group, missing", func(fx *effects) error { return l.s.joinGroup(fx, a.ID, 1, "h") }, ErrNoGroup},
		{"join group, empty", func(fx *effects) error { return l.s.joinGroup(fx, a.ID, 1, "") }, ErrBadRequest},
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
// the members and leaders the events tell of.
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
				return func(s *state, _ uint64, fx *effects) error { return s.joinGroup(fx, id, inc, g) }
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
