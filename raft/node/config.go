package node

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Config says how to start a Node. The zero value of every optional field
// means its default.
type Config struct {
	// ID is this node's id in the group: required, non-zero, unique.
	ID uint64
	// Voters lists the voting members of the group's initial
	// configuration. Required. Membership changes since (AddLearner,
	// RemoveMember, ...) are rebuilt from the snapshot and the log on
	// restart, so Voters stays what it was at the first start.
	Voters []uint64
	// Learners lists the initial non-voting members. A node joining a
	// running group (Join) starts with the group's voters as Voters and
	// itself as the only learner.
	Learners []uint64
	// PromoteLag is how many entries behind the leader's log a learner
	// may be for the leader to promote it to voter. Default 100;
	// negative: never automatically (PromoteLearner does it by hand).
	PromoteLag int
	// Storage keeps the hard state and log. Required: use
	// NewMemoryStorage for a volatile node or a WAL for a durable one.
	Storage Storage
	// Transport carries messages to and from the other members. Required.
	Transport Transport
	// StateMachine receives committed commands in log order. Required.
	StateMachine StateMachine
	// Applied is the last index the state machine had applied before this
	// start, for state machines that persist themselves; entries up to it
	// are not handed out again. Default 0: replay the whole log.
	Applied uint64

	// TickInterval is the length of one logical tick. Default 20ms.
	TickInterval time.Duration
	// ElectionTicks is the election timeout in ticks; the real timeout is
	// randomized between it and twice it. Default 10.
	ElectionTicks int
	// HeartbeatTicks is the leader's heartbeat interval in ticks; it must
	// be below ElectionTicks. Default 1.
	HeartbeatTicks int
	// MaxInflight bounds the unacknowledged append messages to a follower.
	// Default 256.
	MaxInflight int
	// Seed seeds the randomized election timeouts. Default: derived from
	// ID, which already differs between members.
	Seed uint64
	// LeaseReads enables lease reads (Node.LeaseRead); see
	// raft.Config.LeaseReads and raft.Core.LeaseRead for the bounded
	// clock drift they assume. Set it on every member or none. Default
	// off: LeaseRead then does what ReadIndex does.
	LeaseReads bool
	// LeaseMarginTicks is how many ticks shorter than ElectionTicks the
	// leader's lease is. Default ElectionTicks/5, at least 1.
	LeaseMarginTicks int

	// Snapshots (snapshot.go) need a StateMachine that is a Snapshotter;
	// these fields mean nothing otherwise.

	// SnapshotDir is the directory snapshot files are kept in. Default:
	// none, and then Storage must be a SnapshotStore (MemoryStorage is
	// one, keeping them in memory); a node on a WAL needs a directory.
	SnapshotDir string
	// SnapshotEntries is how many applied entries since the last snapshot
	// make the node take a new one and compact its log. Default 10000;
	// negative: never by count.
	SnapshotEntries int
	// SnapshotBytes is how many bytes of applied commands since the last
	// snapshot make the node take a new one. Default 64 MiB; negative:
	// never by size.
	SnapshotBytes int
	// SnapshotCatchUpEntries is how many entries before the newest
	// snapshot the node keeps in memory, so that a follower a little
	// behind, or one that just installed an older snapshot, catches up
	// from the log (raft.Config.SnapshotCatchUpEntries). Default 1000;
	// negative: none.
	SnapshotCatchUpEntries int
	// SnapshotChunkBytes is the size of the chunks a leader sends its
	// snapshot in, one at a time per follower. Default 1 MiB; keep it
	// well under the transport's frame limit.
	SnapshotChunkBytes int

	// Logger receives the node's log. Default: discard.
	Logger *slog.Logger
}

// ErrBadConfig reports a Config that cannot start a node.
var ErrBadConfig = errors.New("node: bad config")

func (c Config) withDefaults() (Config, error) {
	switch {
	case c.ID == 0:
		return c, fmt.Errorf("%w: ID must be non-zero", ErrBadConfig)
	case len(c.Voters) == 0:
		return c, fmt.Errorf("%w: no voters", ErrBadConfig)
	case c.Storage == nil:
		return c, fmt.Errorf("%w: no storage", ErrBadConfig)
	case c.Transport == nil:
		return c, fmt.Errorf("%w: no transport", ErrBadConfig)
	case c.StateMachine == nil:
		return c, fmt.Errorf("%w: no state machine", ErrBadConfig)
	case c.TickInterval < 0:
		return c, fmt.Errorf("%w: negative tick interval", ErrBadConfig)
	}
	def := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	def(&c.SnapshotEntries, DefaultSnapshotEntries)
	def(&c.SnapshotBytes, DefaultSnapshotBytes)
	def(&c.SnapshotChunkBytes, DefaultSnapshotChunkBytes)
	def(&c.SnapshotCatchUpEntries, DefaultSnapshotCatchUpEntries)
	c.SnapshotCatchUpEntries = max(c.SnapshotCatchUpEntries, 0)
	if c.SnapshotChunkBytes < 0 {
		return c, fmt.Errorf("%w: negative snapshot chunk size", ErrBadConfig)
	}
	if c.TickInterval == 0 {
		c.TickInterval = 20 * time.Millisecond
	}
	if c.Seed == 0 {
		c.Seed = c.ID * 0x9e3779b97f4a7c15
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}
