package rafttest

import (
	"testing"

	"github.com/bifrost-go/bifrost/raft"
)

// Reads on a leader that was cut off and replaced must not miss the new
// leader's writes (the checker fails a read index below a write
// acknowledged before the read began), with ReadIndex and with leases.
// Reads on followers and on a fresh leader are served and checked too.
func TestReadsAtLeaderChange(t *testing.T) {
	for _, lease := range []bool{false, true} {
		t.Run(map[bool]string{false: "readindex", true: "lease"}[lease], func(t *testing.T) {
			forSeeds(t, func(t *testing.T, seed uint64) {
				c := NewCluster(t, Options{Nodes: 3, Seed: seed, Config: raft.Config{LeaseReads: lease}})
				l1 := c.WaitLeader(3 * et)
				c.One(c.Command(8), 3, 4*et)
				for _, id := range c.IDs() {
					c.Read(id, lease)
				}
				c.Run(2)
				if served, _ := c.ReadsServed(); served != 3 {
					c.Fatalf("%d of 3 reads served on a healthy cluster", served)
				}

				c.Isolate(l1)
				for range 3 {
					c.Read(l1, lease) // taken, then refused when it steps down (or leased)
				}
				rest := others(c, l1)
				l2 := waitLeaderAmong(c, rest, 6*et)
				c.Read(l2, lease) // a fresh leader: held until its no-op commits
				c.One(c.Command(8), 2, 4*et)
				for range 20 {
					c.Read(l1, lease) // must never be served below the write above
					c.Read(rest[0], lease)
					c.Run(1)
				}
				c.HealNetwork()
				c.Run(4 * et)
				served, refused := c.ReadsServed()
				if !lease && refused < 3 {
					c.Fatalf("the cut-off leader refused %d reads, want 3 (served %d)", refused, served)
				}
				c.CheckLiveness(10*et, 10*et)
			})
		})
	}
}

// A transfer hands leadership to the named node, even though the voters
// heard from the old leader recently.
func TestLeadershipTransfer(t *testing.T) {
	forSeeds(t, func(t *testing.T, seed uint64) {
		c, l := startCluster(t, 5, seed)
		to := others(c, l)[int(seed)%4]
		if !c.TransferLeadership(to) {
			c.Fatalf("leader %d refused to transfer to %d", l, to)
		}
		c.MustRunUntil("the transfer", func() bool { return c.Leader() == to }, 3*et)
		c.One(c.Command(8), 5, 4*et)
	})
}
