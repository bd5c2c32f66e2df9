// Package sm runs replicated state machines on a raft group: typed
// commands that go through the log, queries that read one replica, and
// subscriptions to events the commands notify, with exactly-once client
// sessions. It re-creates the state machines of the Rust bifrost
// (raft_state_machine!: def cmd, def qry, def sub) with generics instead
// of a macro, and fixes what that one got wrong: events there were
// fire-and-forget, lost on a leader change, and applied commands waited
// for every subscriber; clients retried without sessions, so commands
// could apply twice; follower queries checked the appended index, not
// the applied one.
//
// # Defining a machine
//
// A machine's functions are typed values, declared once where server and
// client both see them:
//
//	var (
//		Put   = sm.NewCommand[PutReq, string]("kv", "put")
//		Get   = sm.NewQuery[string, string]("kv", "get")
//		OnKey = sm.NewSubscription[string, string]("kv", "on_key")
//	)
//
// The server attaches handlers to a Machine over its state and hands the
// machines to a Host, the group's node.StateMachine:
//
//	m := sm.NewMachine("kv", store)            // store is a Snapshotter
//	sm.HandleCommand(m, Put, func(a *sm.Apply, r PutReq) (string, error) {
//		old := store.put(r.K, r.V)
//		return old, sm.Notify(a, OnKey, r.K, r.V)
//	})
//	sm.HandleQuery(m, Get, func(_ *sm.Read, k string) (string, error) { return store.get(k), nil })
//	host, err := sm.NewHost(sm.HostConfig{}, m)
//	// node.Config{StateMachine: host, ...}; then
//	srv, err := sm.Serve(rpcServer, "group", host, n)
//
// and a client calls them:
//
//	old, err := Put.Do(ctx, client, PutReq{K: "a", V: "1"})
//	v, err := Get.Read(ctx, client, "a")                // linearizable
//	v, err = Get.ReadAs(ctx, client, sm.Follower, "a") // the seed's follower read
//	for ev, err := range OnKey.Subscribe(ctx, client, "a") { ... } // break ends it
//
// Value, Map and Number are machines built in this way.
//
// # Rules for handlers
//
// Commands apply one at a time in log order, on every replica, under the
// host's write lock. A command handler must be deterministic: it sees its
// request and what the leader stamped into the entry (Apply: index, term
// and the leader's time), never a replica's own clock, randomness or
// I/O. An error it returns reaches the caller as a RemoteError, and the
// command still counts as applied, so it must leave the state as it was.
// Apply.Context binds Leading, whether this member leads as it applies:
// the one fact a handler may read that differs between replicas, for
// effects outside the replicated state only (the host itself reads it to
// wake subscribers on the leader alone). A member issues commands of its
// own, outside client sessions, with Submit.
// A query handler must not change the state: queries run on one replica,
// concurrently with each other under a read lock, and get no Apply. A
// machine's state is a Snapshotter whose encoding is equal for equal
// states, so that replicas can be compared byte for byte.
//
// # Exactly once
//
// A Client opens a session (a command: its id is the entry's index) and
// numbers its commands. The host keeps, in replicated state and in
// snapshots, the answers of the numbers the client may still retry (a
// client with several commands in flight sends the lowest it waits for),
// so a retry after a lost answer, a timeout or a leader change gets the
// first answer instead of applying again. Sessions expire after
// HostConfig.SessionTimeout of the leader's time in the log, the same on
// every replica. A command that finds its session expired goes again in
// a new one if no attempt of it can have reached the log; otherwise it
// fails with ErrSessionExpired, as it may have applied. A client that
// only listens renews its session four times per timeout.
//
// # Reads
//
// Linearizable (the default) confirms the read index with the leader;
// Lease skips that round while the leader's lease holds (bounded clock
// drift); Follower answers on any replica whose state has reached the
// highest index the client has seen, else the client tries another:
// possibly stale, never going back for one client.
//
// # Subscriptions
//
// Subscribing is a command of the subscriber's session, so every replica
// holds the registration, in snapshots too, and a session that expires
// or closes takes its subscriptions along: a subscriber that dies is
// unsubscribed by the log, on every replica, one session timeout after
// its last sign of life. A command notifies events with Notify; every
// replica records those someone subscribed to, in log order, into a
// window of recent events (HostConfig.RetainEvents and RetainBytes). An event's id is
// the index of the command that notified it and its place among that
// command's events.
//
// Only the leader delivers, and apply never waits for a subscriber: a
// client polls the leader, in one call for all its streams, with the id
// of the last event each got, and the leader answers as soon as any has
// later events (a long poll). A stream whose reader stalls stops being
// asked for once its queue is full and falls behind alone, in the
// window. After a leader change the client asks the new leader from the
// same ids. So the events of one stream arrive in order, each once, none
// skipped, from the command after its registration (Stream.Index) on,
// across leader changes and restarts of the group; one that falls behind
// the window gets a *CompactedError (ErrCompacted) naming the index to
// read the state at before subscribing again. ReadAndOpen reads the
// state and opens a stream in one command, so that the stream's first
// event is the first change after what the read returned.
//
// A machine may Retain a subscription: every replica then records its
// events whether anyone listens or not, and OpenAfter opens a stream
// right after any event id still in the window, with the same
// guarantee (in order, each once, none skipped, or a *CompactedError),
// however the subscriber saw the earlier events: through another
// client, from another member, before leader changes. Ids are the same
// on every replica, so a subscriber that keeps the last id it got
// resumes anywhere. Map retains Changed, all its inserts and removals
// in one stream, for that; the window then holds the map's latest
// changes, values included.
//
// Many hosts share one rpc server: each group's service is "sm." + its
// name.
package sm
