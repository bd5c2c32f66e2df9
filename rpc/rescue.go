package rpc

import (
	"errors"
	"sync/atomic"
	"time"
)

// A request whose method has proved quick runs on the connection's
// reader goroutine when no other frame is waiting behind it: handing it
// to a worker costs a goroutine wake-up, which on a lightly loaded
// machine is a third of a loopback round trip. The reader cannot read
// while it runs a handler, so a server-wide rescuer looks at such runs
// every rescuePeriod; one still running at two looks in a row (so for
// between one and two periods) loses the reader role to a new goroutine,
// which goes on reading the connection, and its method goes back to
// workers until it proves quick again. A slow handler thus delays the
// frames behind it by at most two periods, never indefinitely.
const (
	rescuePeriod = time.Millisecond

	// rescueIdleLooks is how many looks find no handler on a reader
	// before the rescuer sleeps until the next such run.
	rescueIdleLooks = 100

	// quickRun is the longest a handler may take on a worker and still
	// count as quick.
	quickRun = 100 * time.Microsecond

	// quickRunsToInline is how many quick runs in a row make a method
	// run on readers; a rescue sets the count back to -slowPenalty.
	quickRunsToInline = 8
	slowPenalty       = 64
)

// errReaderTaken ends a goroutine that ran a handler on the reader while
// the rescuer gave the reader role to another goroutine.
var errReaderTaken = errors.New("rpc: reader role taken over")

// inlineOK reports whether e has proved quick enough to run on a reader.
func (e *entry) inlineOK() bool { return e.quick.Load() >= quickRunsToInline }

// ranFor records that a handler of e took d on a worker.
func (e *entry) ranFor(d time.Duration) {
	switch {
	case d > quickRun:
		e.quick.Store(0)
	case e.quick.Load() < quickRunsToInline:
		e.quick.Add(1)
	}
}

// rescued records that a handler of e held up its reader.
func (e *entry) rescued() { e.quick.Store(-slowPenalty) }

// rescuer is the state shared between readers and the rescue goroutine.
type rescuer struct {
	asleep atomic.Bool
	wake   chan struct{} // capacity 1: look now (a handler began on a reader while asleep, or the last connection closed)
}

func newRescuer() rescuer { return rescuer{wake: make(chan struct{}, 1)} }

// watch makes sure the rescue goroutine is looking; readers call it as
// they start a handler.
func (r *rescuer) watch() {
	if r.asleep.Load() && r.asleep.CompareAndSwap(true, false) {
		r.poke()
	}
}

// poke asks the rescue goroutine for a look now.
func (r *rescuer) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// startRescuerLocked starts the rescue goroutine with the first
// connection. It is called with s.mu held.
func (s *Server) startRescuerLocked() {
	if !s.rescuing {
		s.rescuing = true
		s.wg.Add(1)
		go s.rescueLoop()
	}
}

// rescueLoop is the rescue goroutine. It returns once the server has
// stopped and its last connection is gone.
func (s *Server) rescueLoop() {
	defer s.wg.Done()
	t := time.NewTicker(rescuePeriod)
	defer t.Stop()
	idle := 0
	for {
		select {
		case <-t.C:
		case <-s.rescue.wake: // a look out of turn, such as for the last connection closing
		}
		inline, live := s.rescueStuck()
		switch {
		case !live && s.stopped():
			return
		case inline:
			idle = 0
		default:
			if idle++; idle >= rescueIdleLooks {
				s.sleepRescuer(t)
				idle = 0
			}
		}
	}
}

// sleepRescuer stops looking until a reader starts a handler or the
// server stops. The flag is raised before the last look, and readers
// start a handler before they test it, so one of the two always sees
// the other.
func (s *Server) sleepRescuer(t *time.Ticker) {
	s.rescue.asleep.Store(true)
	if inline, _ := s.rescueStuck(); !inline {
		t.Stop()
		select {
		case <-s.rescue.wake:
		case <-s.stopping:
		}
		t.Reset(rescuePeriod)
	}
	s.rescue.asleep.Store(false)
}

// rescueStuck looks at every connection once. It reports whether a
// handler was running on any reader and whether any connection is left.
func (s *Server) rescueStuck() (inline, live bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if c.lookStuck() {
			inline = true
		}
	}
	return inline, len(s.conns) > 0
}

// The reader role word of a connection is gen<<1 | running: running is
// set while the reader runs a handler, and gen counts the takeovers, so
// that a reader whose role was taken cannot mistake a later run by its
// successor for its own.
const roleRunning = 1

// startInline marks the reader as running a handler and returns the
// word to give back to endInline.
func (c *serverConn) startInline() uint64 {
	w := c.role.Load()
	c.role.Store(w | roleRunning)
	c.srv.rescue.watch()
	return w
}

// endInline reports whether the reader still holds its role after
// running a handler.
func (c *serverConn) endInline(w uint64) bool {
	return c.role.CompareAndSwap(w|roleRunning, w)
}

// lookStuck is one look of the rescuer at c: it reports whether c's
// reader is running a handler and, if it was already running the same
// one at the previous look, starts a new reader. Only the rescue
// goroutine calls it, with s.mu held.
func (c *serverConn) lookStuck() bool {
	w := c.role.Load()
	if w&roleRunning == 0 {
		return false
	}
	if w != c.lastLook {
		c.lastLook = w
		return true
	}
	select {
	case <-c.done:
		return false
	default:
	}
	if c.role.CompareAndSwap(w, w+1) { // gen+1, not running
		c.srv.wg.Add(1)
		go c.serve()
	}
	return true
}
