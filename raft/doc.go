// Package raft is a pure implementation of the Raft consensus algorithm
// (Ongaro and Ousterhout, "In Search of an Understandable Consensus
// Algorithm", and Ongaro's thesis): leader election with pre-vote and
// check-quorum, log replication with fast conflict backup and pipelining,
// the commit rule of Figure 8, linearizable reads (ReadIndex and leases),
// leadership transfer, snapshots sent in chunks, and single-server
// configuration changes with learners.
//
// # A value, not a service
//
// A Core is one node's state machine. It does no I/O, reads no clock and
// starts no goroutine: ticks and messages go in, and Ready hands out what
// to persist, what to send and what to apply. The caller (a driver) owns
// the disk, the network and the ticker. The same inputs always give the
// same outputs, which is what lets a simulator run thousands of fault
// schedules from a seed. A Core is not safe for concurrent use.
//
// # The driver loop
//
// One goroutine drives one Core. Driver runs the Ready protocol against a
// Host, which does the I/O: raft/node's Node and the simulator of
// raft/rafttest are both Hosts of the same Driver, so the seeded fault
// schedules test the protocol that ships.
//
//	d := raft.NewDriver(core, host)
//	for {
//		select {
//		case <-ticker.C:
//			core.Tick()
//		case m := <-recv:
//			core.Step(m)
//		case p := <-proposals:
//			core.Propose(p)
//		case <-host.synced: // a write host.Write left in flight is durable
//			err = d.Synced() // and runs on, as Run does
//			continue
//		}
//		err = d.Run()
//	}
//
// For each Ready, Driver calls the Host in this order:
//
//	host.Take(&rd)                       // a first look (checks, addresses)
//	host.Send(rd.Messages)               // a leader's appends go out at once
//	host.SendSnapshot(rd.SnapshotRequests) // chunks read from the host's snapshot
//	host.Write(&rd)                      // chunks, Snapshot, HardState, Entries
//	// ... once durable:
//	host.Send(rd.AfterPersist)           // less what a newer term made stale
//	host.Reads(rd.ReadStates)            // each goes ahead once applied to its Index
//	host.Restore(rd.Snapshot)            // when not zero
//	host.Apply(rd.Committed)             // what is not applied yet
//	core.Advance(rd)
//
// The order is the contract, for a driver written by hand too:
//
//   - Messages may leave before the Ready is durable. They are a leader's
//     MsgApp and MsgHeartbeat, so the leader writes its log in parallel
//     with replicating it; its own entries count towards the quorum only
//     once Advance reports them durable.
//   - HardState (when HardStateChanged) and Entries must be durable before
//     AfterPersist leaves: those messages promise a vote or an appended
//     entry, and a node that forgets its promises after a crash can elect
//     two leaders in one term or lose a committed entry. Entries[0] may lie
//     at or below the last persisted index: that suffix is replaced.
//   - SnapshotRequests are MsgSnap the driver completes from its own
//     snapshot and sends at once. SnapshotChunks are stored, and a
//     non-zero Snapshot made durable before HardState and Entries, since
//     the log now continues after it; the application restores it before
//     applying Committed.
//   - Committed entries are applied in order, after Entries are durable.
//     Each entry appears once; a restarted node passes the index it had
//     applied as Config.Applied and is not handed those entries again.
//     They include the leaders' no-ops (EntryNoop), which the application
//     skips. A proposal's outcome is the committed entry at the index
//     Propose returned: the same term means it is the proposal, another
//     term means the proposal was dropped.
//   - ReadStates answer ReadIndex and LeaseRead requests by id. A read
//     goes ahead once the application has applied up to its Index, which
//     may take later Readys; Index 0 means refused.
//   - Advance follows every Ready, before the next one. Step, Tick and
//     Propose may be called between the two (a driver that persists
//     asynchronously); whatever they produce comes in the next Ready.
//     Such a driver drops the AfterPersist messages that Core.Stale
//     reports once the write is durable: they speak for a term the node
//     has left since. Between the two it may also apply the committed
//     entries that earlier Readys made durable: those of the Ready
//     itself below its first new entry, and, with TakeDurableCommitted,
//     those that committed meanwhile, instead of waiting for the write.
//
// Proposals are sent from HasReady and Ready rather than from Propose, so
// all proposals made between two Ready calls travel in one batch.
//
// # Restart
//
// A node restarts from what it persisted: Config.HardState, Config.Snapshot,
// Config.Entries (the log after the snapshot) and Config.Applied. Its term
// and vote survive, so it never votes twice in one term.
//
// # Safety and liveness rules
//
//   - Votes go only to a log at least as up to date as the voter's: a
//     higher last term wins, and only on equal last terms the longer log.
//   - Pre-vote (on by default): a would-be candidate first asks whether it
//     could win in the next term; granting that changes nothing, so a node
//     cut off from the group does not raise everyone's term.
//   - Check-quorum (on by default): a leader that has not heard from a
//     quorum within ElectionTicks steps down.
//   - A node that heard from a leader within ElectionTicks ignores
//     (pre-)vote requests of a higher term (thesis 4.2.3), so a partly
//     partitioned node cannot depose a healthy leader.
//   - A new leader appends a no-op entry; only entries of the leader's own
//     term commit by counting replicas (Figure 8).
//   - Quorums count voters, this node included: three nodes with one down
//     still commit.
//
// # Reads
//
// Reading the state machine of any node may return stale data. ReadIndex
// gives linearizable reads (thesis 6.4): the leader records its commit
// index, confirms with one round of heartbeats answered by a quorum that
// it still leads (concurrent reads share the round), and hands the read
// index out in Ready.ReadStates; the caller reads once it has applied up
// to it. A leader serves no read before it has committed an entry of its
// own term, and a follower forwards read requests to its leader. With
// Config.LeaseReads, LeaseRead skips the round while the leader holds a
// lease, which assumes bounded clock drift (see LeaseRead). Each request
// carries an id the caller never reuses, not even for a retry.
//
// # Leadership transfer
//
// TransferLeadership pauses proposals, brings the target's log up to date
// and sends it MsgTimeoutNow; the target campaigns at once, and its vote
// requests are exempt from the recent-leader rule above. A transfer that
// does not finish within an election timeout is abandoned.
//
// # Snapshots
//
// The application snapshots its state at an applied index, makes the
// snapshot durable and calls Compact: the log up to that index is
// dropped, but for Config.SnapshotCatchUpEntries entries kept for
// followers a little behind. The snapshot's bytes stay the driver's; the
// core knows only its SnapshotMeta. A follower that needs a compacted
// entry is sent the snapshot instead, in chunks, one at a time:
// Ready.SnapshotRequests
// names the chunk (snapshot index and offset), the driver fills in the
// bytes, the total size and the CRC32C of the whole snapshot and sends
// it. The follower hands each chunk to its driver (Ready.SnapshotChunks)
// and acknowledges it once stored with the offset it wants next, so a
// lost chunk is resent from there, a new leader with the same snapshot
// resumes where the old one stopped, and a newer snapshot taken
// meanwhile does not restart the transfer. Once the snapshot is
// whole and its checksum right, the follower's log restarts after it,
// Ready.Snapshot asks the driver to make it durable and restore it, and
// the acknowledgement leaves in AfterPersist: it does not wait for the
// application's restore, whose length made other implementations loop
// on InstallSnapshot (hashicorp/raft #212).
//
// # Configuration changes
//
// A configuration is voters and learners; learners receive entries but
// neither vote nor count towards commit, read or check-quorum quorums.
// ProposeConfChange appends an EntryConfig entry carrying one
// single-server change (add a learner, promote a learner, remove a
// member), which takes effect on each node as soon as it is appended to
// its log and is undone if that entry is cut off (thesis 4.1). One
// change is in flight at a time, and a new leader starts none before it
// commits an entry of its term (the single-server change bug). A change
// that would leave the voters the leader hears from short of a quorum is
// refused. The leader proposes a learner's promotion by itself once the
// learner is within Config.PromoteLag entries. A removed leader leads
// until its removal commits, tells the most up-to-date voter to campaign
// and steps down. A learner, or a node outside its configuration, never
// campaigns, except a node whose removal is not yet committed (thesis
// 4.2.2: it may hold the only complete log), which as leader counts a
// quorum without itself. Vote requests and a leader's messages are heard
// from any node, as thesis 4.1 has it: the sender may have been added by
// an entry this node has not received, and refusing it could leave the
// node behind forever (a leader of an older term is only told the
// current one). A candidate counts only the
// votes of its own voters, and pre-vote with the rule of thesis 4.2.3
// keeps a removed node that does not know it from disrupting a healthy
// group. Snapshots carry the configuration at their index and the
// members' addresses (SnapshotMeta.Voters, Learners and Addrs); a
// restart rebuilds it from Config.Voters and Learners, then the
// snapshot's, then the configuration entries of the log.
package raft
