package rpc

import (
	"context"
	"sync"
	"time"
)

// inlinePayload is the request size, in bytes, stored inside the
// serverCall itself, saving an allocation per small call.
const inlinePayload = 256

// serverCall is one running request. It is also the handler's
// context.Context: it carries the caller's deadline, and is cancelled by
// a cancel frame, by the connection closing or by the handler returning.
// Its done channel and deadline timer are made only if the handler asks
// for Done, so a handler that never waits costs one allocation.
type serverCall struct {
	conn     *serverConn
	entry    *entry
	id       uint64
	service  uint64
	method   uint64
	deadline int64  // unix nanoseconds; 0 for none
	payload  []byte // the request; aliases inline when it fits
	inline   [inlinePayload]byte

	mu     sync.Mutex // protects the following
	done   chan struct{}
	err    error
	byPeer bool // cancelled by a cancel frame
	timer  *time.Timer
}

// newServerCall returns a call for h with room for an n-byte payload.
func newServerCall(c *serverConn, h header, n int) *serverCall {
	sc := &serverCall{conn: c, id: h.id, service: h.service, method: h.method, deadline: h.deadline}
	if n <= inlinePayload {
		sc.payload = sc.inline[:n:n]
	} else {
		sc.payload = make([]byte, n)
	}
	return sc
}

// Deadline returns the caller's deadline, if it sent one.
func (sc *serverCall) Deadline() (time.Time, bool) {
	if sc.deadline == 0 {
		return time.Time{}, false
	}
	return time.Unix(0, sc.deadline), true
}

// Done returns a channel closed when the call is cancelled or its
// deadline passes.
func (sc *serverCall) Done() <-chan struct{} {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if sc.done != nil {
		return sc.done
	}
	sc.done = make(chan struct{})
	switch {
	case sc.err != nil:
		close(sc.done)
	case sc.deadline != 0:
		sc.timer = time.AfterFunc(time.Until(time.Unix(0, sc.deadline)), sc.expire)
	}
	return sc.done
}

// Err returns context.Canceled or context.DeadlineExceeded once the call
// is over, and nil before.
func (sc *serverCall) Err() error {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if sc.err == nil && sc.deadline != 0 && time.Now().UnixNano() >= sc.deadline {
		sc.cancelLocked(context.DeadlineExceeded, false)
	}
	return sc.err
}

// Value returns nil: a call carries no values. Handlers that need some
// derive a context with context.WithValue.
func (sc *serverCall) Value(any) any { return nil }

// String names the context for debugging output.
func (sc *serverCall) String() string { return "rpc.serverCall" }

// expire is the deadline timer's function.
func (sc *serverCall) expire() { sc.cancel(context.DeadlineExceeded, false) }

// cancel ends the call's context with err; byPeer records that the
// caller asked for it. Later cancels are ignored.
func (sc *serverCall) cancel(err error, byPeer bool) {
	sc.mu.Lock()
	sc.cancelLocked(err, byPeer)
	sc.mu.Unlock()
}

// cancelLocked is cancel with mu held.
func (sc *serverCall) cancelLocked(err error, byPeer bool) {
	if sc.err != nil {
		return
	}
	sc.err, sc.byPeer = err, byPeer
	if sc.done != nil {
		close(sc.done)
	}
	if sc.timer != nil {
		sc.timer.Stop()
	}
}

// cancelledByPeer reports whether a cancel frame ended the call.
func (sc *serverCall) cancelledByPeer() bool {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return sc.byPeer
}
