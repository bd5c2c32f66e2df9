// Package node runs a raft group member for real: it connects the pure
// consensus core of package raft to a clock, a Storage and a Transport.
//
// Each Node owns one driver goroutine. The goroutine is the only code that
// touches the core, so the core needs no locks; everything else talks to
// it through channels. One turn of the driver:
//
//  1. take one input: a tick of its own ticker, a message from the
//     transport, or a proposal (and every other message or proposal
//     already waiting, so a burst becomes one batch);
//  2. ask the core for a Ready and send the messages that may leave at
//     once: a leader's appends go out while its own disk write runs, and
//     its entries count toward the quorum only after that write;
//  3. save the hard state and entries, which returns only once they are
//     durable; concurrent proposals therefore share one fsync (group
//     commit at the driver) and a WAL shares fsyncs among its callers too;
//  4. send the messages that needed that durability: vote and append
//     replies, a candidate's vote requests;
//  5. apply committed entries in order and answer the proposals they
//     settle; tell the core the Ready is done.
//
// Propose returns the command's log index and the state machine's result
// once the command is applied on the proposing node. A proposal whose
// index ends up holding another leader's entry fails with
// raft.ErrProposalDropped; one whose context ends first has an unknown
// outcome, as with any RPC.
//
// Transports: RPCTransport sends messages over package rpc, and many
// groups can share one rpc.Server under different service names.
package node
