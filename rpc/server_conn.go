package rpc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// serverConn serves one connection: a reader goroutine parses frames,
// runs notifications itself and hands requests to worker goroutines,
// which run handlers and write the responses through a shared
// frameWriter.
type serverConn struct {
	srv  *Server
	nc   net.Conn
	w    frameWriter
	sem  chan struct{}    // a token per running request; full means stop reading
	work chan *serverCall // hands requests to idle workers; unbuffered
	done chan struct{}    // closed when the connection is closed

	workers int // workers started; touched only by the reader goroutine

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
		w:     frameWriter{w: nc, max: s.cfg.MaxFrameSize},
		sem:   make(chan struct{}, s.cfg.MaxInFlight),
		work:  make(chan *serverCall),
		done:  make(chan struct{}),
		calls: make(map[uint64]*serverCall),
	}
}

// serve is the connection's reader goroutine.
func (c *serverConn) serve() {
	defer c.srv.wg.Done()
	err := c.readLoop()
	c.close()
	c.srv.forget(c)
	if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
		c.srv.cfg.Logger.Info("rpc: connection closed", "remote", c.nc.RemoteAddr(), "err", err)
	}
}

// readLoop reads frames until the connection fails or the peer breaks
// the protocol.
func (c *serverConn) readLoop() error {
	br := bufio.NewReaderSize(c.nc, c.srv.cfg.ReadBufferSize)
	for {
		h, n, err := readHeader(br, c.srv.cfg.MaxFrameSize)
		if err != nil {
			return err
		}
		if err := c.handleFrame(br, h, n); err != nil {
			return err
		}
	}
}

// handleFrame acts on one frame whose payload of n bytes is still unread.
func (c *serverConn) handleFrame(br *bufio.Reader, h header, n int) error {
	switch h.kind {
	case kindRequest:
		return c.handleRequest(br, h, n)
	case kindCancel:
		c.handleCancel(h.id)
		_, err := br.Discard(n)
		return err
	case kindNotify:
		return c.handleNotify(br, h, n)
	default:
		return fmt.Errorf("%w: kind %d sent to a server", ErrMalformedFrame, h.kind)
	}
}

// handleRequest reads a request and starts its handler. It waits for a
// free slot first, so a connection at its in-flight bound is not read.
func (c *serverConn) handleRequest(br *bufio.Reader, h header, n int) error {
	if !c.acquire() {
		return ErrClosed
	}
	sc := newServerCall(c, h, n)
	if _, err := io.ReadFull(br, sc.payload); err != nil {
		c.release()
		return err
	}
	e, err := c.admit(sc)
	if err != nil {
		c.release()
		if errors.Is(err, ErrMalformedFrame) {
			return err
		}
		return c.writeError(h.id, err)
	}
	sc.entry = e
	c.dispatch(sc)
	return nil
}

// handleNotify runs a one-way request on the reader goroutine itself, so
// the notifications of one connection are handled in the order they were
// sent and cost no hand-off to a worker; their handlers must be quick.
// Nothing is answered: errors, an unknown method among them, are logged.
func (c *serverConn) handleNotify(br *bufio.Reader, h header, n int) error {
	sc := newServerCall(c, h, n)
	if _, err := io.ReadFull(br, sc.payload); err != nil {
		return err
	}
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
		c.run(sc)
		select {
		case sc = <-c.work:
		case <-c.done:
			return
		}
	}
}

// run runs one handler and writes its answer, unless the caller has
// cancelled the call and so no longer waits for one.
func (c *serverConn) run(sc *serverCall) {
	resp, buf, err := sc.entry.serve(sc, sc.payload)
	switch {
	case sc.cancelledByPeer():
	case err != nil:
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
	sc.cancel(context.Canceled, false)
	c.mu.Lock()
	delete(c.calls, sc.id)
	idle := c.draining && len(c.calls) == 0
	c.mu.Unlock()
	c.release()
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

// acquire takes an in-flight slot, waiting while all are taken. It
// reports false if the connection closes first.
func (c *serverConn) acquire() bool {
	select {
	case c.sem <- struct{}{}:
		return true
	case <-c.done:
		return false
	}
}

// busy reports whether other calls than the caller's are running.
func (c *serverConn) busy() bool { return len(c.sem) > 1 }

// release gives an in-flight slot back.
func (c *serverConn) release() { <-c.sem }

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
