// Package linearizability checks that sm's built-in machines (Map, Value
// and Number), served by the sm framework on the raft driver, are
// linearizable under faults, and that their subscriptions deliver
// exactly the changes a linearization implies.
//
// The package itself holds History, which imports nothing but the
// standard library: a recorder of the operations of concurrent clients
// (an operation on a Map key, the Value or the Number, its input and
// output) with logical call and return timestamps, an operation that
// never returned kept as pending. The tests hold the rest.
//
// # What is checked
//
// Clients run random operations through sm clients: Map get, insert,
// remove and compare_and_swap on a few keys, Value get and set, Number
// get, add and compare_and_swap. Written values are unique to the client
// and request, and the Number only grows, so an update applied twice, or
// a read of a value nobody wrote, shows. A porcupine model of the three
// machines, partitioned by object (each Map key, the Value, the Number),
// checks each history. An operation whose outcome is unknown (its
// context ended, its connection broke, its attempt timed out) is neither
// dropped nor assumed: an update stays in the history with an unknown
// output, returning at "infinity", so the checker may apply it at any
// point after its call or, in effect, never; a read that never returned
// is left out, as it changed nothing.
//
// Four subscribers follow the Value's changes, the Number's, those of
// the Map key k0 and those of every Map key, each opening its stream
// with ReadAndOpen, which answers the state at the index the stream
// starts after; the key's subscriber opens the stream of its removals
// (KeyRemoved) first and merges it with that of its inserts
// (KeyInserted) by event id, the log order, and the every-key
// subscriber's stream (Map.ReadAllAndOpen) is split into one stream per
// key, each starting from that key's state in the whole-map read. Once
// the cluster healed and a linearizable read found each object's final
// state, each stream must be (checkStream):
//
//   - a chain from the state ReadAndOpen answered to the final state,
//     each event's old state the previous event's new one: no event
//     lost, reordered or duplicated;
//   - explained: each event is the effect of an update in the history
//     called before it arrived, each update explaining one event at
//     most: none invented;
//   - what the history says: an acknowledged update's event carries
//     what it returned; every acknowledged update called after the
//     stream opened has its event, and none that returned before it
//     began to open has one; acknowledged updates appear in an order
//     their real-time order allows.
//
// A Value set, Map insert or swap that never returned but whose event
// arrived is then put in the history as having returned what the event
// says it replaced, by the time the event arrived, and porcupine checks
// that history: the chain of unique values fixes the order of those
// writes, so a linearization must order them as the stream does.
//
// # Two runners
//
// The in-process runner (TestLinearizable) runs raft/node servers, each
// with an sm.Host carrying the three machines, served with sm.Serve on
// an rpc.Server. Raft messages travel on an in-memory network with
// message loss, delay, reordering, partitions and crashes with restarts
// from node.MemoryStorage. Each client is an sm.Client with its own
// rpc.Pool, whose ClientConfig.Dial connects it over net.Pipe to an
// in-memory listener of the server it names, with the same faults: a
// hop takes the network's delay, and a lost request or reply cuts its
// connection, so that the client cannot know whether the server served
// it. Everything runs inside a testing/synctest bubble: time is fake and
// nothing sleeps on the wall clock. Its scenarios: basic (3 servers, 5
// clients), concurrent (7 servers, 15 clients), unreliable networks
// (loss, delay, reordering, messages seconds late), one partition (the
// minority's clients block until the heal), many partitions, crashes
// with restarts, snapshots taken every few entries and installed on
// lagging servers, a leader cut off with a minority, leadership transfer
// churn, and lease reads under partitions, transfers and crashes. Each
// also checks progress after the heal, that all replicas converge to
// byte-identical host states, and that reads took the path the scenario
// is about (lease reads from the lease, linearizable reads never without
// a message).
//
// The real-TCP runner (TestLinearizableTCP) runs bifrost.Nodes in this
// process on loopback TCP, each with its Dir, the three machines beside
// bifrost's own. Every connection a member's pools or a client dials
// goes through a fault-injecting dial (tcpNet): writes and reads delayed
// or lost (a loss cuts the connection), partitions that block one
// direction or both, so asymmetric ones too, and members that are down
// refusing dials. Members are stopped and started again from their
// Dirs: cleanly, or in a crash that loses whatever was written and not
// yet synced, through a file system under the WAL and the snapshot
// files (Config.FS, crashFS) that keeps unsynced data in memory apart
// from what a Sync made durable; now and then all members crash at once.
// Leadership moves by transfer, a member joins and another leaves mid
// run, and members snapshot every few dozen entries. Time is the wall
// clock: a seed fixes the faults and operations drawn, not the
// interleaving.
//
// # Running
//
//	go test -run Linearizable ./linearizability
//
// runs every in-process scenario for -runs seeds (13 by default, one
// under the race detector) and every real-TCP scenario for -tcpruns
// seeds (2 by default, one under the race detector). A failure prints
// its seed and the command that replays it,
//
//	go test ./linearizability -run '^TestLinearizable$/^<scenario>$' -seed N -v
//	go test ./linearizability -run '^TestLinearizableTCP$/^<scenario>$' -seed N -v
//
// and writes porcupine's visualization (and the operations on the
// objects that fail) to files in $LINEARIZABILITY_OUT, or the temporary
// directory, whose paths it prints. An in-process replay repeats the
// fault schedule and operations; the order in which goroutines
// interleave within one instant of fake time is the scheduler's, so a
// replay is close, not always exact. make soak runs far more seeds.
//
// # The checker bites
//
// TestLinearizableCheckerBites and TestLinearizableStreamCheckBites feed
// the checks histories and streams that are wrong.
// TestLinearizableCatchesReadsWithoutReadIndex runs the broken variant:
// the in-process harness with reads that skip the read index (sent as
// sm.Follower reads, recorded as linearizable); porcupine must reject
// one of a fixed few seeds, and its visualization must be written.
// TestLinearizableCatchesDuplicateUpdates retries slow updates in new
// sessions, which dedupe cannot match. TestLinearizableTCPCatchesAcksBeforeSync
// gives real-TCP members disks whose syncs return before they are done,
// and crashes them all: an acknowledged write lost must show.
// TestLinearizableTCPCatchesReadsWithoutReadIndex runs the broken read
// variant on real TCP under partitions, some asymmetric.
package linearizability
