package raft

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

var (
	// ErrNotLeader is returned by Propose on a node that is not the leader.
	// The caller should retry on the leader Status or Ready names.
	ErrNotLeader = errors.New("raft: not leader")
	// ErrProposalDropped reports a proposal the core refused although it
	// leads, for instance while it hands leadership over. A
	// driver also uses it for a proposal whose index was overwritten by a
	// later leader.
	ErrProposalDropped = errors.New("raft: proposal dropped")
	// ErrUnknownPeer is returned by Step for a message from or to a node
	// that is not a member of this node's configuration.
	ErrUnknownPeer = errors.New("raft: unknown peer")
	// ErrTransferring is returned by Propose while the leader hands its
	// leadership over (TransferLeadership); it wraps ErrProposalDropped.
	// Proposals are accepted again once the transfer is abandoned.
	ErrTransferring = fmt.Errorf("%w: leadership transfer in progress", ErrProposalDropped)
	// ErrProposalTooLarge is returned by Propose for a command whose
	// entry would not fit in one MsgApp (Config.MaxMsgBytes): no leader
	// could ever send it. MaxCommandBytes gives the limit.
	ErrProposalTooLarge = errors.New("raft: proposal too large")
)

// Role is the part a node currently plays in its group.
type Role uint8

const (
	// RoleFollower accepts entries from a leader and votes.
	RoleFollower Role = iota
	// RolePreCandidate asks for pre-votes without raising its term, so a
	// node that cannot win does not disrupt the group.
	RolePreCandidate
	// RoleCandidate has raised its term and asks for votes.
	RoleCandidate
	// RoleLeader replicates its log to the followers.
	RoleLeader
)

// String names the role for logs and status output.
func (r Role) String() string {
	switch r {
	case RoleFollower:
		return "follower"
	case RolePreCandidate:
		return "pre-candidate"
	case RoleCandidate:
		return "candidate"
	case RoleLeader:
		return "leader"
	}
	return fmt.Sprintf("Role(%d)", uint8(r))
}

// Config starts a Core. The zero value of every tuning field means its
// default; ID and Voters are required.
type Config struct {
	// ID is this node; required, non-zero.
	ID uint64
	// Voters lists every voting member of the initial configuration;
	// required, non-empty. A snapshot's configuration (SnapshotMeta) and
	// the EntryConfig entries of the log replace it on restart.
	Voters []uint64
	// Learners lists the non-voting members of the initial
	// configuration: they receive entries but do not vote or count
	// towards any quorum. ID must be in Voters or Learners: a node that
	// joins a running group starts as a learner of the group's voters.
	Learners []uint64
	// PromoteLag is how close, in entries, a learner's log must come to
	// the leader's last index for the leader to propose its promotion to
	// voter. Default 100; negative: never promote automatically.
	PromoteLag int
	// ElectionTicks is how many ticks a follower waits without hearing from
	// a leader before campaigning; the real timeout is randomized in
	// [ElectionTicks, 2*ElectionTicks) so that candidates rarely collide.
	// It is also the check-quorum period of a leader. Default 10.
	ElectionTicks int
	// HeartbeatTicks is how many ticks pass between a leader's heartbeats.
	// Default 1. Must be less than ElectionTicks.
	HeartbeatTicks int
	// DisablePreVote turns pre-vote off; it is on by default.
	DisablePreVote bool
	// DisableCheckQuorum turns check-quorum off; it is on by default. With
	// it on, a leader that has not heard from a quorum within ElectionTicks
	// steps down, so clients stop talking to a leader that cannot commit.
	DisableCheckQuorum bool
	// MaxMsgEntries caps the entries in one MsgApp. Default 512.
	MaxMsgEntries int
	// MaxMsgBytes caps the entry bytes in one MsgApp, counted as
	// Entry.EncodedSize (data plus a small fixed overhead). It bounds a
	// command too: Propose refuses one whose entry is larger
	// (ErrProposalTooLarge; MaxCommandBytes gives the limit), so that
	// every message fits what the transport carries. Default 1 MiB.
	MaxMsgBytes int
	// MaxInflight caps the unacknowledged MsgApp per follower while
	// pipelining. Default 256.
	MaxInflight int
	// MaxWriteBytes caps the entry bytes one of a leader's Readys hands
	// out to be written (at least one entry goes), so that its write
	// takes bounded time however large the proposals waiting: the rest
	// goes in the next Readys, and the leader replicates only what it
	// handed out. Default 4 MiB.
	MaxWriteBytes int
	// WriteStallTicks is how long a leader's write may stay in flight
	// (from Ready to Advance) before the leader steps down: a leader
	// whose disk hangs goes on heartbeating from its driver, so without
	// this the group would keep a leader that commits nothing. Default
	// 3*ElectionTicks; negative: never. Keep it above the time a write of
	// MaxWriteBytes takes.
	WriteStallTicks int
	// SnapshotCatchUpEntries is how many entries before its newest
	// snapshot Compact keeps in memory, so that a follower a little
	// behind gets entries rather than the whole snapshot, and one that
	// installed a snapshot taken before the newest can go on from the
	// log. Default 1000; negative: keep none.
	SnapshotCatchUpEntries int
	// Seed seeds the randomized election timeouts (with ID, so nodes of one
	// group differ): the same seed gives the same behaviour.
	Seed uint64
	// LeaseReads lets LeaseRead serve reads on the leader without a
	// heartbeat round while the leader's lease holds; see LeaseRead for
	// the clock assumption this rests on. It requires check-quorum. With
	// it on, a node also refuses vote requests for its first ElectionTicks
	// ticks after New, as if it had just heard from a leader, so that a
	// restarted voter cannot help elect a new leader while the old one's
	// lease still counts on it. Set it on every member or none. Off by
	// default.
	LeaseReads bool
	// LeaseMarginTicks is how much shorter than ElectionTicks the leader's
	// lease is: a leader that heard from a quorum within the last
	// ElectionTicks-LeaseMarginTicks ticks (counted from when it sent the
	// heartbeat answered) holds the lease. It absorbs clock drift and tick
	// misalignment between members, so it must be at least 1 and below
	// ElectionTicks. Default ElectionTicks/5, at least 1.
	LeaseMarginTicks int

	// HardState is the persisted term, vote and commit index (restart).
	HardState HardState
	// Snapshot names the snapshot the node restarts from, which the
	// application has restored (restart); zero for none.
	Snapshot SnapshotMeta
	// Entries is the persisted log, contiguous from Snapshot.Index+1
	// (restart). The core keeps the slice; the caller must not modify it
	// afterwards.
	Entries []Entry
	// Applied is the index the application has applied up to (restart);
	// Ready never hands out these entries again. It counts as at least
	// Snapshot.Index.
	Applied uint64
}

// Defaults for the zero values of Config.
const (
	DefaultElectionTicks  = 10
	DefaultHeartbeatTicks = 1
	DefaultMaxMsgEntries  = 512
	DefaultMaxMsgBytes    = 1 << 20
	DefaultMaxInflight    = 256
	DefaultPromoteLag     = 100
	DefaultMaxWriteBytes  = 4 << 20
	// DefaultSnapshotCatchUpEntries is the default of
	// Config.SnapshotCatchUpEntries.
	DefaultSnapshotCatchUpEntries = 1000
)

// withDefaults fills the zero tuning fields of cfg.
func (cfg Config) withDefaults() Config {
	def := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	def(&cfg.ElectionTicks, DefaultElectionTicks)
	def(&cfg.HeartbeatTicks, DefaultHeartbeatTicks)
	def(&cfg.MaxMsgEntries, DefaultMaxMsgEntries)
	def(&cfg.MaxMsgBytes, DefaultMaxMsgBytes)
	def(&cfg.MaxInflight, DefaultMaxInflight)
	def(&cfg.LeaseMarginTicks, max(1, cfg.ElectionTicks/5))
	def(&cfg.PromoteLag, DefaultPromoteLag)
	def(&cfg.SnapshotCatchUpEntries, DefaultSnapshotCatchUpEntries)
	def(&cfg.MaxWriteBytes, DefaultMaxWriteBytes)
	def(&cfg.WriteStallTicks, 3*cfg.ElectionTicks)
	cfg.SnapshotCatchUpEntries = max(cfg.SnapshotCatchUpEntries, 0)
	return cfg
}

// validate reports the first thing wrong with a defaulted cfg.
func (cfg *Config) validate() error {
	switch {
	case cfg.ID == 0:
		return errors.New("raft: config: ID must be non-zero")
	case len(cfg.Voters) == 0:
		return errors.New("raft: config: no voters")
	case !slices.Contains(cfg.Voters, cfg.ID) && !slices.Contains(cfg.Learners, cfg.ID):
		return fmt.Errorf("raft: config: voters %v and learners %v do not include ID %d", cfg.Voters, cfg.Learners, cfg.ID)
	case slices.Contains(cfg.Voters, 0) || slices.Contains(cfg.Learners, 0):
		return errors.New("raft: config: voter id 0 is reserved for none")
	case cfg.ElectionTicks < 1 || cfg.HeartbeatTicks < 1:
		return errors.New("raft: config: tick counts must be positive")
	case cfg.HeartbeatTicks >= cfg.ElectionTicks:
		return fmt.Errorf("raft: config: HeartbeatTicks %d must be less than ElectionTicks %d", cfg.HeartbeatTicks, cfg.ElectionTicks)
	case cfg.MaxMsgEntries < 1 || cfg.MaxMsgBytes < 1 || cfg.MaxInflight < 1 || cfg.MaxWriteBytes < 1:
		return errors.New("raft: config: message limits must be positive")
	case cfg.LeaseMarginTicks < 1 || cfg.LeaseMarginTicks >= cfg.ElectionTicks:
		return fmt.Errorf("raft: config: LeaseMarginTicks %d must be in [1, ElectionTicks %d)", cfg.LeaseMarginTicks, cfg.ElectionTicks)
	case cfg.LeaseReads && cfg.DisableCheckQuorum:
		return errors.New("raft: config: LeaseReads requires check-quorum")
	}
	all := slices.Concat(cfg.Voters, cfg.Learners)
	sorted := slices.Sorted(slices.Values(all))
	if len(slices.Compact(sorted)) != len(all) {
		return fmt.Errorf("raft: config: duplicate member in voters %v and learners %v", cfg.Voters, cfg.Learners)
	}
	return nil
}

// Core is one node's consensus state machine: messages and ticks go in,
// Ready batches of what to persist, send and apply come out. It does no
// I/O, reads no clock and starts no goroutine, so a test drives it
// deterministically. It is not safe for concurrent use.
type Core struct {
	cfg    Config   // defaulted tuning; restart fields are consumed by New
	id     uint64   // this node
	voters []uint64 // current voters, sorted, so every walk over the group is deterministic
	// confs are the configurations of the log, oldest first: the base
	// (snapshot or initial) and one per EntryConfig entry after it. The
	// last one is current (configuration.go).
	confs []confPoint
	rng   *rand.Rand

	term uint64 // current term
	vote uint64 // whom this node voted for in term; 0 for none
	lead uint64 // the leader of term as far as known; 0 for none
	role Role
	log  raftLog

	ticks uint64 // Tick calls so far: the logical clock
	// electionElapsed counts ticks since the last word from a leader (a
	// follower) or since the campaign started (a candidate).
	electionElapsed   int
	heartbeatElapsed  int // leader: ticks since the last heartbeat
	randomizedTimeout int // this round's election timeout, in ticks

	votes    map[uint64]bool      // (pre-)candidate: answers of this round, by voter
	progress map[uint64]*progress // leader: replication state, by follower
	matchBuf []uint64             // leader: scratch for quorumValue

	// Reads (read.go). reads and readsHeld belong to a leader's term.
	reads      []readRequest // leader: accepted, waiting for their heartbeat round
	readsHeld  []readRequest // leader: waiting for the first commit of the term
	round      uint64        // leader: the last heartbeat round sent this term
	roundTicks []roundTick   // leader: when recent rounds were sent, for the lease
	readStates []ReadState   // reads served, for the next Ready

	// Leadership transfer (transfer.go).
	transferee      uint64 // leader: the node leadership is handed to; 0 for none
	transferElapsed int    // leader: ticks since the transfer started
	leaseBroken     bool   // leader: sent MsgTimeoutNow this term, so no lease

	snaps snapshots // snapshot.go

	msgs         []Message // to send at once
	afterPersist []Message // to send once this Ready is durable
	prevHS       HardState // the hard state last reported durable
	// writing is true from Ready to Advance, while the driver writes;
	// writeTicks counts the ticks meanwhile (writeStalled).
	writing    bool
	writeTicks int
	prevLead   uint64 // soft state last handed out in a Ready
	prevRole   Role
}

// New returns a Core for cfg, restarted from cfg.HardState, cfg.Entries
// and cfg.Applied when they are set. It returns an error for a bad config
// or inconsistent restart state rather than panicking later.
func New(cfg Config) (*Core, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	log, err := restoreLog(cfg.Snapshot, cfg.Entries, cfg.HardState.Commit, cfg.Applied)
	if err != nil {
		return nil, err
	}
	c := &Core{
		cfg:    cfg,
		id:     cfg.ID,
		rng:    rand.New(rand.NewPCG(cfg.Seed, cfg.ID)),
		log:    log,
		prevHS: cfg.HardState,
	}
	c.cfg.Entries, c.cfg.HardState = nil, HardState{}
	c.term, c.vote = restoreTerm(cfg.HardState, log.lastTerm())
	base := newConfiguration(cfg.Voters, cfg.Learners, nil)
	if len(cfg.Snapshot.Voters) > 0 {
		base = newConfiguration(cfg.Snapshot.Voters, cfg.Snapshot.Learners, cfg.Snapshot.Addrs)
	}
	c.resetConf(cfg.Snapshot.Index, cfg.Snapshot.Term, base)
	c.becomeFollower(c.term, 0)
	return c, nil
}

// restoreTerm returns the term and vote a node restarts with. Entries
// persisted without their term (a crash between the two writes) mean the
// node reached that term; its vote there was never persisted, so it never
// answered with it: no vote.
func restoreTerm(hs HardState, lastTerm uint64) (term, vote uint64) {
	if lastTerm > hs.Term {
		return lastTerm, 0
	}
	return hs.Term, hs.Vote
}

// Tick advances the logical clock by one tick: followers and candidates
// count towards an election, leaders towards heartbeats and check-quorum.
// A node that is not a voter (a learner, or removed) never campaigns,
// except as promotable allows.
func (c *Core) Tick() {
	c.ticks++
	if c.writing {
		c.writeTicks++
	}
	if c.role == RoleLeader {
		c.tickLeader()
		return
	}
	c.electionElapsed++
	if c.electionElapsed >= c.randomizedTimeout && c.promotable() {
		c.campaign(!c.cfg.DisablePreVote)
	}
}

// Step hands the core a message from a peer. Messages of a stale term or
// that make no sense in the current role are ignored (some are answered so
// the sender learns the current term). A message to another node, or
// one from a node outside the configuration that this node has no reason
// to hear (see accepts), is an error wrapping ErrUnknownPeer.
func (c *Core) Step(m Message) error {
	if m.To != c.id || m.From == c.id || !c.accepts(m) {
		return fmt.Errorf("%w: message %v from %d to %d at node %d", ErrUnknownPeer, m.Type, m.From, m.To, c.id)
	}
	if !c.stepTerm(m) {
		return nil
	}
	switch m.Type {
	case MsgPreVote:
		c.handlePreVote(m)
	case MsgVote:
		c.handleVote(m)
	case MsgPreVoteResp, MsgVoteResp:
		c.handleVoteResp(m)
	case MsgApp:
		c.handleAppend(m)
	case MsgAppResp:
		c.handleAppendResp(m)
	case MsgHeartbeat:
		c.handleHeartbeat(m)
	case MsgHeartbeatResp:
		c.handleHeartbeatResp(m)
	case MsgTimeoutNow:
		c.handleTimeoutNow(m)
	case MsgReadIndex:
		c.handleReadIndex(m)
	case MsgReadIndexResp:
		c.handleReadIndexResp(m)
	case MsgSnap:
		c.handleSnap(m)
	case MsgSnapResp:
		c.handleSnapResp(m)
	}
	return nil
}

// Propose appends a command to the leader's log and returns its index and
// term. The outcome shows in Ready.Committed: the entry at index with the
// same term is this command; one with another term means it was dropped.
// The core keeps data; the caller must not modify it afterwards. A
// command longer than MaxCommandBytes fails with ErrProposalTooLarge on
// any node, leader or not.
func (c *Core) Propose(data []byte) (index, term uint64, err error) {
	if limit := maxCommandBytes(c.cfg.MaxMsgBytes); len(data) > limit {
		return 0, 0, fmt.Errorf("%w: %d bytes, at most %d", ErrProposalTooLarge, len(data), limit)
	}
	if c.role != RoleLeader {
		return 0, 0, ErrNotLeader
	}
	if c.transferee != 0 {
		return 0, 0, ErrTransferring
	}
	e := Entry{Index: c.log.lastIndex() + 1, Term: c.term, Type: EntryNormal, Data: data}
	c.log.append(e)
	return e.Index, e.Term, nil
}

// MaxCommandBytes returns the longest command Propose accepts under cfg:
// cfg.MaxMsgBytes (or its default) less the fixed overhead of an entry,
// since every entry must fit in one MsgApp.
func MaxCommandBytes(cfg Config) int { return maxCommandBytes(cfg.withDefaults().MaxMsgBytes) }

func maxCommandBytes(maxMsgBytes int) int {
	var empty Entry
	return max(0, maxMsgBytes-empty.EncodedSize())
}

// HasReady reports whether Ready has anything to persist, send or apply.
// New entries are sent from here and from Ready, not from Propose, so the
// proposals made between two Ready calls travel as one batch.
func (c *Core) HasReady() bool {
	c.flush()
	return len(c.msgs) > 0 || len(c.afterPersist) > 0 || len(c.readStates) > 0 ||
		c.hardState() != c.prevHS || c.log.hasUnstable() || c.log.hasNextCommitted() ||
		c.lead != c.prevLead || c.role != c.prevRole || c.snapshotReady()
}

// Ready returns what the caller must do next: persist HardState and
// Entries, send Messages (at once) and AfterPersist (once durable), apply
// Committed. The caller then calls Advance with it before the next Ready.
// The slices are the caller's to read; the core never writes to them again.
func (c *Core) Ready() Ready {
	// Only a leader's write is bounded: a follower's or candidate's
	// acknowledgements and vote requests speak for its whole log.
	limit := math.MaxInt
	if c.role == RoleLeader {
		limit = c.cfg.MaxWriteBytes
	}
	ents := c.log.unstable(limit)
	if n := len(ents); n > 0 {
		c.log.handed = max(c.log.handed, ents[n-1].Index)
	}
	c.flush() // a leader's appends of what this Ready hands out
	c.writing = true
	hs := c.hardState()
	rd := Ready{
		HardState:        hs,
		HardStateChanged: hs != c.prevHS,
		Entries:          ents,
		Messages:         c.msgs,
		AfterPersist:     c.afterPersist,
		Committed:        c.log.nextCommitted(),
		ReadStates:       c.readStates,
		Lead:             c.lead,
		Role:             c.role,
		Term:             c.term,
	}
	c.readySnapshot(&rd)
	rd.AfterPersist, c.afterPersist = c.splitAcks(rd.AfterPersist)
	c.msgs, c.readStates = nil, nil
	c.prevLead, c.prevRole = c.lead, c.role
	if n := len(rd.Committed); n > 0 {
		c.log.applying = rd.Committed[n-1].Index
	}
	return rd
}

// unhanded reports whether m is an append of entries no Ready handed out.
func (c *Core) unhanded(m Message) bool {
	n := len(m.Entries)
	return m.Type == MsgApp && n > 0 && m.Entries[n-1].Index > c.log.handed
}

// splitAcks parts msgs into those this Ready's write makes true and
// those that speak for entries it does not hand out yet (append
// acknowledgements, vote requests naming the last index), which wait for
// a later Ready. One that speaks for entries the log no longer holds is
// dropped.
func (c *Core) splitAcks(msgs []Message) (now, later []Message) {
	for _, m := range msgs {
		logClaim := m.Type == MsgAppResp && !m.Reject || m.Type == MsgVote || m.Type == MsgPreVote
		switch {
		case logClaim && m.Index > c.log.lastIndex():
			continue // the entries it speaks for were replaced since: never true
		case logClaim && m.Index > c.log.handed:
			later = append(later, m)
		default:
			now = append(now, m)
		}
	}
	return now, later
}

// TakeMessages returns the messages that may leave before persisting
// (those of Ready.Messages) queued since the last Ready, for a driver
// whose write is in flight: heartbeats and their answers, and a leader's
// appends of entries a Ready has handed out, go out while the disk works
// instead of after it. Appends of newer entries wait for the next Ready,
// so that entries never leave before the Ready that writes them and new
// proposals gather into one batch.
func (c *Core) TakeMessages() []Message {
	if !slices.ContainsFunc(c.msgs, c.unhanded) {
		msgs := c.msgs // the common case: all of them go, no copy
		c.msgs = nil
		return msgs
	}
	var out []Message
	kept := c.msgs[:0]
	for _, m := range c.msgs {
		if c.unhanded(m) {
			kept = append(kept, m)
			continue
		}
		out = append(out, m)
	}
	clear(c.msgs[len(kept):])
	c.msgs = kept
	return out
}

// Advance tells the core that rd's HardState and Entries are durable, its
// messages sent and its committed entries applied. A leader's own entries
// count towards its quorum only from here.
func (c *Core) Advance(rd Ready) {
	c.writing, c.writeTicks = false, 0
	if rd.HardStateChanged {
		c.prevHS = rd.HardState
	}
	c.log.stableTo(rd.Entries)
	c.advanceSnapshot(rd)
	if n := len(rd.Committed); n > 0 {
		c.log.appliedTo(rd.Committed[n-1].Index)
	}
	if c.role == RoleLeader {
		c.maybeCommit()
	}
}

// Status reports the node's current view, for observers and tests.
func (c *Core) Status() Status {
	return Status{
		ID: c.id, Term: c.term, Vote: c.vote, Lead: c.lead,
		Commit: c.log.committed, Applied: c.log.applied,
		LastIndex: c.log.lastIndex(), Role: c.role, Transferee: c.transferee,
		Snapshot: c.newest().Index,
	}
}

// Ready is one batch of work for the caller; see Core.Ready.
type Ready struct {
	// HardState is the state to persist when HardStateChanged.
	HardState        HardState
	HardStateChanged bool
	// Entries are to be persisted before Advance. Entries[0].Index may be
	// at or below the last persisted index: replace that suffix.
	Entries []Entry
	// Messages may be sent at once, before persisting: a leader's MsgApp
	// and MsgHeartbeat (its own entries count towards quorum only after
	// Advance reports them durable) and heartbeat answers.
	Messages []Message
	// AfterPersist must be sent only once HardState and Entries are
	// durable: every message but a leader's appends and heartbeats, such
	// as vote replies, append replies and a candidate's vote requests.
	AfterPersist []Message
	// Committed are to be applied in order once Entries are durable. No
	// entry is handed out twice and none is skipped.
	Committed []Entry
	// ReadStates are the outcomes of ReadIndex and LeaseRead requests,
	// of this node's own or answered by the leader for it: once this
	// node has applied up to a ReadState's Index, reading its state
	// machine is linearizable for that request. Index 0 means the read
	// was refused (leadership was lost before it was confirmed).
	ReadStates []ReadState
	// Snapshot, when not zero, names a snapshot received whole from the
	// leader, whose bytes came in SnapshotChunks of this and earlier
	// Readies. It must be durable before HardState and Entries (the log
	// now continues after it, and HardState.Commit may count on it), and
	// the application restores it before applying Committed. Its
	// acknowledgement is in AfterPersist: the leader learns of it as
	// soon as it is durable, however long the restore takes.
	Snapshot SnapshotMeta
	// SnapshotChunks are pieces of a snapshot arriving from the leader,
	// to be stored before AfterPersist is sent; see SnapshotChunk.
	SnapshotChunks []SnapshotChunk
	// SnapshotRequests are MsgSnap for the driver to complete from its
	// snapshot at their Index and send at once: SnapData is the chunk
	// from SnapOffset on, SnapTotal and SnapChecksum (SnapshotChecksum)
	// describe the whole snapshot, SnapDone marks the last chunk. A
	// transfer goes on with the snapshot it started with after a newer
	// one is taken, so the driver keeps, per follower, the snapshot it
	// last sent it.
	SnapshotRequests []Message
	// Lead, Role and Term are the soft state, for status and observers.
	Lead uint64
	Role Role
	Term uint64
}

// Status is a snapshot of a node's view of its group.
type Status struct {
	ID, Term, Vote, Lead, Commit, Applied, LastIndex uint64
	Role                                             Role
	// Transferee is, on a leader handing its leadership over, the node it
	// hands it to; 0 otherwise.
	Transferee uint64
	// Snapshot is the last index of the node's newest snapshot, 0 for
	// none. The log in memory starts at most Config.SnapshotCatchUpEntries
	// entries before it.
	Snapshot uint64
}

// hardState is the state that must be durable before the node speaks.
func (c *Core) hardState() HardState {
	// The commit index persisted never passes the entries written with
	// it: a Ready may hand out only part of the log (MaxWriteBytes).
	return HardState{Term: c.term, Vote: c.vote, Commit: min(c.log.committed, c.log.handed)}
}

// send queues m from this node. A leader's appends and heartbeats may go
// before its state is durable, and so may a heartbeat's answer: it
// promises nothing about this node's vote or log, only that it heard the
// leader, and holding it back while a large write runs would have the
// leader lose its quorum (check-quorum) and followers their leader.
// Everything else waits for persistence, because it promises something
// about this node's term, vote or log.
//
// A leader's own term must be durable before it speaks as leader,
// though. A candidate persists it before asking for votes, so only a
// single voter, which wins at once, leads before: should it crash then,
// it forgets the term and its vote, and another node may lead the same
// term (one that its lost configuration entry still counted as a
// voter). Two leaders' entries of one term would break log matching on
// any node that heard both.
func (c *Core) send(m Message) {
	m.From = c.id
	if m.Type == MsgHeartbeatResp || c.role == RoleLeader && (m.Type == MsgApp || m.Type == MsgHeartbeat) && c.prevHS.Term == c.term {
		c.msgs = append(c.msgs, m)
		return
	}
	c.afterPersist = append(c.afterPersist, m)
}

// dropStale forgets queued replies of a term this node has left. Such a
// reply may promise what is no longer true: an append acknowledgement for
// entries that a newer leader's MsgApp has since replaced would tell the
// old leader they are durable here when the next Ready persists the
// replacement instead.
func (c *Core) dropStale() {
	c.afterPersist = slices.DeleteFunc(c.afterPersist, c.Stale)
}

// Stale reports whether m, taken from a Ready, speaks for a term this node
// has since left. A driver that keeps stepping messages while a Ready's
// write is in flight must drop the Ready's AfterPersist messages that are
// stale by the time the write is durable, for the reason dropStale gives.
func (c *Core) Stale(m Message) bool { return m.Term < c.term }

// accepts reports whether m comes from a node this one listens to.
//
// Requests that only a candidate or a leader sends are heard from any
// node (thesis 4.1: a server processes them without consulting its
// configuration). The sender may be a member this node has not heard of
// yet, added or promoted by an entry that has not reached it, or a node
// whose removal is not committed; refusing it could leave the group
// without a leader or this node behind forever. Safety never rested on
// the filter: terms, the up-to-date check and the one vote per term
// make a leader, and a candidate counts only the votes of its own
// voters (tally). A removed node that does not know it is removed
// disrupts no healthy group either: pre-vote and the rule of
// stepHigherTerm (thesis 4.2.3) keep its campaigns from raising terms.
// A leader of an older term is heard too, if only to be told this term
// (answerStale): a node whose stale configuration lacks the leader, and
// whose campaigns raised its term (pre-vote off), has no other way back,
// since the lease keeps the leader's followers from adopting its term.
// Everything else counts only from members, or from the leader this
// node follows.
func (c *Core) accepts(m Message) bool {
	switch m.Type {
	case MsgPreVote, MsgVote, MsgApp, MsgHeartbeat, MsgSnap:
		return true
	case MsgPreVoteResp, MsgVoteResp:
		return c.isVoter(m.From)
	}
	return c.isMember(m.From) || m.From == c.lead && m.Term == c.term
}

// quorum is the number of voters, this node included if it votes, that
// make a majority.
func (c *Core) quorum() int { return len(c.voters)/2 + 1 }

// peers calls f for every voter but this node, in id order.
func (c *Core) peers(f func(id uint64)) {
	for _, id := range c.voters {
		if id != c.id {
			f(id)
		}
	}
}
