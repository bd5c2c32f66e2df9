// Package node runs a raft group member for real: it connects the pure
// consensus core of package raft to a clock, a Storage and a Transport.
//
// Each Node owns one driver goroutine. The goroutine is the only code that
// touches the core, so the core needs no locks; everything else talks to
// it through channels. One turn of the driver:
//
//  1. take one input: a tick of its own ticker, a message from the
//     transport, a proposal, or the end of a disk write (and every other
//     message or proposal already waiting, so a burst becomes one batch);
//  2. unless a write is in flight, ask the core for a Ready and send the
//     messages that may leave at once: a leader's appends go out while
//     its own disk write runs, and its entries count toward the quorum
//     only after that write;
//  3. write the hard state and entries. With a Storage that can write
//     and sync separately (a WAL), the fsync runs on a goroutine of the
//     node's own while the driver goes on stepping messages and
//     proposals; those form the next Ready, so concurrent proposals
//     share one fsync. Committed entries already durable are applied
//     meanwhile; a change of the commit index alone is written without
//     an fsync;
//  4. once the write is durable, send the messages that needed it (vote
//     and append replies, a candidate's vote requests) unless the node
//     has since moved to a newer term, apply the rest of the committed
//     entries in order, answer the proposals they settle, and tell the
//     core the Ready is done.
//
// Propose returns the command's log index and the state machine's result
// once the command is applied on the proposing node. A proposal whose
// index ends up holding another leader's entry fails with
// raft.ErrProposalDropped. One whose proposer stops leading before it
// commits fails with ErrLeadershipLost, and one whose context ends first
// fails with the context's error: both have an unknown outcome, as with
// any RPC.
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
