package rafttest

import "github.com/bifrost-go/bifrost/raft"

// readKey names a read request: the node asked and the request id.
type readKey struct{ node, id uint64 }

// reads tracks the client's linearizable reads.
type reads struct {
	seq     uint64             // the last request id; ids are never reused
	waiting map[readKey]uint64 // request -> the highest index acknowledged to a client before it began
	served  int
	refused int
}

// Read asks node id for a linearizable read: ReadIndex, or LeaseRead if
// lease. It reports whether the node took the request. The answer comes
// in a Ready; the checker then requires the read index to cover every
// write acknowledged before the request, and not to pass the commit
// index (see ReadsServed).
func (c *Cluster) Read(id uint64, lease bool) bool {
	n := c.node(id)
	if n.core == nil {
		return false
	}
	c.reads.seq++
	read := n.core.ReadIndex
	if lease {
		read = n.core.LeaseRead
	}
	if err := read(c.reads.seq); err != nil {
		return false
	}
	if c.reads.waiting == nil {
		c.reads.waiting = map[readKey]uint64{}
	}
	c.reads.waiting[readKey{id, c.reads.seq}] = c.maxAcked
	c.observe(n)
	n.proposed = true // the driver handles the Ready at the next time unit
	return true
}

// ReadsServed returns how many reads were answered with a read index, and
// how many were refused.
func (c *Cluster) ReadsServed() (served, refused int) { return c.reads.served, c.reads.refused }

// checkReads checks the read states of a Ready. A read answered twice (a
// duplicated forward) counts once.
func (c *Cluster) checkReads(n *node, states []raft.ReadState) {
	for _, rs := range states {
		k := readKey{n.id, rs.ID}
		floor, ok := c.reads.waiting[k]
		if !ok {
			continue
		}
		delete(c.reads.waiting, k)
		switch {
		case rs.Index == 0:
			c.reads.refused++
		case rs.Index < floor:
			c.Fatalf("stale read: node %d answered read %d at index %d, but index %d was acknowledged before the read began",
				n.id, rs.ID, rs.Index, floor)
		case rs.Index > c.check.commit:
			c.Fatalf("node %d answered read %d at index %d, beyond any commit (%d)", n.id, rs.ID, rs.Index, c.check.commit)
		default:
			c.reads.served++
		}
	}
}

// TransferLeadership asks the leader to hand leadership to node to (0:
// the most up-to-date follower). It reports whether the leader took the
// request.
func (c *Cluster) TransferLeadership(to uint64) bool {
	lead := c.Leader()
	if lead == 0 {
		return false
	}
	n := c.node(lead)
	if err := n.core.TransferLeadership(to); err != nil {
		return false
	}
	c.Note("leader %d transfers leadership to %d", lead, to)
	c.events.Transfers++
	c.observe(n)
	n.proposed = true
	return true
}
