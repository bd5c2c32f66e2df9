package rafttest

import (
	"errors"

	"github.com/bifrost-go/bifrost/raft"
)

// host is a simulated node's raft.Host: its network is the simulated
// wire, its disk the simulated disk with its delays, stalls and torn
// writes, its application the hash of what it applied. The protocol
// itself (what leaves before a write and what after, the stale filter,
// early applies, restore order, Advance) is raft.Driver's, the code
// raft/node runs, and the checks watch it through these calls.
type host struct {
	c *Cluster
	n *node
	// readys counts the Readys without entries taken by one call of
	// the driver: a core that is never done handing out work is a bug of
	// its own. (A leader's bounded writes hand out a long log in many.)
	readys int
}

// errCrashed ends a driver call whose node crashed in it (a torn write).
var errCrashed = errors.New("rafttest: node crashed")

// maxReadys bounds the Readys one driver call may take.
const maxReadys = 100

// Take checks the node's status, as changed by the input or the Advance
// before, then the shape of the Ready and the reads it answers.
func (h *host) Take(rd *raft.Ready) {
	h.c.observe(h.n)
	if len(rd.Entries) == 0 {
		h.readys++
	}
	if h.readys > maxReadys {
		h.c.Fatalf("node %d: HasReady still true after %d Ready/Advance rounds", h.n.id, maxReadys)
	}
	h.c.checkReady(h.n, rd)
	h.c.checkReads(h.n, rd.ReadStates)
}

func (h *host) Send(msgs []raft.Message) { h.c.send(h.n, msgs) }

func (h *host) SendSnapshot(reqs []raft.Message) { h.c.sendSnapshots(h.n, reqs) }

// Write keeps the snapshot chunks in memory and starts the write of the
// Ready. It becomes durable after a disk delay (Faults.DiskDelay, often
// zero) or a stall, during which the node goes on taking messages and
// ticks; with probability Faults.TornWrite the node crashes before the
// write is durable.
func (h *host) Write(rd *raft.Ready) (bool, error) {
	c, n := h.c, h.n
	c.storeChunks(n, rd)
	if c.hasty {
		c.send(n, rd.AfterPersist)
		rd.AfterPersist = nil
	}
	n.writing, n.writingCommit = rd, c.check.commit
	writes := rd.HardStateChanged || len(rd.Entries) > 0 || !rd.Snapshot.IsZero()
	if writes && c.net.faults.TornWrite > 0 && c.rng.Float64() < c.net.faults.TornWrite {
		c.down(n, event{kind: evCrash})
		return false, errCrashed
	}
	n.syncAt = c.now
	if d := c.net.faults.DiskDelay; writes && d > 0 {
		n.syncAt += Time(c.rng.Int64N(int64(d) + 1))
	}
	if writes {
		n.syncAt = max(n.syncAt, n.stallUntil)
	}
	if n.syncAt > c.now {
		return false, nil
	}
	c.saveWriting(n)
	return true, nil
}

// Restore restores the application from the snapshot the disk holds now.
func (h *host) Restore(raft.SnapshotMeta) error {
	h.c.restoreApp(h.n)
	return nil
}

func (h *host) Apply(entries []raft.Entry) error {
	h.c.apply(h.n, entries)
	return nil
}

// Reads were checked when the Ready was taken.
func (h *host) Reads([]raft.ReadState) {}
