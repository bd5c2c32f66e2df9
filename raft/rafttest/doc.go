// Package rafttest runs raft cores in a deterministic simulator and checks
// the Raft invariants at every step. The package's own tests cover the
// MIT 6.5840 lab scenarios (3A-3C) by intent and thousands of random fault
// schedules; other packages may use the simulator for their own tests.
//
// # The simulator
//
// A Cluster holds Options.Nodes raft.Core values (and Options.Spares
// that may join), a simulated clock and network, a simulated disk per
// node and a client, all driven by one goroutine. Every random choice
// comes from one PCG stream seeded by Options.Seed (each core's election
// timeouts included), and nothing reads the wall clock, so the same seed
// and the same calls replay the same run, event for event.
//
// Time advances in units; a node ticks every TickUnits units, each at its
// own phase. Messages travel encoded (so the codec runs on every hop) with
// a delay drawn per message, in order on each link like a connection.
// Faults adds reordering, loss, duplication, long delays (messages that
// arrive long after newer ones, across partition changes), slow disks and
// torn writes. Links can be cut one way (Cut), around a node (Isolate) or
// between groups (Partition); disks can hang (StallDisk); nodes Crash and
// Restart from what their disk synced. Heal ends every fault.
//
// After every input to a core (a tick, a message, a proposal) the
// simulator runs the node's raft.Driver, the Ready protocol raft/node
// runs too, with a raft.Host of its own (host.go): the wire, the disk and
// the application are simulated, the protocol is the one that ships. The
// checks watch every call of the Host: what is sent, written, restored
// and applied.
// With Faults.DiskDelay the write takes time, during which the node keeps
// stepping messages and ticking (so a leader hears acknowledgements before
// its own write is durable); a crash meanwhile keeps only a prefix of the
// unsynced writes, as does Faults.TornWrite.
//
// The client proposes unique commands to the leader (Propose, One). A
// proposal is acknowledged (Acked) when the node it went to hands out an
// entry with its index and term as committed. It also reads (Read:
// ReadIndex or LeaseRead on any node) and asks for leadership transfers
// (TransferLeadership).
//
// # Writing a scenario
//
//	c := rafttest.NewCluster(t, rafttest.Options{Nodes: 5, Seed: seed})
//	lead := c.WaitLeader(30)          // ticks
//	c.One([]byte("x=1"), 5, 40)       // propose until applied on 5 nodes
//	c.Isolate(lead)
//	c.One([]byte("x=2"), 4, 100)      // the other four go on
//	c.Crash(lead)
//	c.Restart(lead)
//	c.CheckLiveness(300, 300)         // heal; a leader, then everything applied everywhere
//
// Message counts by type and bytes are in Stats (ResetStats between
// phases).
//
// # Snapshots and configuration
//
// The application's state is a hash of every entry it applied; a
// snapshot is that state and its index, encoded. A node snapshots when
// Snapshot is called or every Options.SnapshotEvery applied entries:
// the snapshot is stored durably, raft.Core.Compact drops the log before
// it and the simulated disk compacts too. A leader serves
// Ready.SnapshotRequests with chunks of Options.SnapshotChunkBytes from
// the snapshot each transfer started with; a follower stores
// Ready.SnapshotChunks and makes Ready.Snapshot durable with the Ready's
// other writes (a crash may keep it and lose what follows, never the
// reverse), then restores its application from the bytes. Restarts start
// from snapshot plus log.
//
// Options.Spares nodes exist outside the group: AddNode asks the leader
// to add one as a learner and starts it with empty storage; the leader
// promotes it once it caught up (raft.Config.PromoteLag), or PromoteNode
// asks. RemoveNode removes a member, which keeps running, so the checks
// see whether it can disrupt the rest. IDs lists every node started,
// Members the leader's configuration.
//
// # Invariants
//
// Checked after every input and every Ready, across crashes:
//
//   - election safety: at most one leader per term;
//   - log matching: entries with the same index and term have identical
//     prefixes, in every log ever written (a hash chain per log);
//   - leader completeness: a new leader holds every entry committed in an
//     earlier term;
//   - a leader commits only what is durable on a quorum, and no write
//     overwrites an entry that was committed when the node took its
//     Ready (a slow disk may land a replacement decided earlier);
//   - state-machine safety: every node applies the same entry at each
//     index, in order, exactly once per incarnation, never beyond the
//     commit index it persisted, and the entry a client was acknowledged
//     for is the one it proposed;
//   - term, vote and commit index never go back, in memory within an
//     incarnation and on disk across restarts; a vote is never changed
//     within a term;
//   - persist before you speak: a vote, a vote request and an append
//     acknowledgement leave only when the disk backs them (the
//     acknowledgement against the leader's own log);
//   - truncation only on a real conflict; MsgApp within the batch limits;
//   - linearizable reads: a read index covers every write acknowledged
//     before the read began and never passes the commit index;
//   - snapshots: a snapshot installed covers only committed entries, its
//     term is the committed entry's, the applied index never goes back
//     (installs included), and the state restored from a snapshot, taken
//     or installed, equals the state every node had at its index;
//   - quorums are counted among the voters of the committing leader's
//     configuration (raft.Core.Configuration), which with single-server
//     changes overlaps a quorum of the one before; a node campaigns only
//     as a voter of its own configuration (when it takes the Ready: its
//     vote requests may leave after an append undid its promotion).
//
// CheckLiveness heals the cluster and then requires a leader, and a new
// command applied on every member (with it every acknowledged command),
// within the given bounds.
//
// A violation fails the test with the seed, the simulated time and the
// last events (Options.TraceEvents of them).
//
// # Random schedules and replay
//
// TestRandomSchedules runs one random schedule per seed: a random cluster
// size and core configuration, a fault phase mixing everything above while
// the client proposes, reads, asks for transfers, snapshots, adds
// learners, promotes them and removes learners and voters, then
// CheckLiveness. By default
// it runs 1000 seeds (100 under the race detector, 100 with -short) on
// every CPU. A failing seed prints the command that replays it alone:
//
//	replay: go test ./raft/rafttest -run TestRandomSchedules -seed <S> -v
//
// Flags: -seed S runs one seed; -seeds N runs N seeds starting at
// -firstseed (default 1); -soak runs 100000 seeds (what make soak runs,
// with -timeout 0); -events N shows N events of a failing run's trace.
//
//	go test ./raft/rafttest -run TestRandomSchedules -soak -timeout 0
//	go test ./raft/rafttest -run TestRandomSchedules -seeds 20000 -firstseed 500000
package rafttest
