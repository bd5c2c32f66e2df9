package rafttest

import (
	"fmt"
	"testing"

	"github.com/bifrost-go/bifrost/raft"
)

// Lab 3D by intent: snapshots, InstallSnapshot, restarts from snapshots.

func newSnapCluster(t *testing.T, nodes int, seed uint64, every int) *Cluster {
	return NewCluster(t, Options{Nodes: nodes, Seed: seed, SnapshotEvery: every, TraceEvents: *traceFlag})
}

// snapChunks counts the snapshot chunks leaders sent.
func snapChunks(c *Cluster) int { return c.Stats().Messages[raft.MsgSnap] }

// checkBounded fails unless every live node holds a log of at most max
// entries after its snapshot, on disk and in memory.
func checkBounded(t *testing.T, c *Cluster, max int) {
	t.Helper()
	for _, id := range c.IDs() {
		n := c.node(id)
		st := c.Status(id)
		if n.core == nil {
			continue
		}
		if len(n.disk.log) > max || st.LastIndex-st.Snapshot > uint64(max) {
			t.Fatalf("node %d: %d entries on disk after snapshot %d, %d in memory after %d; want at most %d",
				id, len(n.disk.log), n.disk.snap.Index, st.LastIndex-st.Snapshot, st.Snapshot, max)
		}
	}
}

// Every node snapshots as it applies; the logs stay short and the
// cluster goes on.
func TestSnapshotBasic(t *testing.T) {
	forSeeds(t, func(t *testing.T, seed uint64) {
		c := newSnapCluster(t, 3, seed, 10)
		c.WaitLeader(3 * et)
		for range 50 {
			c.One(c.Command(8), 3, 4*et)
		}
		checkBounded(t, c, 12)
		for _, id := range c.IDs() {
			if c.Status(id).Snapshot == 0 {
				t.Fatalf("node %d took no snapshot", id)
			}
		}
	})
}

// installAfterLag cuts a follower off while the others commit and
// compact, then lets it back: it must catch up by a snapshot.
func installAfterLag(t *testing.T, seed uint64, f Faults, crash bool) *Cluster {
	c := newSnapCluster(t, 3, seed, 5)
	lead := c.WaitLeader(3 * et)
	lag := others(c, lead)[0]
	if crash {
		c.Crash(lag)
	} else {
		c.Isolate(lag)
	}
	for range 30 {
		c.One(c.Command(20), 2, 6*et)
	}
	c.SetFaults(f)
	c.Reconnect(lag)
	c.Restart(lag)
	c.One(c.Command(8), 3, 60*et)
	if c.node(lag).disk.snap.Index == 0 || snapChunks(c) == 0 {
		t.Fatalf("node %d caught up without a snapshot (%d chunks sent)", lag, snapChunks(c))
	}
	return c
}

func TestSnapshotInstallReliable(t *testing.T) {
	forSeeds(t, func(t *testing.T, seed uint64) { installAfterLag(t, seed, Faults{}, false) })
}

func TestSnapshotInstallUnreliable(t *testing.T) {
	forSeeds(t, func(t *testing.T, seed uint64) {
		c := installAfterLag(t, seed, Faults{Drop: 0.1, Reorder: true, Duplicate: 0.1, DelayMax: 30}, false)
		for range 10 {
			c.One(c.Command(8), 3, 60*et)
		}
		c.CheckLiveness(30*et, 60*et)
	})
}

// A follower that crashed catches up by a snapshot; then it and the
// leader crash in the middle of transfers and torn writes.
func TestSnapshotInstallCrash(t *testing.T) {
	forSeeds(t, func(t *testing.T, seed uint64) {
		c := installAfterLag(t, seed, Faults{DiskDelay: 10}, true)
		c.SetFaults(Faults{TornWrite: 0.05, DiskDelay: 10})
		for i := range 20 {
			id := c.IDs()[i%3]
			c.Crash(id)
			c.Propose(c.Command(30))
			c.Run(1 + i%4)
			c.Restart(id)
			c.Run(3)
		}
		c.CheckLiveness(30*et, 60*et)
	})
}

// Every node crashes after snapshots: they restart from snapshot plus
// log, applied where they were (or, with a volatile application, at the
// snapshot), and go on.
func TestSnapshotAllCrash(t *testing.T) {
	for _, volatile := range []bool{false, true} {
		t.Run(fmt.Sprintf("volatile=%v", volatile), func(t *testing.T) {
			forSeeds(t, func(t *testing.T, seed uint64) {
				c := NewCluster(t, Options{Nodes: 3, Seed: seed, SnapshotEvery: 7, VolatileApp: volatile})
				c.WaitLeader(3 * et)
				for round := range 5 {
					for range 10 {
						c.One(c.Command(8), 3, 4*et)
					}
					before := map[uint64]uint64{}
					for _, id := range c.IDs() {
						before[id] = c.Applied(id)
						c.Crash(id)
					}
					for _, id := range c.IDs() {
						c.Restart(id)
						want := before[id]
						if volatile {
							want = c.node(id).disk.snap.Index
						}
						if got := c.Applied(id); got < want || want == 0 && round > 0 {
							t.Fatalf("round %d: node %d restarted with applied %d, want %d", round, id, got, want)
						}
					}
				}
				c.One(c.Command(8), 3, 10*et)
			})
		})
	}
}

// A node restarted from a snapshot reports it (Status.Snapshot) and
// its log starts after it, and the cluster goes on from there.
func TestSnapshotInit(t *testing.T) {
	forSeeds(t, func(t *testing.T, seed uint64) {
		c := newSnapCluster(t, 3, seed, 0)
		c.WaitLeader(3 * et)
		for range 12 {
			c.One(c.Command(8), 3, 4*et)
		}
		for _, id := range c.IDs() {
			if !c.Snapshot(id) {
				t.Fatalf("node %d took no snapshot", id)
			}
		}
		snaps := map[uint64]uint64{}
		for _, id := range c.IDs() {
			snaps[id] = c.node(id).disk.snap.Index
			c.Crash(id)
			c.Restart(id)
			if st := c.Status(id); st.Snapshot != snaps[id] || st.LastIndex < snaps[id] {
				t.Fatalf("node %d restarted with snapshot %d, last %d; disk has snapshot %d", id, st.Snapshot, st.LastIndex, snaps[id])
			}
		}
		c.One(c.Command(8), 3, 10*et)
		for _, id := range c.IDs() {
			c.Crash(id)
		}
		for _, id := range c.IDs() {
			c.Restart(id)
		}
		c.One(c.Command(8), 3, 10*et)
	})
}

// Under steady load with a slow follower the logs stay bounded.
func TestSnapshotLogBounded(t *testing.T) {
	forSeeds(t, func(t *testing.T, seed uint64) {
		c := newSnapCluster(t, 3, seed, 20)
		c.WaitLeader(3 * et)
		c.SetFaults(Faults{DelayMax: 20, Drop: 0.02})
		for range 100 {
			for range 4 {
				c.Propose(c.Command(16))
			}
			c.Run(1)
			// A lagging follower may hold up to a window of entries
			// more before it applies them and snapshots.
			checkBounded(t, c, 20+4*2*et+256)
		}
		c.CheckLiveness(30*et, 60*et)
		checkBounded(t, c, 40)
		if c.Status(c.Leader()).LastIndex < 200 {
			t.Fatalf("only %d entries", c.Status(c.Leader()).LastIndex)
		}
	})
}

// The applied index never goes back on any node across crashes and
// snapshot installs, with a durable application.
func TestSnapshotAppliedNeverBackwards(t *testing.T) {
	forSeeds(t, func(t *testing.T, seed uint64) {
		c := newSnapCluster(t, 5, seed, 4)
		c.SetFaults(Faults{Drop: 0.05, DelayMax: 20, Reorder: true})
		c.WaitLeader(5 * et)
		high := map[uint64]uint64{}
		for i := range 300 {
			if i%25 == 0 {
				c.Crash(c.IDs()[(i/25)%5])
			}
			if i%25 == 15 {
				c.Isolate(c.IDs()[(i/25+2)%5])
				c.Restart(c.IDs()[(i/25)%5])
			}
			if i%25 == 20 {
				c.HealNetwork()
			}
			c.Propose(c.Command(8))
			c.Run(1)
			for _, id := range c.IDs() {
				if !c.Alive(id) {
					continue
				}
				if a := c.Applied(id); a < high[id] {
					t.Fatalf("node %d: applied went back from %d to %d", id, high[id], a)
				}
				high[id] = c.Applied(id)
			}
		}
		c.CheckLiveness(30*et, 100*et)
	})
}

// A transfer in one-byte chunks survives the leader crashing in the
// middle of it: the next leader resumes or starts over, and the follower
// installs one whole snapshot.
func TestSnapshotInstallLeaderChange(t *testing.T) {
	forSeeds(t, func(t *testing.T, seed uint64) {
		c := NewCluster(t, Options{Nodes: 5, Seed: seed, SnapshotEvery: 5, SnapshotChunkBytes: 1, TraceEvents: *traceFlag})
		lead := c.WaitLeader(3 * et)
		lag := others(c, lead)[0]
		c.Isolate(lag)
		for range 20 {
			c.One(c.Command(20), 4, 6*et)
		}
		c.Reconnect(lag)
		c.MustRunUntil("a transfer under way", func() bool { return snapChunks(c) > 3 }, 10*et)
		c.Crash(c.Leader())
		c.One(c.Command(8), 4, 30*et)
		c.CheckLiveness(30*et, 100*et)
		if c.node(lag).disk.snap.Index == 0 {
			t.Fatalf("node %d caught up without a snapshot", lag)
		}
	})
}
