package node

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/bifrost-go/bifrost/raft"
)

// Config says how to start a Node.
//
// The convention for every numeric field, here and in raft.Config: zero
// means the documented default; for a count or size that can sensibly be
// "none" (SnapshotEntries, raft.Config.SnapshotCatchUpEntries,
// raft.Config.PromoteLag, ...), a negative value means none or never.
type Config struct {
	// Raft configures the consensus core: ID (required, non-zero, unique
	// in the group), Voters (required: the initial configuration; changes
	// since are rebuilt from the snapshot and the log on restart, so it
	// stays what it was at the first start), Learners, timing in ticks,
	// pre-vote, check-quorum, message limits, lease reads, PromoteLag,
	// SnapshotCatchUpEntries; each field's default is raft's.
	// Raft.Applied is the last index the state machine had applied before
	// this start, for state machines that persist themselves: entries up
	// to it are not handed out again (default 0: replay the whole log).
	// The restart fields HardState, Entries and Snapshot are the node's
	// to load from Storage: leave them zero. Seed defaults to one derived
	// from ID.
	Raft raft.Config
	// Storage keeps the hard state and log. Required: NewMemoryStorage
	// for a volatile node, WALStorage for a durable one.
	Storage Storage
	// Transport carries messages to and from the other members. Required.
	Transport Transport
	// StateMachine receives committed entries in log order. Required.
	StateMachine StateMachine

	// TickInterval is the length of one logical tick, which
	// Raft.ElectionTicks and Raft.HeartbeatTicks count. Default 20ms.
	TickInterval time.Duration

	// Snapshots (snapshot.go) need a StateMachine that is a Snapshotter;
	// these fields mean nothing otherwise.

	// SnapshotDir is the directory snapshot files are kept in. Default:
	// none, and then Storage must be a SnapshotStore (MemoryStorage is
	// one, keeping them in memory); a node on a WAL needs a directory.
	SnapshotDir string
	// SnapshotFS is the file system under SnapshotDir. Default (nil):
	// the operating system's. Tests inject one that can crash.
	SnapshotFS FS
	// SnapshotEntries is how many applied entries since the last snapshot
	// make the node take a new one and compact its log. Default 10000;
	// negative: never by count.
	SnapshotEntries int
	// SnapshotBytes is how many bytes of applied commands since the last
	// snapshot make the node take a new one. Default 64 MiB; negative:
	// never by size.
	SnapshotBytes int
	// SnapshotChunkBytes is the size of the chunks a leader sends its
	// snapshot in, one at a time per follower. Default 1 MiB; it must fit
	// in one transport message (MessageLimiter).
	SnapshotChunkBytes int

	// Logger receives the node's log: role and term changes at Info,
	// failures at Warn and Error. Default: discard.
	Logger *slog.Logger
}

// Defaults of the fields of Config.
const (
	DefaultTickInterval       = 20 * time.Millisecond
	DefaultSnapshotEntries    = 10000
	DefaultSnapshotBytes      = 64 << 20
	DefaultSnapshotChunkBytes = 1 << 20
)

// ErrBadConfig reports a Config that cannot start a node.
var ErrBadConfig = errors.New("node: bad config")

// MessageLimiter is an optional Transport capability: a bound on the
// size of one message it can carry. A node on such a transport checks at
// start that its largest append (raft.Config.MaxMsgBytes) and snapshot
// chunk fit, so that nothing it sends is too large to arrive.
type MessageLimiter interface {
	// MaxMessageBytes is the largest encoded raft.Message the transport
	// delivers.
	MaxMessageBytes() int
}

func (c Config) withDefaults() (Config, error) {
	if err := c.check(); err != nil {
		return c, err
	}
	def := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	def(&c.SnapshotEntries, DefaultSnapshotEntries)
	def(&c.SnapshotBytes, DefaultSnapshotBytes)
	def(&c.SnapshotChunkBytes, DefaultSnapshotChunkBytes)
	if c.TickInterval == 0 {
		c.TickInterval = DefaultTickInterval
	}
	if c.Raft.Seed == 0 {
		c.Raft.Seed = c.Raft.ID * 0x9e3779b97f4a7c15
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, c.checkMessageSizes()
}

// check reports the first required field missing or value out of range.
func (c Config) check() error {
	switch {
	case c.Raft.ID == 0:
		return fmt.Errorf("%w: Raft.ID must be non-zero", ErrBadConfig)
	case len(c.Raft.Voters) == 0:
		return fmt.Errorf("%w: no Raft.Voters", ErrBadConfig)
	case !c.Raft.HardState.IsZero() || len(c.Raft.Entries) > 0 || !c.Raft.Snapshot.IsZero():
		return fmt.Errorf("%w: Raft.HardState, Entries and Snapshot are loaded from Storage; leave them zero", ErrBadConfig)
	case c.Storage == nil:
		return fmt.Errorf("%w: no storage", ErrBadConfig)
	case c.Transport == nil:
		return fmt.Errorf("%w: no transport", ErrBadConfig)
	case c.StateMachine == nil:
		return fmt.Errorf("%w: no state machine", ErrBadConfig)
	case c.TickInterval < 0:
		return fmt.Errorf("%w: negative tick interval", ErrBadConfig)
	case c.SnapshotChunkBytes < 0:
		return fmt.Errorf("%w: negative snapshot chunk size", ErrBadConfig)
	}
	return nil
}

// messageOverhead bounds the bytes of a raft.Message besides its entries'
// encoded sizes and its snapshot data: the header fields and the snapshot
// configuration of small groups.
const messageOverhead = 4 << 10

// checkMessageSizes checks, on a transport that bounds its messages, that
// the largest append and snapshot chunk this node sends fit.
func (c Config) checkMessageSizes() error {
	lim, ok := c.Transport.(MessageLimiter)
	if !ok {
		return nil
	}
	maxMsg := c.Raft.MaxMsgBytes
	if maxMsg == 0 {
		maxMsg = raft.DefaultMaxMsgBytes
	}
	most := lim.MaxMessageBytes()
	switch {
	case maxMsg+messageOverhead > most:
		return fmt.Errorf("%w: Raft.MaxMsgBytes %d does not fit in the transport's %d-byte messages", ErrBadConfig, maxMsg, most)
	case c.SnapshotChunkBytes+messageOverhead > most:
		return fmt.Errorf("%w: SnapshotChunkBytes %d does not fit in the transport's %d-byte messages", ErrBadConfig, c.SnapshotChunkBytes, most)
	}
	return nil
}
