package linearizability

import (
	"testing"
	"time"
)

// nemesis injects faults into a running in-process cluster until a
// fake-time deadline. Its randomness comes from the scenario's seed.
type nemesis struct {
	schedule
	t       *testing.T
	c       *cluster
	h       *History
	clients int
}

// onePartition splits the servers into a majority and a minority for the
// whole phase, and the clients with them: odd clients reach only the
// minority, which must not complete any of their operations until the
// heal, while the majority's clients go on.
func onePartition(n *nemesis) {
	ids := n.shuffled()
	minority, majority := ids[:len(ids)/2], ids[len(ids)/2:]
	n.c.nw.partition(majority, minority)
	for i := range n.clients {
		if i%2 == 1 {
			n.c.limitClient(i, minority)
		} else {
			n.c.limitClient(i, majority)
		}
	}
	start := n.h.Now()
	time.Sleep(time.Until(n.until))
	end := n.h.Now()
	majorityDone := 0
	for _, op := range n.h.Operations() {
		if op.Call < start || op.Pending || op.Return > end {
			continue
		}
		if op.Client%2 == 1 {
			n.t.Errorf("client %d, cut off with minority %v, completed %v during the partition",
				op.Client, minority, op.Input)
		} else {
			majorityDone++
		}
	}
	if majorityDone == 0 {
		n.t.Errorf("the majority %v completed no operation during the partition", majority)
	}
}

// manyPartitions keeps splitting the servers into two or three random
// groups, healing now and then.
func manyPartitions(n *nemesis) {
	for n.active() {
		ids := n.shuffled()
		cut1 := 1 + n.rng.IntN(len(ids)-1)
		if n.rng.IntN(3) == 0 && cut1 < len(ids)-1 {
			cut2 := cut1 + 1 + n.rng.IntN(len(ids)-cut1-1)
			n.c.nw.partition(ids[:cut1], ids[cut1:cut2], ids[cut2:])
		} else {
			n.c.nw.partition(ids[:cut1], ids[cut1:])
		}
		n.pause(100*time.Millisecond, 600*time.Millisecond)
		if n.rng.IntN(3) == 0 {
			n.c.nw.heal()
			n.pause(50*time.Millisecond, 300*time.Millisecond)
		}
	}
}

// crashRestart crashes one server at a time, or now and then all of
// them, and restarts them from their storage.
func crashRestart(n *nemesis) {
	for n.active() {
		if n.rng.IntN(5) == 0 {
			for _, id := range n.shuffled() {
				n.c.crash(id)
			}
			n.pause(0, 300*time.Millisecond)
			n.c.restartAll()
		} else {
			id := n.c.ids[n.rng.IntN(len(n.c.ids))]
			n.c.crash(id)
			n.pause(50*time.Millisecond, 500*time.Millisecond)
			n.c.restart(id)
		}
		n.pause(100*time.Millisecond, 500*time.Millisecond)
	}
}

// transferChurn keeps moving leadership: to a random member or to the
// most up-to-date one.
func transferChurn(n *nemesis) { n.transferChurn(50*time.Millisecond, 300*time.Millisecond) }

// isolateLeader keeps cutting the leader off with a minority, which it
// may still believe it leads while its lease runs, then heals.
func isolateLeader(n *nemesis) {
	for n.active() {
		if lead := n.c.leader(); lead != nil {
			var others []uint64
			for _, id := range n.shuffled() {
				if id != lead.id {
					others = append(others, id)
				}
			}
			k := n.rng.IntN(len(n.c.ids) / 2) // the leader's companions
			n.c.nw.partition(append([]uint64{lead.id}, others[:k]...), others[k:])
		}
		n.pause(200*time.Millisecond, 800*time.Millisecond)
		n.c.nw.heal()
		n.pause(50*time.Millisecond, 400*time.Millisecond)
	}
}
