package linearizability

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/bifrost-go/bifrost/raft/node"
)

// readMode says how a client reads.
type readMode int

const (
	readIndex    readMode = iota // node.ReadIndex: linearizable
	leaseRead                    // node.LeaseRead: linearizable with bounded drift
	followerRead                 // node.FollowerRead from 0: possibly stale
)

// errLost is a request or reply the client-server network lost.
var errLost = errors.New("message to or from the server lost")

// client runs operations against a cluster the way a real client would:
// it sends each request to the server it believes leads, follows
// not-leader hints, moves on after a timeout, and retries a Put or Append
// with the same sequence number until it hears back, so the store's
// sessions make it exactly-once. Not safe for concurrent use: one
// goroutine per client.
type client struct {
	t     *testing.T
	idx   int    // the client's index, for the history
	id    uint64 // its session id in the store
	seq   uint64 // its last request number
	c     *cluster
	h     *History
	rng   *rand.Rand
	reads readMode
	guess uint64 // the server it will try first
	// freshSeq makes retries use a new sequence number, which defeats
	// the store's deduplication (negative control only).
	freshSeq bool

	retries    int // requests sent again
	duplicates int // retries the store recognized as already applied
	instant    int // ReadIndex or LeaseRead calls served in no fake time
}

func newClient(t *testing.T, c *cluster, h *History, idx int, reads readMode) *client {
	return &client{t: t, idx: idx, id: uint64(idx) + 1, c: c, h: h, reads: reads,
		rng:   rand.New(rand.NewPCG(c.cfg.seed, uint64(idx)+0xc11e)),
		guess: c.ids[idx%len(c.ids)]}
}

// do runs one operation until it completes or ctx ends; an operation
// that did not complete stays pending in the history.
func (cl *client) do(ctx context.Context, in Input) {
	id := cl.h.Invoke(cl.idx, in)
	var out, detail string
	var err error
	if in.Kind == OpGet {
		out, detail, err = cl.get(ctx, in.Key)
	} else {
		cl.seq++
		detail, err = cl.update(ctx, Command{Kind: in.Kind, Client: cl.id, Seq: cl.seq, Key: in.Key, Value: in.Value})
	}
	if err == nil {
		cl.h.Return(id, out)
		cl.h.Annotate(id, detail)
	} else if ctx.Err() == nil {
		cl.t.Error(err)
	}
}

// update sends cmd until a server applied it, and describes where.
func (cl *client) update(ctx context.Context, cmd Command) (detail string, err error) {
	data, _ := cmd.AppendBinary(nil)
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			cl.retries++
			if cl.freshSeq {
				cl.seq++
				cmd.Seq = cl.seq
				data, _ = cmd.AppendBinary(nil)
			}
		}
		var value []byte
		var index uint64
		var on uint64
		err := cl.call(ctx, func(ctx context.Context, s *server) (err error) {
			on = s.id
			index, value, err = s.node.Propose(ctx, data)
			return err
		})
		if err == nil {
			r, derr := DecodeResult(value)
			if derr != nil {
				return "", fmt.Errorf("client %d: bad result %q: %w", cl.idx, value, derr)
			}
			if r.Duplicate {
				cl.duplicates++
			}
			return fmt.Sprintf("seq %d on %d at %d (dup %v, attempt %d)", cmd.Seq, on, index, r.Duplicate, attempt), nil
		}
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
	}
}

// get reads key until some server answers.
func (cl *client) get(ctx context.Context, key string) (value, detail string, err error) {
	for attempt := 0; ; attempt++ {
		if cl.reads == followerRead || (attempt == 0 && cl.rng.IntN(3) == 0) {
			// Any member answers a follower read; a follower asks the
			// leader for a ReadIndex, which tests that path too.
			cl.next()
		}
		err := cl.call(ctx, func(ctx context.Context, s *server) error {
			var err error
			value, detail, err = cl.read(ctx, s, key)
			return err
		})
		if err == nil {
			return value, detail, nil
		}
		if ctx.Err() != nil {
			return "", "", ctx.Err()
		}
	}
}

// read reads key on s and describes where.
func (cl *client) read(ctx context.Context, s *server, key string) (value, detail string, err error) {
	var index, applied uint64
	start := time.Now()
	switch cl.reads {
	case readIndex:
		index, err = s.node.ReadIndex(ctx)
	case leaseRead:
		index, err = s.node.LeaseRead(ctx)
	case followerRead:
		index, err = s.node.FollowerRead(ctx, 0, func(uint64) { value, applied = s.kv.GetAt(key) })
	}
	if err == nil && cl.reads != followerRead {
		// The node has applied at least the read index: what its store
		// holds now is at least as new as the read.
		value, applied = s.kv.GetAt(key)
		if time.Since(start) == 0 {
			cl.instant++ // no message went anywhere: a lease read
		}
	}
	return value, fmt.Sprintf("on %d at read index %d, store at %d", s.id, index, applied), err
}

// call sends one request to the server the client believes leads, over
// the client-server network with its losses and delays, and picks the
// server for the next attempt from the outcome.
func (cl *client) call(ctx context.Context, rpc func(context.Context, *server) error) error {
	to := cl.guess
	s := cl.c.server(to)
	if s == nil || !cl.c.reachable(cl.idx, to) {
		cl.next()
		if err := cl.wait(ctx, 10*time.Millisecond); err != nil {
			return err
		}
		return errLost // connection refused, after a while
	}
	if err := cl.hop(ctx); err != nil {
		return err
	}
	cctx, cancel := withCallTimeout(ctx)
	err := rpc(cctx, s)
	cancel()
	if err == nil && !cl.c.reachable(cl.idx, to) {
		err = errLost // the reply cannot reach the client
	}
	if err == nil {
		err = cl.hop(ctx)
	}
	if err != nil {
		cl.redirect(s, err)
	}
	return err
}

// hop is one trip over the client-server network: a delay, or a loss the
// client notices only by its timeout.
func (cl *client) hop(ctx context.Context) error {
	f := cl.c.faultsNow()
	f.longDelay = 0 // a client has one request out: a late one only slows it
	if cl.rng.Float64() < f.drop {
		cl.next()
		if err := cl.wait(ctx, callTimeout); err != nil {
			return err
		}
		return errLost
	}
	return cl.wait(ctx, f.delay(cl.rng))
}

// redirect chooses the next server after a failed attempt on s: its
// leader hint when it is not the leader, another server otherwise.
func (cl *client) redirect(s *server, err error) {
	if lead := s.node.Status().Lead; lead != 0 && lead != s.id && !errors.Is(err, node.ErrStopped) {
		cl.guess = lead
		return
	}
	cl.next()
}

// next moves the client's guess to a random other server.
func (cl *client) next() {
	ids := cl.c.ids
	cl.guess = ids[cl.rng.IntN(len(ids))]
}

// wait waits d of the bubble's time, or until ctx ends.
func (cl *client) wait(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		// No timer that is due when its channel is first read: the
		// runtime then runs it from the select itself, and under the
		// race detector (Go 1.26.8) that path crashed in TSan twice
		// (SIGSEGV in SlotLock), with this wait(ctx, 0) on the stack.
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
