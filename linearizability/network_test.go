package linearizability

import (
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/bifrost-go/bifrost/raft"
)

// faults describes how unreliable a network is. The zero value is a
// reliable network with the minimum delay.
type faults struct {
	drop     float64       // probability that a message is lost
	minDelay time.Duration // every message takes at least this long
	maxDelay time.Duration // and at most this long (default minDelay)
	// reorder lets a message overtake earlier ones on its link; without
	// it each link delivers in order, like a connection.
	reorder bool
	// longDelay is the probability that a message is held back 200 ms to
	// 2.2 s instead, arriving long after newer ones (with reorder).
	longDelay float64
}

// minDelay is the smallest delay of any message. It must be positive:
// in a synctest bubble time only moves when every goroutine waits, and a
// cluster whose messages arrive instantly could run forever in one
// instant.
const minDelay = time.Millisecond

func (f faults) delay(rng *rand.Rand) time.Duration {
	if f.reorder && rng.Float64() < f.longDelay {
		return 200*time.Millisecond + time.Duration(rng.Int64N(int64(2*time.Second)))
	}
	lo := max(f.minDelay, minDelay)
	hi := max(f.maxDelay, lo)
	return lo + time.Duration(rng.Int64N(int64(hi-lo)+1))
}

// network carries raft messages between the servers of a test cluster,
// with the faults of its faults field, partitions and crashed servers. A
// message is delivered by its link's timer in the synctest bubble after
// its delay, to whatever incarnation of its receiver runs then.
type network struct {
	mu      sync.Mutex // protects the following
	rng     *rand.Rand
	faults  faults
	group   map[uint64]int // servers talk only within their group; nil: no partition
	deliver map[uint64]func(raft.Message)
	links   map[[2]uint64]*link
	sent    int
	lost    int
	snaps   int // MsgSnap messages sent
}

// link is the queue of messages in flight from one server to another.
type link struct {
	mu     sync.Mutex // serializes deliveries, so a link stays in order
	queue  []inFlight // guarded by network.mu
	latest time.Time  // when the last message sent in order arrives; network.mu
	// timer delivers the queue: one per link, set for the earliest
	// message (at, zero when unset), rather than one timer and goroutine
	// per message, which the race detector's bookkeeping suffers under.
	timer *time.Timer // network.mu
	at    time.Time   // network.mu
}

type inFlight struct {
	at time.Time
	m  raft.Message
}

func newNetwork(seed uint64, f faults) *network {
	return &network{rng: rand.New(rand.NewPCG(seed, 0x6e6574)), faults: f,
		deliver: map[uint64]func(raft.Message){}, links: map[[2]uint64]*link{}}
}

// endpoint returns the Transport of one incarnation of server id.
func (nw *network) endpoint(id uint64) *endpoint { return &endpoint{nw: nw, id: id} }

// setFaults changes the faults for messages sent from now on.
func (nw *network) setFaults(f faults) {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	nw.faults = f
}

// partition splits the servers: those in the same group talk, others do
// not. Servers missing from groups are cut off from everyone.
func (nw *network) partition(groups ...[]uint64) {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	nw.group = map[uint64]int{}
	for g, ids := range groups {
		for _, id := range ids {
			nw.group[id] = g + 1
		}
	}
}

// heal ends the partition.
func (nw *network) heal() {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	nw.group = nil
}

// disconnect forgets the receiver of server id: it crashed.
func (nw *network) disconnect(id uint64) {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	delete(nw.deliver, id)
}

// connected reports whether a and b may talk. Call with mu held.
func (nw *network) connected(a, b uint64) bool {
	if nw.group == nil {
		return true
	}
	ga, gb := nw.group[a], nw.group[b]
	return ga != 0 && ga == gb
}

// send puts m on its link, or loses it.
func (nw *network) send(m raft.Message) {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	nw.sent++
	if m.Type == raft.MsgSnap {
		nw.snaps++
	}
	if !nw.connected(m.From, m.To) || nw.rng.Float64() < nw.faults.drop {
		nw.lost++
		return
	}
	m.Entries = slices.Clone(m.Entries) // the receiver gets its own copy
	key := [2]uint64{m.From, m.To}
	l := nw.links[key]
	if l == nil {
		l = &link{}
		nw.links[key] = l
	}
	at := time.Now().Add(nw.faults.delay(nw.rng))
	if !nw.faults.reorder {
		// In order after the messages sent in order; one sent while
		// the network reordered may still arrive later.
		if at.Before(l.latest) {
			at = l.latest
		}
		l.latest = at
	}
	l.queue = append(l.queue, inFlight{at: at, m: m})
	l.wakeAt(at, func() { nw.arrive(l) })
}

// wakeAt sets l's timer to fire at t, unless it fires earlier already.
// The caller holds network.mu.
func (l *link) wakeAt(t time.Time, arrive func()) {
	switch {
	case l.timer == nil:
		l.timer = time.AfterFunc(time.Until(t), arrive)
	case l.at.IsZero() || t.Before(l.at):
		l.timer.Reset(time.Until(t))
	default:
		return
	}
	l.at = t
}

// arrive delivers the messages on l that are due, in queue order, unless a
// partition made since they were sent cuts them.
func (nw *network) arrive(l *link) {
	l.mu.Lock()
	defer l.mu.Unlock()
	nw.mu.Lock()
	now := time.Now()
	var due []raft.Message
	var fn func(raft.Message)
	l.queue = slices.DeleteFunc(l.queue, func(f inFlight) bool {
		if f.at.After(now) {
			return false
		}
		if nw.connected(f.m.From, f.m.To) {
			due = append(due, f.m)
		} else {
			nw.lost++
		}
		return true
	})
	if len(due) > 0 {
		fn = nw.deliver[due[0].To]
	}
	l.at = time.Time{}
	if len(l.queue) > 0 {
		next := slices.MinFunc(l.queue, func(a, b inFlight) int { return a.at.Compare(b.at) }).at
		l.wakeAt(next, func() { nw.arrive(l) })
	}
	nw.mu.Unlock()
	if fn == nil {
		return
	}
	for _, m := range due {
		fn(m) // never blocks: a node drops what it cannot buffer
	}
}

// stats returns how many messages were sent, how many were lost and how
// many carried snapshot chunks.
func (nw *network) stats() (sent, lost, snaps int) {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	return nw.sent, nw.lost, nw.snaps
}

// endpoint is the node.Transport of one server incarnation.
type endpoint struct {
	nw *network
	id uint64
}

func (e *endpoint) Receive(fn func(raft.Message)) {
	e.nw.mu.Lock()
	defer e.nw.mu.Unlock()
	e.nw.deliver[e.id] = fn
}

func (e *endpoint) Send(msgs []raft.Message) {
	for _, m := range msgs {
		e.nw.send(m)
	}
}

// Addr is the rpc address of server id (node.AddressBook), which a
// follower names to a client as the leader's.
func (e *endpoint) Addr(id uint64) (string, bool) { return serverAddr(id), true }
