package node

import (
	"errors"
	"fmt"

	"github.com/bifrost-go/bifrost/raft"
)

// Snapshotter is a StateMachine that can hand out and take back its whole
// state. A node whose state machine is one takes snapshots by itself
// (Config.SnapshotEntries, Config.SnapshotBytes), compacts its log into
// them, sends them to followers that fell behind the compacted log, and
// restarts from its newest snapshot plus the log after it.
type Snapshotter interface {
	// Snapshot returns the state as of the last command applied. It is
	// called on the driver goroutine, between two calls to Apply.
	Snapshot() ([]byte, error)
	// Restore replaces the state with a snapshot's: the state as of
	// meta.Index, the entry of term meta.Term. It is called on the driver
	// goroutine, when the node starts from a snapshot and when it
	// installs one from its leader; Apply goes on after it, at
	// meta.Index+1. An error stops the node.
	Restore(meta raft.SnapshotMeta, data []byte) error
}

// heldSnapshot is a snapshot kept for a transfer.
type heldSnapshot struct {
	meta raft.SnapshotMeta
	data []byte
	sum  uint32
}

// maxRecvPrealloc bounds the buffer allocated up front for a snapshot
// arriving from the leader.
const maxRecvPrealloc = 256 << 20

// ErrSnapshotted fails a proposal whose index a snapshot received from the
// leader covers: it may or may not have committed.
var ErrSnapshotted = fmt.Errorf("%w: proposal covered by a snapshot from the leader", ErrOutcomeUnknown)

// snapshots is the driver's side of snapshots. Owned by the driver
// goroutine.
type snapshots struct {
	store SnapshotStore // nil: this node keeps no snapshots
	sm    Snapshotter   // nil: the state machine cannot snapshot
	meta  raft.SnapshotMeta
	data  []byte // the newest snapshot, for followers that need it
	sum   uint32 // its checksum
	// sending holds, by follower, the snapshot last sent to it: a
	// transfer goes on with the snapshot it started with even after a
	// newer one is taken. At most one snapshot per follower stays alive.
	sending map[uint64]heldSnapshot
	recv    []byte // a snapshot arriving from the leader
	recvSum uint32 // its checksum
	// saving delivers the outcome of the snapshot this node took and is
	// writing in the background; nil when none is.
	saving chan savedSnapshot
	// held is a snapshot written whose index the core has not recorded
	// as applied yet (the entries were applied early, during a write):
	// the log is compacted into it once the core has (compactHeld).
	held *savedSnapshot
	// appliedTerm is the term of the last entry applied; entries and
	// bytes count the entries and command bytes applied since the newest
	// snapshot.
	appliedTerm    uint64
	entries, bytes int
}

// openSnapshots finds the node's snapshot store, loads the newest
// snapshot, restores it into the state machine unless cfg.Applied says
// the state machine already holds it, and returns the log entries that
// follow it. It fails if the log and the snapshot leave a gap.
func openSnapshots(cfg Config, entries []raft.Entry) (*snapshots, []raft.Entry, error) {
	s := &snapshots{}
	s.sm, _ = cfg.StateMachine.(Snapshotter)
	store, err := snapshotStore(cfg)
	if err != nil {
		return nil, nil, err
	}
	s.store = store
	if store != nil {
		if s.meta, s.data, err = store.LoadSnapshot(); err != nil {
			return nil, nil, err
		}
		s.sum = raft.SnapshotChecksum(s.data)
	}
	var compacted uint64
	if c, ok := cfg.Storage.(Compacter); ok {
		compacted = c.Compacted()
	}
	if entries, err = s.logAfter(entries, compacted); err != nil {
		return nil, nil, err
	}
	s.appliedTerm = s.meta.Term
	for _, e := range entries {
		if e.Index == cfg.Raft.Applied {
			s.appliedTerm = e.Term
		}
	}
	if s.meta.Index > cfg.Raft.Applied {
		if s.sm == nil {
			return nil, nil, fmt.Errorf("%w: a snapshot to restore, but the state machine is no Snapshotter", ErrBadConfig)
		}
		if err := s.sm.Restore(s.meta, s.data); err != nil {
			return nil, nil, fmt.Errorf("node: restore snapshot %d: %w", s.meta.Index, err)
		}
	}
	return s, entries, nil
}

// snapshotStore returns where cfg keeps snapshots: SnapshotDir, or else
// Storage if it is a SnapshotStore; nil when there is nowhere, which is
// an error only for a state machine that can snapshot.
func snapshotStore(cfg Config) (SnapshotStore, error) {
	if cfg.SnapshotDir != "" {
		return newFileSnapshotStore(cfg.SnapshotFS, cfg.SnapshotDir, cfg.Logger)
	}
	if st, ok := cfg.Storage.(SnapshotStore); ok {
		return st, nil
	}
	if _, ok := cfg.StateMachine.(Snapshotter); ok {
		return nil, fmt.Errorf("%w: a Snapshotter needs SnapshotDir or a Storage that is a SnapshotStore", ErrBadConfig)
	}
	return nil, nil
}

// logAfter returns the entries after the snapshot. Entries it covers are
// dropped (storage is compacted after the snapshot is saved, so a crash
// may leave them). Entries that cannot follow the snapshot belong to
// another history, one this node had before it installed the snapshot
// from its leader: they go too. That shows as an entry at the snapshot's
// index with another term, or a next entry of a lower term (terms never
// fall along a log).
func (s *snapshots) logAfter(entries []raft.Entry, compacted uint64) ([]raft.Entry, error) {
	i := 0
	for i < len(entries) && entries[i].Index <= s.meta.Index {
		if entries[i].Index == s.meta.Index && entries[i].Term != s.meta.Term {
			return nil, nil
		}
		i++
	}
	entries = entries[i:]
	if len(entries) > 0 && entries[0].Term < s.meta.Term {
		return nil, nil
	}
	first := max(s.meta.Index, compacted) + 1
	if len(entries) > 0 {
		first = entries[0].Index
	}
	if first != s.meta.Index+1 {
		return nil, fmt.Errorf("node: log starts at %d but the snapshot covers only up to %d", first, s.meta.Index)
	}
	return entries, nil
}

// sendSnapshot completes the leader's MsgSnap requests with chunks of the
// snapshot each names, the newest or the one its transfer started with,
// and sends them.
func (n *Node) sendSnapshot(reqs []raft.Message) {
	var out []raft.Message
	for _, m := range reqs {
		h, ok := n.snaps.forTransfer(m.To, m.Index)
		total := uint64(len(h.data))
		if !ok || m.SnapOffset > total {
			n.log.Error("snapshot request dropped", "to", m.To, "index", m.Index, "offset", m.SnapOffset)
			continue
		}
		end := min(m.SnapOffset+uint64(n.cfg.SnapshotChunkBytes), total)
		m.SnapData = h.data[m.SnapOffset:end]
		m.SnapTotal, m.SnapChecksum, m.SnapDone = total, h.sum, end == total
		out = append(out, m)
	}
	if len(out) > 0 {
		n.cfg.Transport.Send(out)
	}
}

// forTransfer returns the snapshot at index for a transfer to follower
// to, and keeps it for that transfer.
func (s *snapshots) forTransfer(to, index uint64) (heldSnapshot, bool) {
	if h, ok := s.sending[to]; ok && h.meta.Index == index {
		return h, true
	}
	if s.meta.Index != index {
		return heldSnapshot{}, false
	}
	if s.sending == nil {
		s.sending = map[uint64]heldSnapshot{}
	}
	h := heldSnapshot{meta: s.meta, data: s.data, sum: s.sum}
	s.sending[to] = h
	return h, true
}

// receiveSnapshot keeps the chunks arriving from the leader and, once a
// snapshot is whole, saves it durably and compacts the log storage into
// it, before the hard state that may count on it is saved.
func (n *Node) receiveSnapshot(rd raft.Ready) error {
	s := n.snaps
	for _, ch := range rd.SnapshotChunks {
		if ch.Offset == 0 {
			// The core checks every chunk against Total, so it bounds
			// what arrives; the cap only bounds what a bad Total wastes.
			s.recv = make([]byte, 0, min(ch.Total, maxRecvPrealloc))
			s.recvSum = ch.Checksum
		}
		if ch.Offset != uint64(len(s.recv)) {
			return fmt.Errorf("node: snapshot chunk at %d, %d bytes received", ch.Offset, len(s.recv))
		}
		s.recv = append(s.recv, ch.Data...)
	}
	meta := rd.Snapshot
	if meta.IsZero() {
		return nil
	}
	if s.store == nil || s.sm == nil {
		return errors.New("node: received a snapshot, but the state machine is no Snapshotter")
	}
	if err := n.finishSnapshotSave(); err != nil {
		return err
	}
	s.held = nil // the leader's snapshot replaces it in the store
	if err := s.store.SaveSnapshot(meta, s.recv); err != nil {
		return err
	}
	s.meta, s.data, s.sum, s.recv = meta, s.recv, s.recvSum, nil // the core checked the sum
	n.learnSnapshotPeers(meta)
	return n.compactStorage(meta.Index)
}

func (n *Node) compactStorage(index uint64) error {
	if c, ok := n.cfg.Storage.(Compacter); ok {
		if err := c.Compact(index); err != nil {
			return fmt.Errorf("node: compact storage: %w", err)
		}
	}
	return nil
}

// restoreSnapshot restores a snapshot received whole into the state
// machine; its acknowledgement has gone already, so the leader does not
// wait for this. Proposals it covers get ErrSnapshotted.
func (n *Node) restoreSnapshot(meta raft.SnapshotMeta) error {
	s := n.snaps
	if err := s.sm.Restore(meta, s.data); err != nil {
		return fmt.Errorf("node: restore snapshot %d: %w", meta.Index, err)
	}
	n.applied, s.appliedTerm, s.entries, s.bytes = meta.Index, meta.Term, 0, 0
	for i, p := range n.waiting {
		if i <= meta.Index {
			p.done <- result{err: ErrSnapshotted}
			delete(n.waiting, i)
		}
	}
	return nil
}

// countApplied counts an applied entry towards the next snapshot.
func (s *snapshots) countApplied(e raft.Entry) {
	s.appliedTerm = e.Term
	s.entries++
	s.bytes += len(e.Data)
}

// savedSnapshot is the outcome of writing a snapshot in the background.
type savedSnapshot struct {
	meta raft.SnapshotMeta
	data []byte
	sum  uint32
	err  error
}

// maybeSnapshot takes a snapshot once enough was applied since the last
// one, and has it written in the background: writing and syncing a large
// state takes longer than an election timeout, and the driver must go on
// ticking, heartbeating and committing meanwhile. The state machine's
// Snapshot runs here, between two Applys; snapshotSaved compacts the log
// once the snapshot is durable. One snapshot is written at a time.
func (n *Node) maybeSnapshot() error {
	s := n.snaps
	due := n.cfg.SnapshotEntries > 0 && s.entries >= n.cfg.SnapshotEntries ||
		n.cfg.SnapshotBytes > 0 && s.bytes >= n.cfg.SnapshotBytes
	if s.sm == nil || s.store == nil || !due || n.applied <= s.meta.Index || s.saving != nil || s.held != nil {
		return nil
	}
	s.entries, s.bytes = 0, 0
	data, err := s.sm.Snapshot()
	if err != nil {
		n.log.Error("snapshot failed; the log is not compacted", "applied", n.applied, "err", err)
		return nil
	}
	meta := n.core.SnapshotMetaAt(n.applied, s.appliedTerm)
	done := make(chan savedSnapshot, 1)
	s.saving = done
	store := s.store
	go func() {
		done <- savedSnapshot{meta: meta, data: data, sum: raft.SnapshotChecksum(data), err: store.SaveSnapshot(meta, data)}
	}()
	return nil
}

// snapshotSaved finishes a snapshot written in the background: it becomes
// the one sent to followers, and the log is compacted into it, unless a
// newer snapshot from the leader was installed meanwhile. The core
// compacts only what it knows applied, and entries applied early count
// there only when their write's Ready is done: until then the snapshot
// is held.
func (n *Node) snapshotSaved(sv savedSnapshot) error {
	s := n.snaps
	s.saving = nil
	if sv.err != nil {
		return fmt.Errorf("node: save snapshot: %w", sv.err)
	}
	st := n.core.Status()
	if sv.meta.Index <= st.Snapshot {
		return nil
	}
	if sv.meta.Index > st.Applied {
		s.held = &sv
		return nil
	}
	s.meta, s.data, s.sum = sv.meta, sv.data, sv.sum
	if err := n.core.Compact(sv.meta.Index); err != nil {
		return fmt.Errorf("node: compact: %w", err)
	}
	return n.compactStorage(sv.meta.Index)
}

// compactHeld finishes the held snapshot once the core has applied it.
func (n *Node) compactHeld() error {
	h := n.snaps.held
	if h == nil || h.meta.Index > n.core.Status().Applied {
		return nil
	}
	n.snaps.held = nil
	return n.snapshotSaved(*h)
}

// finishSnapshotSave waits for the snapshot being written in the
// background, if any, and finishes it: before a snapshot from the leader
// is saved to the same store, and when the driver stops.
func (n *Node) finishSnapshotSave() error {
	if n.snaps.saving == nil {
		return nil
	}
	return n.snapshotSaved(<-n.snaps.saving)
}
