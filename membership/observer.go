package membership

import (
	"context"
	"iter"

	"github.com/bifrost-go/bifrost/sm"
)

// Observer reads the membership and follows its changes, without being a
// member: queries (linearizable unless ReadAs says otherwise) and
// subscriptions, which carry sm's guarantees: each stream's events in log
// order, each once, across leader changes, or a *sm.CompactedError past
// the retention window. It also creates and deletes groups and sets
// members' weights, the only commands it sends. It is safe for
// concurrent use.
type Observer struct {
	c    *sm.Client
	mode sm.ReadMode
}

// NewObserver returns an observer of the membership of c's group.
func NewObserver(c *sm.Client) *Observer { return &Observer{c: c} }

// ReadAs returns an observer like o whose queries read in mode.
func (o *Observer) ReadAs(mode sm.ReadMode) *Observer { return &Observer{c: o.c, mode: mode} }

// Members returns the members of group, or of the cluster for "", all or
// the online ones, in id order, with the version they are at.
func (o *Observer) Members(ctx context.Context, group string, onlineOnly bool) ([]Member, uint64, error) {
	l, err := membersQry.ReadAs(ctx, o.c, o.mode, list{Group: group, OnlineOnly: onlineOnly})
	return l.Members, l.Version, fromRemote(err)
}

// All returns every member of the cluster, in id order, with the version.
func (o *Observer) All(ctx context.Context) ([]Member, uint64, error) {
	return o.Members(ctx, "", false)
}

// GroupLeader returns the leader of group, its first online member in id
// order (nil if none is online), with the version.
func (o *Observer) GroupLeader(ctx context.Context, group string) (*Member, uint64, error) {
	l, err := leaderQry.ReadAs(ctx, o.c, o.mode, list{Group: group})
	return leaderOf(l), l.Version, fromRemote(err)
}

func leaderOf(l listing) *Member {
	if len(l.Members) == 0 {
		return nil
	}
	return &l.Members[0]
}

// Groups returns the names of the cluster's groups, sorted.
func (o *Observer) Groups(ctx context.Context) ([]string, error) {
	gs, err := groupsQry.ReadAs(ctx, o.c, o.mode, struct{}{})
	return gs, fromRemote(err)
}

// Version returns the membership's version, which every change bumps.
func (o *Observer) Version(ctx context.Context) (uint64, error) {
	l, err := versionQry.ReadAs(ctx, o.c, o.mode, struct{}{})
	return l.Version, fromRemote(err)
}

// CreateGroup makes group; nothing happens if it exists.
func (o *Observer) CreateGroup(ctx context.Context, group string) error {
	_, err := createGroupCmd.Do(ctx, o.c, request{Group: group})
	return fromRemote(err)
}

// DeleteGroup removes group: Left is announced for each of its members,
// and the leader change to none.
func (o *Observer) DeleteGroup(ctx context.Context, group string) error {
	_, err := deleteGroupCmd.Do(ctx, o.c, request{Group: group})
	return fromRemote(err)
}

// SetWeight sets the weight of member id in group to weight, at least 1
// (ErrBadRequest), whichever incarnation of it is current. Errors:
// ErrUnknownMember, ErrNoGroup, ErrNotInGroup. Nothing happens for the
// same weight; a change bumps the version and is announced as Weighted on
// the group's stream alone, and leaves the group's leader as it is.
func (o *Observer) SetWeight(ctx context.Context, group string, id MemberID, weight uint64) error {
	_, err := setWeightCmd.Do(ctx, o.c, request{ID: id, Group: group, Weight: weight})
	return fromRemote(err)
}

// WatchGroup reads the members of group ("" for the cluster) and
// subscribes to its events at the same log index, in one command: the
// stream's first event is the first change after what members shows. Close
// the stream when done.
func (o *Observer) WatchGroup(ctx context.Context, group string) (members []Member, version uint64, events *sm.Stream[Event], err error) {
	l, st, err := sm.ReadAndOpen(ctx, o.c, membersQry, list{Group: group}, onGroup, groupKey(group))
	if err != nil {
		return nil, 0, nil, fromRemote(err)
	}
	return l.Members, l.Version, st, nil
}

// WatchGroupLeader reads the leader of group and subscribes to its
// changes at the same log index.
func (o *Observer) WatchGroupLeader(ctx context.Context, group string) (leader *Member, version uint64, changes *sm.Stream[LeaderChange], err error) {
	l, st, err := sm.ReadAndOpen(ctx, o.c, leaderQry, list{Group: group}, onLeader, groupKey(group))
	if err != nil {
		return nil, 0, nil, fromRemote(err)
	}
	return leaderOf(l), l.Version, st, nil
}

// OnGroup yields the events of group from now on: its members joining,
// leaving, going offline and coming back online, and their weights
// changing (never for the cluster, ""). Breaking the loop ends
// the subscription.
func (o *Observer) OnGroup(ctx context.Context, group string) iter.Seq2[sm.Event[Event], error] {
	return onGroup.Subscribe(ctx, o.c, groupKey(group))
}

// OnAny yields the events of the cluster from now on (Group ""): members
// joining and leaving it, going offline and coming back online.
func (o *Observer) OnAny(ctx context.Context) iter.Seq2[sm.Event[Event], error] {
	return o.OnGroup(ctx, "")
}

// OnGroupLeader yields the changes of group's leader from now on.
func (o *Observer) OnGroupLeader(ctx context.Context, group string) iter.Seq2[sm.Event[LeaderChange], error] {
	return onLeader.Subscribe(ctx, o.c, groupKey(group))
}
