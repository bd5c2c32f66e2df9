// Package bifrost is a library for building distributed systems in Go with
// nothing but the standard library. It re-creates the Rust framework of the
// same name: a fast multiplexed RPC, a raft implementation with a
// state-machine framework, client membership with failure detection,
// weighted consistent hashing that follows membership, and context-based
// bindings.
//
// The parts live in their own packages, each usable alone. A package
// imports only packages listed before it, so the list reads from the
// bottom of the stack up:
//
//   - [github.com/bifrost-go/bifrost/bind]: values bound to a
//     context.Context for a scope, with a default outside it. The Rust
//     original binds to a thread; Go has none, so bindings ride on the
//     context and follow a request across goroutines.
//
//   - [github.com/bifrost-go/bifrost/rpc]: many services on one port,
//     many concurrent calls on one connection, typed methods through
//     generics with no generated code, deadlines and cancellation carried
//     on the wire, and a client pool keyed by address.
//
//   - [github.com/bifrost-go/bifrost/raft]: the raft consensus core, a pure
//     state machine that takes messages and ticks and says what to
//     persist, send and apply. It reads no clock and does no I/O, which is
//     what lets [github.com/bifrost-go/bifrost/raft/rafttest] run
//     thousands of seeded fault schedules a second.
//
//   - [github.com/bifrost-go/bifrost/raft/wal]: the durable log, with
//     checksummed records, group commit and torn-tail recovery.
//
//   - [github.com/bifrost-go/bifrost/raft/node]: a raft group member for
//     real: one driver goroutine joining the core to a clock, storage and
//     a transport on package rpc through the core's own Ready protocol
//     (raft.Driver); proposals, linearizable, lease and follower reads,
//     leadership transfer, snapshots and configuration changes.
//
//   - [github.com/bifrost-go/bifrost/sm]: replicated state machines on a
//     raft group: typed commands, queries and subscriptions declared
//     once for server and client, exactly-once client sessions, events
//     delivered in order across leader changes; Value, Map and Number
//     built in.
//
//   - [github.com/bifrost-go/bifrost/membership]: servers register
//     with a group of their choosing and heartbeat to the raft leader,
//     which decides online and offline through the log, so every replica
//     agrees and a new leader forgets nothing; events of every change as
//     sm subscriptions.
//
//   - [github.com/bifrost-go/bifrost/chash]: the weighted
//     consistent-hashing ring, a pure value, and ConsistentHashing, the
//     ring of a membership group kept current by the group's events, with
//     watches of the hash ranges each server gains and loses.
//
// A Node wires the parts onto one RPC server from one Config composed of
// their own configs: a raft group on a WAL (or memory), the sm host with
// the built-in KV map, membership and the application's machines, the
// group's sm service and membership's heartbeats; Close unwinds them in
// reverse. The parts stay usable one by one.
//
// cmd/bifrost runs the demo (`make demo`) and a node with its HTTP API
// (`bifrost node`).
package bifrost
