package membership

import (
	"maps"
	"slices"

	"github.com/bifrost-go/bifrost/sm"
)

// machineName is the membership machine's name on its host.
const machineName = "membership"

// The machine's functions, shared by servers and clients.
var (
	joinCmd        = sm.NewCommand[request, Member](machineName, "join")
	leaveCmd       = sm.NewCommand[request, struct{}](machineName, "leave")
	joinGroupCmd   = sm.NewCommand[request, struct{}](machineName, "join_group")
	leaveGroupCmd  = sm.NewCommand[request, struct{}](machineName, "leave_group")
	createGroupCmd = sm.NewCommand[request, struct{}](machineName, "create_group")
	deleteGroupCmd = sm.NewCommand[request, struct{}](machineName, "delete_group")
	setWeightCmd   = sm.NewCommand[request, struct{}](machineName, "set_weight")
	// markCmd carries the leader's online and offline transitions; an
	// empty batch is a new leader's barrier.
	markCmd    = sm.NewCommand[marks, struct{}](machineName, "mark")
	membersQry = sm.NewQuery[list, listing](machineName, "members")
	leaderQry  = sm.NewQuery[list, listing](machineName, "group_leader")
	versionQry = sm.NewQuery[struct{}, listing](machineName, "version")
	groupsQry  = sm.NewQuery[struct{}, []string](machineName, "groups")
	// onGroup's events are those of one group, or of the cluster for "".
	onGroup  = sm.NewSubscription[groupKey, Event](machineName, "on_group")
	onLeader = sm.NewSubscription[groupKey, LeaderChange](machineName, "on_group_leader")
)

// Machine returns a new membership machine, called "membership", empty,
// for one sm host. Every member of the raft group carries one in its
// host; Serve then runs the heartbeat service and the failure detector
// beside it.
func Machine() *sm.Machine {
	st := newState()
	m := sm.NewMachine(machineName, st)
	sm.HandleCommand(m, joinCmd, func(a *sm.Apply, r request) (Member, error) {
		var joined Member
		err := st.apply(a, func(fx *effects) (err error) {
			joined, err = st.join(fx, a.Index, r.Name, r.Addr)
			return err
		})
		return joined, err
	})
	command(m, st, leaveCmd, func(fx *effects, r request) error { return st.leave(fx, r.ID, r.Incarnation) })
	command(m, st, joinGroupCmd, func(fx *effects, r request) error {
		return st.joinGroup(fx, r.ID, r.Incarnation, r.Group, r.Weight)
	})
	command(m, st, setWeightCmd, func(fx *effects, r request) error {
		return st.setWeight(fx, r.ID, r.Incarnation, r.Group, r.Weight)
	})
	command(m, st, leaveGroupCmd, func(fx *effects, r request) error { return st.leaveGroup(fx, r.ID, r.Incarnation, r.Group) })
	command(m, st, createGroupCmd, func(_ *effects, r request) error { return st.createGroup(r.Group) })
	command(m, st, deleteGroupCmd, func(fx *effects, r request) error { return st.deleteGroup(fx, r.Group) })
	command(m, st, markCmd, func(fx *effects, ts marks) error { st.mark(fx, ts); return nil })
	sm.HandleQuery(m, membersQry, func(_ *sm.Read, l list) (listing, error) {
		st.mu.RLock()
		defer st.mu.RUnlock()
		return st.list(l.Group, l.OnlineOnly)
	})
	sm.HandleQuery(m, leaderQry, func(_ *sm.Read, l list) (listing, error) {
		st.mu.RLock()
		defer st.mu.RUnlock()
		return st.groupLeader(l.Group)
	})
	sm.HandleQuery(m, versionQry, func(*sm.Read, struct{}) (listing, error) {
		st.mu.RLock()
		defer st.mu.RUnlock()
		return listing{Version: st.version}, nil
	})
	sm.HandleQuery(m, groupsQry, func(*sm.Read, struct{}) ([]string, error) {
		st.mu.RLock()
		defer st.mu.RUnlock()
		return slices.Sorted(maps.Keys(st.groups)), nil
	})
	return m
}

// command makes f apply c, answering nothing.
func command[Req any](m *sm.Machine, st *state, c *sm.Command[Req, struct{}], f func(*effects, Req) error) {
	sm.HandleCommand(m, c, func(a *sm.Apply, r Req) (struct{}, error) {
		return struct{}{}, st.apply(a, func(fx *effects) error { return f(fx, r) })
	})
}

// apply runs a change under the lock, notifies what it announced and, on
// the leader, tells the failure detector what changed in the cluster.
func (st *state) apply(a *sm.Apply, change func(*effects) error) error {
	var fx effects
	st.mu.Lock()
	err := change(&fx)
	st.mu.Unlock()
	if err != nil {
		return err
	}
	// Notify fails only for a value that does not encode, and ours all do.
	for _, e := range fx.events {
		sm.Notify(a, onGroup, groupKey(e.Group), e)
	}
	for _, c := range fx.leaders {
		sm.Notify(a, onLeader, groupKey(c.Group), c)
	}
	if svc := st.svc.Load(); svc != nil && sm.Leading.Get(a.Context()) {
		svc.observe(fx.events)
	}
	return nil
}
