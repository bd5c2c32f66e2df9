// Package node runs a raft group member for real: it connects the pure
// consensus core of package raft to a clock, a Storage and a Transport.
//
// Each Node owns one driver goroutine. The goroutine is the only code that
// touches the core, so the core needs no locks; everything else talks to
// it through channels. One turn of the driver takes one input (a tick of
// its own ticker, a message from the transport, a proposal, a read, the
// end of a disk write) and every other message or proposal already
// waiting, so a burst becomes one batch; then raft.Driver runs the Ready
// protocol with the Node as its raft.Host:
//
//  1. unless a write is in flight, take a Ready and send the messages
//     that may leave at once: a leader's appends go out while its own disk
//     write runs, and its entries count toward the quorum only after it;
//  2. write the hard state and entries. With an AsyncStorage (a WAL) the
//     fsync runs on a goroutine of the node's own while the driver goes
//     on stepping messages and proposals; those form the next Ready, so
//     concurrent proposals share one fsync. Committed entries already
//     durable are applied meanwhile; a change of the commit index alone
//     is written without an fsync;
//  3. once the write is durable, send the messages that needed it (vote
//     and append replies, a candidate's vote requests) unless the node
//     has since moved to a newer term, apply the rest of the committed
//     entries in order, answer the proposals they settle, and tell the
//     core the Ready is done.
//
// The simulator of raft/rafttest runs the same raft.Driver, so its seeded
// fault schedules check this protocol, not a copy of it.
//
// The state machine sees every committed entry with its index and term,
// the leaders' no-ops and configuration changes included, and a restored
// snapshot with its raft.SnapshotMeta: it always knows where it is in the
// log.
//
// Propose returns the command's log index and the state machine's result
// once the command is applied on the proposing node. Its errors say
// whether the command may still commit: those that wrap
// ErrOutcomeUnknown (a lost leadership, a context that ended or a node
// that stopped once the command was in the log) leave it unknown; every
// other error means it will not commit. A command larger than the core
// can send in one message is refused at once (raft.ErrProposalTooLarge).
//
// Status reports the core's view plus the leader's transport address and
// counts of role and term changes, which are also logged at Info.
//
// Reads have names. ReadIndex is linearizable: the leader confirms with a
// heartbeat round that it still leads (concurrent reads share rounds), and
// the call returns once this node has applied up to the read index; on a
// follower the read index comes from the leader. LeaseRead skips the round
// while the leader's lease holds (Config.LeaseReads; it assumes bounded
// clock drift). FollowerRead answers from whatever this node has applied,
// or ErrBehind if that is below the index the client has already seen:
// possibly stale, but monotonic for a client that passes its highest
// index. TransferLeadership hands leadership to another member and waits
// until it leads; proposals fail with raft.ErrTransferring meanwhile.
//
// Configuration: the zero value of every numeric field means its
// default, and a negative value means none or never where that makes
// sense (see Config). Optional capabilities of a Storage (Compacter,
// AsyncStorage, SnapshotStore) and of a Transport (PeerDirectory,
// AddressBook, ConfChangeRequester, MessageLimiter) are interfaces a
// user's own implementation can satisfy too.
//
// Snapshots: a StateMachine that is also a Snapshotter is snapshotted
// every Config.SnapshotEntries applied entries or Config.SnapshotBytes of
// applied commands; the snapshot is saved durably (Config.SnapshotDir:
// temporary file, fsync, rename, directory fsync; MemoryStorage keeps it
// in memory) on a goroutine beside the driver, which goes on heartbeating
// and committing, and the log and the storage are compacted into it once
// it is durable. A follower that fell behind the compacted log receives
// the snapshot in chunks, acknowledges it once durable and restores it
// afterwards, on the driver goroutine. A restart restores the newest
// snapshot and replays the log after it; the applied index never goes
// back.
//
// Transports: RPCTransport sends batches of messages over package rpc as
// one-way notifications, and many groups can share one rpc.Server under
// different service names.
package node
