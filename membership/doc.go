// Package membership tracks the servers of a cluster: they register,
// join named groups and heartbeat; the cluster knows who is online and
// tells subscribers about every change. It re-creates the client
// membership of the Rust bifrost on package sm, and fixes what that one
// got wrong: online status lived in a map on the leader alone, so a
// leader change forgot it and replicas answered differently; a ping set a
// member online locally, so coming back was never announced; a new leader
// granted a fresh fixed timeout to nobody in particular; membership was
// not in snapshots; a member's identity was a hash of its address, so a
// restarted member could not be told from its old self; and a member that
// pinged without joining panicked the leader when it went offline.
//
// # Running it
//
// Every member of the raft group carries the membership Machine in its sm
// host and serves it beside sm:
//
//	host, _ := sm.NewHost(sm.HostConfig{}, membership.Machine(), ...)
//	// node.Start(node.Config{StateMachine: host, ...})
//	s, _ := sm.Serve(rpcServer, "cluster", host, n)
//	svc, _ := membership.Serve(rpcServer, s, membership.Config{Group: "cluster"})
//	defer svc.Close()
//
// A server registers, with an sm client of the group and the same
// addresses and pool, and heartbeats until it closes:
//
//	cfg := membership.Config{Group: "cluster", Servers: addrs, Pool: pool}
//	m, _ := membership.Join(ctx, client, "cache-1", "10.0.0.1:7000", cfg)
//	m.JoinGroup(ctx, "cache")
//	defer m.Close(ctx) // leaves the cluster
//
// Anyone reads and follows the membership with an Observer:
//
//	obs := membership.NewObserver(client)
//	members, version, events, _ := obs.WatchGroup(ctx, "cache")
//
// # The replicated state
//
// Membership is a machine of the sm host: every change is a command in
// the raft log, so every replica holds the same state at the same applied
// index, in its snapshots too, and answers every query the same way
// there. It holds the members (id, name, address, incarnation, online),
// the groups and their members with each member's weight in each group,
// and a version that every change bumps by one. Lists are in id order; a
// group's leader is its first online member in id order.
//
// A weight is a member's share of a group, for what is built on the
// group (a consistent-hashing ring): at least 1, 1 unless the member
// joins with another (MemberHandle.JoinGroupWeighted), changed by
// Observer.SetWeight or MemberHandle.SetWeight, or by joining the group
// again with another weight. Member.Weight is the weight in a group's
// listings and events, 0 in the cluster's. Setting the weight a member
// has changes nothing; a weight never changes the group's leader. A
// member that leaves the group or the cluster loses its weight there; a
// restart keeps its groups and their weights.
//
// A member's id is the log index of the first join of its name, the same
// on every replica. Joining again under the same name (a restart) keeps
// the id and the groups, bumps the incarnation by one, takes the new
// address and marks the member online; the old incarnation's heartbeats
// and commands are refused with ErrStaleIncarnation from then on, and its
// handle stops (MemberHandle.Err). A member that leaves is gone; joining
// later under its name makes a new member, with a new id. Groups are
// created and deleted explicitly (Observer.CreateGroup, DeleteGroup); a
// member joins only a group that exists.
//
// Bad input changes nothing and panics nothing: a heartbeat or a command
// for an id that never joined (or left) gets ErrUnknownMember, for a
// replaced incarnation ErrStaleIncarnation, for a missing group
// ErrNoGroup, an empty name or a weight of 0 ErrBadRequest, and a
// weight for a group the member is not in ErrNotInGroup.
//
// # Heartbeats and failure detection
//
// A member heartbeats every HeartbeatInterval (default 500ms) to the raft
// leader's heartbeat service, "membership." + Group, outside the log; a
// follower answers with the leader's address and the member follows it.
// Heartbeats change nothing replicated, so a steady cluster writes no log
// entries however many members it has.
//
// The failure detector runs on the leader alone. It keeps, for each
// member, a deadline: the arrival of its last heartbeat plus Timeout
// (default 3s). It checks them four times per heartbeat interval; an
// online member past its deadline is proposed offline, and an offline
// member that heartbeats again is proposed online; the transitions found
// in one check go through the log as one command. A transition names the
// incarnation and applies only if that incarnation is current and the
// member is not so already, so a retried batch changes nothing twice:
// every transition is announced once. A member that stops heartbeating
// goes offline between Timeout and Timeout + HeartbeatInterval/4 + one
// commit after its last heartbeat, and subscribers hear it one delivery
// later; the target is p99 at most Timeout + HeartbeatInterval + one
// commit.
//
// A leader's clock says nothing about members for the time it was not
// leading, or not running, so the detector never expires anyone on it.
// A new leader first applies its whole log (a barrier command), then
// gives every online member a deadline of now + Grace (default Timeout).
// A leader that notices it was paused itself (GC, SIGSTOP, a starved
// process: two of its checks further apart than HeartbeatInterval, or
// half of Timeout - HeartbeatInterval if that is less) gives every online
// member at least now + Grace again. So a leader change never marks offline
// a member whose heartbeats keep coming, nor does a pause of the leader
// longer than that threshold; a shorter pause only delays the heartbeats
// it holds up, by its own length, which counts against Timeout like any
// silence.
//
// # Events
//
// Events are sm subscriptions, with sm's guarantees: a stream's events
// arrive in log order, each once, across leader changes, or the stream
// fails with a *sm.CompactedError naming where to read again. OnGroup
// yields a group's events, OnAny the cluster's (Group ""): Joined, Left,
// Online and Offline, each with the member (its incarnation included,
// and in a group its weight there) and the version after the change. A
// Joined for a member already there is its restart. A group's stream
// also carries Weighted, for a change of a member's weight there, with
// the new weight; the cluster's does not. So the group's stream alone
// rebuilds its members, online status and weights, in one order.
// Deleting a group announces Left for each of its members. OnGroupLeader yields the changes of a group's leader, old and
// new (nil for none); a leader that restarts changes too. WatchGroup and
// WatchGroupLeader read the state and subscribe at the same log index,
// so nothing falls between.
//
// # Defaults
//
// HeartbeatInterval 500ms, Timeout 3s (at least twice the interval),
// Grace equal to Timeout (at least the interval). Both sides must use the
// same timings.
package membership
