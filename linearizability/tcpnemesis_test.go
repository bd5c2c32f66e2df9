package linearizability

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// tcpNemesis injects faults into a tcpCluster until a wall-clock
// deadline, drawing them from the scenario's seed.
type tcpNemesis struct {
	schedule
	c *tcpCluster
}

// tcpPartitions keeps cutting the members apart: into two groups, or
// one member deaf or mute to the rest (asymmetric), with lost and slow
// writes now and then, healing in between.
func tcpPartitions(n *tcpNemesis) {
	for n.active() {
		ids := n.shuffled()
		switch n.rng.IntN(4) {
		case 0: // two groups
			cut := 1 + n.rng.IntN(len(ids)-1)
			for _, a := range ids[:cut] {
				for _, b := range ids[cut:] {
					n.c.tn.block(a, b)
					n.c.tn.block(b, a)
				}
			}
		case 1: // one member hears the rest but cannot answer
			for _, b := range ids[1:] {
				n.c.tn.block(ids[0], b)
			}
		case 2: // one member speaks but hears nobody
			for _, b := range ids[1:] {
				n.c.tn.block(b, ids[0])
			}
		default:
			n.c.tn.setFaults(0.05, 3*time.Millisecond)
		}
		n.pause(200*time.Millisecond, 700*time.Millisecond)
		n.c.tn.heal()
		n.pause(100*time.Millisecond, 400*time.Millisecond)
	}
}

// tcpTransfers keeps moving leadership, to a random member or to the
// most up-to-date one.
func tcpTransfers(n *tcpNemesis) { n.transferChurn(100*time.Millisecond, 400*time.Millisecond) }

// tcpCrashes stops members and starts them again from their Dirs: one
// at a time, cleanly or losing what they had not synced, and now and
// then all at once, losing it everywhere, which is what shows a write
// acknowledged before it was durable.
func tcpCrashes(n *tcpNemesis) {
	for n.active() {
		if n.rng.IntN(4) == 0 {
			for _, id := range n.shuffled() {
				n.c.crash(id, true)
			}
			n.pause(0, 200*time.Millisecond)
		} else {
			id := n.shuffled()[0]
			n.c.crash(id, n.rng.IntN(2) == 0)
			n.pause(50*time.Millisecond, 400*time.Millisecond)
		}
		for _, id := range n.c.memberIDs() {
			n.c.restart(id)
		}
		n.pause(200*time.Millisecond, 600*time.Millisecond)
	}
}

// tcpMembership adds a member mid-run, which joins as a learner and is
// promoted once it caught up, then has another member leave, and keeps
// crashing members, one at a time, losing unsynced writes.
func tcpMembership(n *tcpNemesis) {
	n.pause(200*time.Millisecond, 400*time.Millisecond)
	n.join()
	n.pause(200*time.Millisecond, 400*time.Millisecond)
	n.leave()
	for n.active() {
		id := n.shuffled()[0]
		n.c.crash(id, true)
		n.pause(100*time.Millisecond, 400*time.Millisecond)
		n.c.restart(id)
		n.pause(200*time.Millisecond, 500*time.Millisecond)
	}
}

// changeTimeout bounds the attempts at one membership change: faults
// may fail a few, none should fail them all.
const changeTimeout = 20 * time.Second

// retry calls f until it succeeds, for up to changeTimeout, and reports
// whether it did.
func (n *tcpNemesis) retry(what string, f func() error) bool {
	deadline := time.Now().Add(changeTimeout)
	for {
		err := f()
		if err == nil {
			return true
		}
		if time.Now().After(deadline) {
			n.c.errorf("%s: %v", what, err)
			return false
		}
		t := time.NewTimer(50 * time.Millisecond) // a backoff between attempts
		<-t.C
	}
}

// join starts joinerID with an empty Dir, joining through a member.
func (n *tcpNemesis) join() {
	ok := n.retry(fmt.Sprintf("member %d joining", joinerID), func() error {
		return n.c.start(joinerID, nil, nil, n.c.addrs[n.shuffled()[0]])
	})
	if !ok {
		return
	}
	n.c.mu.Lock()
	n.c.members = append(n.c.members, joinerID)
	n.c.changes++
	n.c.mu.Unlock()
}

// leave has a random member other than the joiner leave the group for
// good, and stops it.
func (n *tcpNemesis) leave() {
	ids := slices.DeleteFunc(n.shuffled(), func(id uint64) bool { return id == joinerID })
	id := ids[0]
	nd := n.c.node(id)
	if nd == nil {
		return
	}
	ok := n.retry(fmt.Sprintf("member %d leaving", id), func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return nd.Leave(ctx)
	})
	if !ok {
		return
	}
	n.c.mu.Lock()
	n.c.members = slices.DeleteFunc(n.c.members, func(m uint64) bool { return m == id })
	n.c.changes++
	n.c.mu.Unlock()
	n.c.stop(id, false)
}

// tcpCrashAll crashes every member at once, losing what they had not
// synced, and restarts them, again and again.
func tcpCrashAll(n *tcpNemesis) {
	for n.active() {
		n.pause(200*time.Millisecond, 500*time.Millisecond)
		for _, id := range n.shuffled() {
			n.c.crash(id, true)
		}
		for _, id := range n.c.memberIDs() {
			n.c.restart(id)
		}
	}
}
