// Package linearizability checks that a replicated key-value store built
// on the raft driver (package raft/node) is linearizable under faults.
//
// The package itself holds the parts a test needs that import nothing
// outside the standard library:
//
//   - KV, a key-value state machine (Put, Append, Get) with client
//     sessions: each client has an id and numbers its requests, and the
//     store applies each number once, so a request retried after a lost
//     reply or a leader change takes effect exactly once (Raft thesis
//     6.3). The session table is part of the replicated state and of the
//     snapshots, so every replica agrees on what was applied.
//   - History, a recorder of the operations of concurrent clients with
//     logical call and return timestamps, and operations that never
//     returned kept as pending.
//
// The tests hold the rest. A cluster of raft/node servers runs on an
// in-memory network with message loss, delay, reordering, partitions and
// crashes with restarts from node.MemoryStorage, inside a testing/synctest
// bubble, so time is fake and nothing sleeps on the wall clock. Clients
// send Put and Append through Node.Propose to whichever server leads,
// retrying with the same sequence number, and Get through Node.ReadIndex
// or, in the lease scenarios, Node.LeaseRead. A porcupine model of the store
// (partitioned by key) then checks the history; a failing check writes
// porcupine's visualization to a temporary file and names it.
//
// Run the suite with
//
//	go test -run Linearizable ./linearizability
//
// TestLinearizable has one subtest per scenario: basic (3 servers, 5
// clients), concurrent (7 servers, 15 clients), unreliable networks (loss,
// delay, reordering, and messages that arrive seconds late), one partition
// (the minority's clients block until the heal), many partitions, crashes
// with restarts, snapshots taken every few entries and installed on
// lagging servers, a leader cut off with a minority, leadership transfer
// churn, and lease reads under partitions, transfers and crashes. Each
// also checks progress after the heal and that all replicas converge to
// the same data.
//
// Each scenario runs a few consecutive seeds; a seed draws the faults and
// the clients' operations. A failure prints its seed and the command that
// replays it:
//
//	go test ./linearizability -run '^TestLinearizable$/^<scenario>$' -seed N -v
//
// A replay repeats the same fault schedule and operations; the order in
// which goroutines interleave within one instant of fake time is up to
// the scheduler, so a replay is close, not always exact. -runs N runs N
// seeds per scenario, for a longer soak.
//
// The suite is known to bite: TestLinearizableCheckerBites feeds the
// checker histories that are not linearizable;
// TestLinearizableCatchesStaleFollowerReads runs the same harness with
// reads served by Node.FollowerRead (possibly stale by design), and
// TestLinearizableCatchesDuplicateAppends with clients that retry under a
// new sequence number; porcupine must reject both histories.
package linearizability
