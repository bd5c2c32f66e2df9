package node

import (
	"context"
	"errors"
	"math/rand/v2"

	"github.com/bifrost-go/bifrost/raft"
)

// Errors of the read methods.
var (
	// ErrBehind is returned by FollowerRead on a member that has not yet
	// applied the index the client has seen; the client tries another.
	ErrBehind = errors.New("node: behind the index the client has seen")
	// ErrReadTimeout reports a read the leader did not confirm within two
	// election timeouts: the request or its answer was lost, or the
	// leader is cut off. Retry, on another member if need be.
	ErrReadTimeout = errors.New("node: read not confirmed in time")
)

// ReadIndex returns once this node has applied everything committed
// before the call: reading the state machine afterwards is linearizable.
// It returns the read index, which the node has applied. The leader
// confirms it still leads with a heartbeat round that concurrent reads
// share; a follower asks the leader for the read index and waits until it
// has applied that far itself. It fails with raft.ErrNotLeader when no
// leader is known or leadership was lost during the read, and with
// ErrReadTimeout when no answer came in time; both may be retried.
func (n *Node) ReadIndex(ctx context.Context) (uint64, error) {
	return n.read(ctx, false)
}

// LeaseRead is ReadIndex without the heartbeat round while the leader's
// lease holds (Config.LeaseReads), served in about the time of a local
// call. Its linearizability rests on bounded clock drift between members
// (see raft.Core.LeaseRead). Without LeaseReads, on a follower, or outside
// the lease it does what ReadIndex does.
func (n *Node) LeaseRead(ctx context.Context) (uint64, error) {
	return n.read(ctx, true)
}

// FollowerRead is the seed's follower read: if this node has applied at
// least minIndex, it calls read (unless nil) with the applied index, on
// the driver goroutine between two applications, so the state machine is
// exactly at that index while read runs; read must be quick and must not
// call the Node. It returns the applied index, or ErrBehind if the node
// has not reached minIndex.
//
// The answer may be stale: a member learns of commits late, and one cut
// off from the leader keeps answering. But it is monotonic for a client
// that passes the highest index it has seen (returned by Propose or by a
// read), since every member holds the same log prefix: that client never
// sees the state go back, whichever members it asks.
func (n *Node) FollowerRead(ctx context.Context, minIndex uint64, read func(applied uint64)) (uint64, error) {
	var applied uint64
	err := n.do(ctx, func() {
		applied = n.applied
		if applied >= minIndex && read != nil {
			read(applied)
		}
	})
	if err != nil {
		return 0, err
	}
	if applied < minIndex {
		return applied, ErrBehind
	}
	return applied, nil
}

// read runs one ReadIndex or LeaseRead.
func (n *Node) read(ctx context.Context, lease bool) (uint64, error) {
	r := &pendingRead{done: make(chan result, 1), ctxDone: ctx.Done()}
	if err := n.do(ctx, func() { n.startRead(r, lease) }); err != nil {
		return 0, err
	}
	select {
	case res := <-r.done:
		return res.index, res.err
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-n.done:
		return 0, ErrStopped
	}
}

// startRead hands r to the core under a fresh id (driver goroutine).
func (n *Node) startRead(r *pendingRead, lease bool) {
	r.id = n.reads.newID()
	r.deadline = n.ticks + n.reads.timeout
	var err error
	if lease {
		err = n.core.LeaseRead(r.id)
	} else {
		err = n.core.ReadIndex(r.id)
	}
	if err != nil {
		r.done <- result{err: err}
		return
	}
	n.reads.confirming[r.id] = r
}

// do runs f on the driver goroutine, which owns the core, and waits for
// it. Operations already waiting run in the same turn, so concurrent
// reads share one Ready and one heartbeat round.
func (n *Node) do(ctx context.Context, f func()) error {
	ran := make(chan struct{})
	op := func() { f(); close(ran) }
	select {
	case n.opc <- op:
	case <-ctx.Done():
		return ctx.Err()
	case <-n.done:
		return ErrStopped
	}
	<-ran // the driver runs an operation as soon as it takes it
	return nil
}

// runOps runs op and every other operation already waiting.
func (n *Node) runOps(op func()) {
	for {
		op()
		select {
		case op = <-n.opc:
		default:
			return
		}
	}
}

// pendingRead is one ReadIndex or LeaseRead call.
type pendingRead struct {
	id       uint64
	index    uint64          // the read index, once confirmed
	deadline uint64          // tick by which it must be confirmed
	ctxDone  <-chan struct{} // the caller's; a read it gave up on is dropped
	done     chan result     // buffered 1: the driver never blocks on a caller
}

// readQueue holds the reads of one node (driver goroutine only): first
// waiting for the core's ReadState, then for the local apply to reach
// the read index.
type readQueue struct {
	nextID     uint64
	timeout    uint64 // ticks a read may wait for its ReadState
	confirming map[uint64]*pendingRead
	applying   []*pendingRead
}

func newReadQueue(electionTicks int) readQueue {
	if electionTicks == 0 {
		electionTicks = raft.DefaultElectionTicks
	}
	// Request ids start at a random point: a late answer to a read of an
	// earlier run of this node must not match a new read (etcd #20418).
	return readQueue{nextID: rand.Uint64(), timeout: 2 * uint64(electionTicks),
		confirming: map[uint64]*pendingRead{}}
}

// newID returns a request id never used before by this node.
func (q *readQueue) newID() uint64 {
	q.nextID++
	if q.nextID == 0 {
		q.nextID++
	}
	return q.nextID
}

// confirm takes the core's answers: refused reads fail, confirmed ones
// wait for the apply. Answers to reads given up on are ignored.
func (q *readQueue) confirm(states []raft.ReadState) {
	for _, rs := range states {
		r, ok := q.confirming[rs.ID]
		if !ok {
			continue
		}
		delete(q.confirming, rs.ID)
		if rs.Index == 0 {
			r.done <- result{err: raft.ErrNotLeader}
			continue
		}
		r.index = rs.Index
		q.applying = append(q.applying, r)
	}
}

// release answers the reads whose read index has been applied.
func (q *readQueue) release(applied uint64) {
	kept := q.applying[:0]
	for _, r := range q.applying {
		if r.index <= applied {
			r.done <- result{index: r.index}
		} else {
			kept = append(kept, r)
		}
	}
	clear(q.applying[len(kept):])
	q.applying = kept
}

// expire fails the reads not confirmed in time and forgets those whose
// caller gave up.
func (q *readQueue) expire(now uint64) {
	for id, r := range q.confirming {
		if r.deadline < now || isDone(r.ctxDone) {
			delete(q.confirming, id)
			r.done <- result{err: ErrReadTimeout}
		}
	}
	kept := q.applying[:0]
	for _, r := range q.applying {
		if !isDone(r.ctxDone) {
			kept = append(kept, r)
		}
	}
	clear(q.applying[len(kept):])
	q.applying = kept
}

func isDone(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
