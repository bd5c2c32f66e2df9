package rpc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// serverConn serves one connection: a reader goroutine parses frames,
// runs notifications itself and hands requests to worker goroutines,
// which run handlers and write the responses through a shared
// frameWriter. A request of a quick method with nothing behind it runs
// on the reader itself (see rescuePeriod).
type serverConn struct {
	srv  *Server
	nc   net.Conn
	br   *bufio.Reader // read only by the goroutine holding the reader role
	w    frameWriter
	sem  chan struct{}    // a token per running request; full means stop reading
	work chan *serverCall // hands requests to idle workers; unbuffered
	done chan struct{}    // closed when the connection is closed

	workers  int           // workers started; touched only by the reader
	role     atomic.Uint64 // the reader role word, see roleRunning
	lastLook uint64        // role word at the rescuer's last look; rescuer only

	mu       sync.Mutex             // protects the following
	calls    map[uint64]*serverCall // running requests by id
	notified *serverCall            // the notification the reader is running, if any
	draining bool                   // Shutdown: refuse new calls, close when idle
	closed   bool
}

func newServerConn(s *Server, nc net.Conn) *serverConn {
	return &serverConn{
		srv:   s,
		nc:    nc,
		br:    bufio.NewReaderSize(nc, s.cfg.ReadBufferSize),
		w:     frameWriter{w: nc, max: s.cfg.MaxFrameSize},
		sem:   make(chan struct{}, s.cfg.MaxInFlight),
		work:  make(chan *serverCall),
		done:  make(chan struct{}),
		calls: make(map[uint64]*serverCall),
	}
}

// serve is the connection's reader goroutine. A reader whose role the
// rescuer handed to a new goroutine leaves the connection to it.
func (c *serverConn) serve() {
	defer c.srv.wg.Done()
	err := c.readLoop()
	if err == errReaderTaken {
		return
	}
	c.close()
	c.srv.forget(c)
	if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
		c.srv.cfg.Logger.Info("rpc: connection closed", "remote", c.nc.RemoteAddr(), "err", err)
	}
}

// readLoop reads frames until the connection fails or the peer breaks
// the protocol.
func (c *serverConn) readLoop() error {
	for {
		h, n, err := readHeader(c.br, c.srv.cfg.MaxFrameSize)
		if err != nil {
			return err
		}
		if err := c.handleFrame(h, n); err != nil {
			return err
		}
	}
}

// handleFrame acts on one frame whose payload of n bytes is still unread.
func (c *serverConn) handleFrame(h header, n int) error {
	switch h.kind {
	case kindRequest:
		return c.handleRequest(h, n)
	case kindCancel:
		c.handleCancel(h.id)
		_, err := c.br.Discard(n)
		return err
	case kindNotify:
		return c.handleNotify(h, n)
	default:
		return fmt.Errorf("%w: kind %d sent to a server", ErrMalformedFrame, h.kind)
	}
}

// handleRequest reads a request and starts its handler. It waits for a
// free slot and for the frame's bytes in the server's budget first, so a
// connection at either bound is not read.
func (c *serverConn) handleRequest(h header, n int) error {
	if !c.acquire(n) {
		return ErrClosed
	}
	sc := newServerCall(c, h, n)
	if _, err := io.ReadFull(c.br, sc.payload); err != nil {
		c.release(sc)
		return err
	}
	c.srv.countCall(h.service)
	e, err := c.admit(sc)
	if err != nil {
		c.release(sc)
		if errors.Is(err, ErrMalformedFrame) {
			return err
		}
		c.srv.countError(h.service)
		return c.writeError(h.id, err)
	}
	sc.entry = e
	c.srv.counters.inFlight.Add(1)
	if c.br.Buffered() == 0 && e.inlineOK() {
		return c.runInline(sc)
	}
	c.dispatch(sc)
	return nil
}

// runInline runs sc on the reader goroutine. It returns errReaderTaken
// if the rescuer gave the reader role away meanwhile.
func (c *serverConn) runInline(sc *serverCall) error {
	w := c.startInline()
	c.run(sc)
	if !c.endInline(w) {
		sc.entry.rescued()
		return errReaderTaken
	}
	return nil
}

// handleNotify runs a one-way request on the reader goroutine itself, so
// the notifications of one connection are handled in the order they were
// sent and cost no hand-off to a worker; their handlers must be quick.
// Nothing is answered: errors, an unknown method among them, are logged.
func (c *serverConn) handleNotify(h header, n int) error {
	if !c.srv.budget.acquire(frameBytes(n), c.done) {
		return ErrClosed
	}
	defer c.srv.budget.release(frameBytes(n))
	sc := newServerCall(c, h, n)
	if _, err := io.ReadFull(c.br, sc.payload); err != nil {
		return err
	}
	c.srv.counters.notified.Inc()
	e, err := c.srv.lookup(h.service, h.method)
	if err == nil {
		err = c.startNotify(sc)
	}
	if err == nil {
		var buf *[]byte
		_, buf, err = e.serve(sc, sc.payload)
		e.scratch.put(buf)
		c.mu.Lock()
		c.notified = nil
		c.mu.Unlock()
	}
	sc.cancel(context.Canceled, false)
	if err != nil {
		c.srv.cfg.Logger.Debug("rpc: notification failed", "remote", c.nc.RemoteAddr(), "err", err)
	}
	return nil
}

// startNotify records sc as the running notification, so that closing the
// connection cancels its context as it does a call's; while the server
// drains or closes, notifications are dropped like new calls.
func (c *serverConn) startNotify(sc *serverCall) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.draining || c.closed {
		return ErrShutdown
	}
	c.notified = sc
	return nil
}

// admit finds the method and records the call as running. Errors are
// answered to the caller, except ErrMalformedFrame (a request id that is
// already running), which closes the connection.
func (c *serverConn) admit(sc *serverCall) (*entry, error) {
	e, err := c.srv.lookup(sc.service, sc.method)
	if err != nil {
		return nil, err
	}
	if sc.deadline != 0 && time.Now().UnixNano() >= sc.deadline {
		return nil, context.DeadlineExceeded
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.draining || c.closed {
		return nil, ErrShutdown
	}
	if _, dup := c.calls[sc.id]; dup {
		return nil, fmt.Errorf("%w: request id %d already running", ErrMalformedFrame, sc.id)
	}
	c.calls[sc.id] = sc
	return e, nil
}

// dispatch hands sc to an idle worker, or starts one. At most
// MaxInFlight workers exist; when all of them are busy or about to
// park, the hand-off waits for one.
func (c *serverConn) dispatch(sc *serverCall) {
	select {
	case c.work <- sc:
		return
	default:
	}
	if c.workers < cap(c.sem) {
		c.workers++
		c.srv.wg.Add(1)
		go c.worker(sc)
		return
	}
	select {
	case c.work <- sc:
	case <-c.done:
		c.finish(sc)
	}
}

// worker runs requests until the connection closes.
func (c *serverConn) worker(sc *serverCall) {
	defer c.srv.wg.Done()
	for {
		c.timedRun(sc)
		select {
		case sc = <-c.work:
		case <-c.done:
			return
		}
	}
}

// timedRun is run on a worker, timing the handler while its method has
// not yet proved quick.
func (c *serverConn) timedRun(sc *serverCall) {
	if sc.entry.inlineOK() {
		c.run(sc)
		return
	}
	start := time.Now()
	c.run(sc)
	sc.entry.ranFor(time.Since(start))
}

// run runs one handler and writes its answer, unless the caller has
// cancelled the call and so no longer waits for one.
func (c *serverConn) run(sc *serverCall) {
	resp, buf, err := sc.entry.serve(sc, sc.payload)
	switch {
	case sc.cancelledByPeer():
	case err != nil:
		c.srv.countError(sc.service)
		err = c.writeError(sc.id, err)
	default:
		err = c.w.writeFrame(header{kind: kindResponse, id: sc.id}, resp, c.busy())
		if errors.Is(err, ErrFrameTooLarge) {
			err = c.writeError(sc.id, err)
		}
	}
	sc.entry.scratch.put(buf)
	c.finish(sc)
	if err != nil {
		c.close()
	}
}

// writeError answers request id with err. A remote message too long
// for a frame is cut short rather than failing the connection.
func (c *serverConn) writeError(id uint64, err error) error {
	var b [128]byte
	p := appendError(b[:0], err)
	if limit := c.srv.cfg.MaxFrameSize - headerSize; len(p) > limit {
		p = p[:limit]
	}
	return c.w.writeFrame(header{kind: kindError, id: id}, p, c.busy())
}

// finish forgets a call whose handler returned, frees its slot and, when
// draining and idle, closes the connection.
func (c *serverConn) finish(sc *serverCall) {
	c.srv.counters.inFlight.Add(-1)
	sc.cancel(context.Canceled, false)
	c.mu.Lock()
	delete(c.calls, sc.id)
	idle := c.draining && len(c.calls) == 0
	c.mu.Unlock()
	c.release(sc)
	if idle {
		c.w.whenFlushed(c.close)
	}
}

// handleCancel cancels the running call id, if any: the caller gave up.
func (c *serverConn) handleCancel(id uint64) {
	c.mu.Lock()
	sc := c.calls[id]
	c.mu.Unlock()
	if sc != nil {
		sc.cancel(context.Canceled, true)
	}
}

// acquire takes an in-flight slot and the bytes of a frame whose payload
// is n bytes, waiting while either is short. It reports false, holding
// nothing, if the connection closes first.
func (c *serverConn) acquire(n int) bool {
	select {
	case c.sem <- struct{}{}:
	case <-c.done:
		return false
	}
	if !c.srv.budget.acquire(frameBytes(n), c.done) {
		<-c.sem
		return false
	}
	return true
}

// busy reports whether other calls than the caller's are running.
func (c *serverConn) busy() bool { return len(c.sem) > 1 }

// release gives back the slot and bytes of sc.
func (c *serverConn) release(sc *serverCall) {
	c.srv.budget.release(frameBytes(len(sc.payload)))
	<-c.sem
}

// frameBytes is what a frame with an n-byte payload counts against the
// budget of bytes in flight.
func frameBytes(n int) int64 { return int64(headerSize + n) }

// drain starts a graceful close: new calls are refused and the
// connection closes once the running ones have answered.
func (c *serverConn) drain() {
	c.mu.Lock()
	c.draining = true
	idle := len(c.calls) == 0
	c.mu.Unlock()
	if idle {
		c.w.whenFlushed(c.close)
	}
}

// close shuts the connection and cancels every running call. Any
// goroutine may call it, any number of times.
func (c *serverConn) close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	calls := make([]*serverCall, 0, len(c.calls)+1)
	for _, sc := range c.calls {
		calls = append(calls, sc)
	}
	if c.notified != nil {
		calls = append(calls, c.notified)
	}
	c.mu.Unlock()
	close(c.done)
	c.nc.Close()
	for _, sc := range calls {
		sc.cancel(context.Canceled, false)
	}
}
