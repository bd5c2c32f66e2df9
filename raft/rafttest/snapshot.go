package rafttest

import (
	"encoding/binary"

	"github.com/bifrost-go/bifrost/raft"
)

// This file is the simulated application's side of snapshots: its state
// is a hash of every entry it applied, a snapshot is that hash and the
// index encoded (with filler, so snapshots span several chunks), and the
// driver takes snapshots, serves them to followers in chunks and
// installs the ones it receives, as raft/node does.

// heldSnapshot is a snapshot kept for a transfer to one follower.
type heldSnapshot struct {
	meta raft.SnapshotMeta
	data []byte
}

// appState extends the application state by one applied entry.
func appState(prev uint64, e *raft.Entry) uint64 {
	return fnvUint(fnvUint(fnvOffset, prev), entryHash(e))
}

// encodeSnapshot serializes the state at index. The filler makes sizes
// vary with the index.
func encodeSnapshot(index, state uint64) []byte {
	b := binary.BigEndian.AppendUint64(nil, index)
	b = binary.BigEndian.AppendUint64(b, state)
	for i := range index % 61 {
		b = append(b, byte('a'+i%26))
	}
	return b
}

func decodeSnapshot(b []byte) (index, state uint64, ok bool) {
	if len(b) < 16 {
		return 0, 0, false
	}
	index, state = binary.BigEndian.Uint64(b), binary.BigEndian.Uint64(b[8:])
	return index, state, len(b) == 16+int(index%61)
}

// chunkBytes is the size of the snapshot chunks the leaders send.
func (c *Cluster) chunkBytes() uint64 {
	if c.opts.SnapshotChunkBytes > 0 {
		return uint64(c.opts.SnapshotChunkBytes)
	}
	return 16
}

// Snapshot makes node id's application snapshot its state at its applied
// index, store it durably and compact the log into it (raft.Core.Compact).
// It reports whether it did: not while the node is down, has a write in
// flight, or applied nothing since its newest snapshot.
func (c *Cluster) Snapshot(id uint64) bool {
	n := c.node(id)
	if n.core == nil || n.writing != nil || n.applied <= n.disk.snap.Index || n.applied <= n.core.Status().Snapshot {
		return false
	}
	meta := n.core.SnapshotMetaAt(n.applied, n.disk.term(n.applied))
	if err := n.core.Compact(n.applied); err != nil {
		c.Fatalf("node %d: Compact(%d): %v", n.id, n.applied, err)
	}
	state := n.state
	if c.badSnap {
		state ^= 1
	}
	n.disk.compact(meta, encodeSnapshot(n.applied, state))
	c.Note("node %d: snapshot at %d (term %d)", n.id, meta.Index, meta.Term)
	c.events.Snapshots++
	c.afterInput(n)
	return true
}

// maybeSnapshot takes a snapshot every Options.SnapshotEvery entries.
func (c *Cluster) maybeSnapshot(n *node) {
	if e := uint64(c.opts.SnapshotEvery); e > 0 && n.applied >= n.disk.snap.Index+e {
		c.Snapshot(n.id)
	}
}

// sendSnapshots completes a leader's MsgSnap requests with chunks of the
// snapshot each names, the one its transfer started with or the newest,
// and sends them.
func (c *Cluster) sendSnapshots(n *node, reqs []raft.Message) {
	var out []raft.Message
	for _, m := range reqs {
		h, ok := n.forTransfer(m.To, m.Index)
		total := uint64(len(h.data))
		if !ok && m.Index < n.disk.snap.Index {
			// Asked for before the newer snapshot replaced it (a Ready
			// taken after Compact): dropped, as raft/node does; the core
			// resends with the newest snapshot.
			c.dropped(&m, "snapshot replaced")
			continue
		}
		if !ok || m.SnapOffset > total {
			c.Fatalf("node %d: asked to send snapshot %d from offset %d, holds %d of %d bytes", n.id, m.Index, m.SnapOffset, h.meta.Index, total)
		}
		end := min(m.SnapOffset+c.chunkBytes(), total)
		m.SnapData = h.data[m.SnapOffset:end]
		m.SnapTotal, m.SnapChecksum, m.SnapDone = total, raft.SnapshotChecksum(h.data), end == total
		out = append(out, m)
	}
	c.send(n, out)
}

// forTransfer returns the snapshot at index for a transfer to follower
// to, and keeps it for that transfer.
func (n *node) forTransfer(to, index uint64) (heldSnapshot, bool) {
	if h, ok := n.sending[to]; ok && h.meta.Index == index {
		return h, true
	}
	if n.disk.snap.Index != index {
		return heldSnapshot{}, false
	}
	h := heldSnapshot{meta: n.disk.snap, data: n.disk.snapData}
	n.sending[to] = h
	return h, true
}

// storeChunks keeps the pieces of a snapshot arriving from the leader,
// in memory: a crash loses them, and the leader starts over. The bytes
// of the snapshot the Ready installs are set apart as soon as its last
// chunk is in: the same Ready may go on with the first chunks of a newer
// snapshot (see TestRegression_ChunksAfterInstalledSnapshot).
func (c *Cluster) storeChunks(n *node, rd *raft.Ready) {
	for _, ch := range rd.SnapshotChunks {
		if ch.Offset == 0 {
			n.recv = nil
		}
		if ch.Offset != uint64(len(n.recv)) {
			c.Fatalf("node %d: snapshot chunk at offset %d, holds %d bytes", n.id, ch.Offset, len(n.recv))
		}
		n.recv = append(n.recv, ch.Data...)
		if ch.Meta.Same(rd.Snapshot) && uint64(len(n.recv)) == ch.Total {
			n.whole = n.recv
		}
	}
}

// installSnapshot makes the snapshot the leader sent durable and restores
// the application from it: the applied index never goes back, and the
// state restored is the state every node had at that index.
func (c *Cluster) installSnapshot(n *node, meta raft.SnapshotMeta) {
	data := n.whole
	n.whole = nil
	switch {
	case uint64(len(data)) == 0 || meta.Index > c.check.commit:
		c.Fatalf("node %d: installing snapshot %d (term %d) with %d bytes, commit is %d", n.id, meta.Index, meta.Term, len(data), c.check.commit)
	case meta.Index < n.applied:
		c.Fatalf("node %d: installing snapshot %d would take the applied index back from %d", n.id, meta.Index, n.applied)
	case meta.Term != c.check.terms[meta.Index-1]:
		c.Fatalf("node %d: snapshot %d has term %d, the committed entry there has term %d", n.id, meta.Index, meta.Term, c.check.terms[meta.Index-1])
	}
	n.disk.install(meta, data, c.check.terms, c.check.commitChain)
	c.Note("node %d: installed snapshot %d (term %d)", n.id, meta.Index, meta.Term)
	c.events.Installs++
}

// restoreApp replaces n's application state with its disk's snapshot.
func (c *Cluster) restoreApp(n *node) {
	index, state, ok := decodeSnapshot(n.disk.snapData)
	switch {
	case !ok || index != n.disk.snap.Index:
		c.Fatalf("node %d: snapshot %d does not decode (%d bytes)", n.id, n.disk.snap.Index, len(n.disk.snapData))
	case index > uint64(len(c.check.state)) || state != c.check.state[index-1]:
		c.Fatalf("state machine safety: node %d restored snapshot %d whose state differs from the state other nodes had there", n.id, index)
	}
	n.applied, n.state = index, state
	n.disk.applied, n.disk.state = index, state
}
