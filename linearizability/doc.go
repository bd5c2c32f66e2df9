// Package linearizability checks that the state-machine framework (package
// sm) on the raft driver (package raft/node) is linearizable under faults,
// with a replicated key-value store as the machine under test.
//
// The package itself holds the parts a test needs that import nothing
// outside the standard library and the project:
//
//   - KV, the state of the "kv" machine, and its functions Put and Append
//     (sm commands) and Get (an sm query, in any read mode). The store is
//     plain data with a deterministic snapshot; exactly-once execution of
//     retried commands is sm's, through its client sessions, and nothing
//     in the store helps it.
//   - History, a recorder of the operations of concurrent clients with
//     logical call and return timestamps, and operations that never
//     returned kept as pending.
//
// The tests hold the rest. Each server runs an sm.Host carrying the KV
// machine as the state machine of a raft/node.Node, and serves it with
// sm.Serve on an rpc.Server. Raft messages travel on an in-memory
// network with message loss, delay, reordering, partitions and crashes
// with restarts from node.MemoryStorage. Each client is an sm.Client with
// its own rpc.Pool, whose ClientConfig.Dial connects it over net.Pipe to
// an in-memory listener of the server it names, with the same faults: a
// hop takes the network's delay, and a lost request or reply cuts its
// connection at that point, so that the client cannot know whether the
// server served it; a crashed server, or one a partition cuts the client
// off from, refuses dials and loses its connections. Everything runs
// inside a testing/synctest bubble, so time is fake and nothing sleeps on
// the wall clock. Clients call Put.Do, Append.Do and Get.ReadAs with
// sm.Linearizable or, in the lease scenarios, sm.Lease; finding the
// leader, retrying and deduplicating are the sm.Client's. A porcupine
// model of the store (partitioned by key) then checks the history; a
// failing check writes porcupine's visualization to a temporary file and
// names it.
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
// churn, and lease reads under partitions, transfers and crashes. Some
// clients only read, and so stay with whichever server answers them,
// leader or follower. Each scenario also checks progress after the heal,
// that all replicas converge to byte-identical host states (data and
// sessions), and that reads took the path the scenario is about: lease
// reads answered from the lease, linearizable reads never without a
// message.
//
// Each scenario runs a few consecutive seeds; a seed draws the faults and
// the clients' operations. A failure prints its seed and the command that
// replays it:
//
//	go test ./linearizability -run '^TestLinearizable$/^<scenario>$' -seed N -v
//
// A replay repeats the same fault schedule and operations; the order in
// which goroutines interleave within one instant of fake time is up to
// the scheduler, and sm's retry backoff has its own randomness, so a
// replay is close, not always exact. -runs N runs N seeds per scenario,
// for a longer soak.
//
// The suite is known to bite: TestLinearizableCheckerBites feeds the
// checker histories that are not linearizable;
// TestLinearizableCatchesStaleFollowerReads runs the same harness with
// sm.Follower reads (possibly stale by design) by clients that only read,
// and TestLinearizableCatchesDuplicateAppends with clients that retry a
// slow update through a new sm.Client, in a new session that dedupe
// cannot match with the first; porcupine must reject both histories.
package linearizability
