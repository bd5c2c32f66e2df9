package rpc

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
)

// Client calls methods over one connection. Any number of goroutines may
// call at once: their requests share the connection, matched to their
// responses by request id, and their frames are coalesced into few
// writes under load. A Client is safe for concurrent use.
//
// A Client whose connection breaks stays broken: every call fails with
// ErrClosed. A Pool replaces broken clients.
type Client struct {
	local *Server // set for a client from Server.LocalClient; nothing else is then used

	nc         net.Conn
	cfg        ClientConfig
	w          frameWriter
	calls      sync.Pool     // *call, reused across calls
	dead       chan struct{} // closed when the connection is gone
	readerDone chan struct{} // closed when the reader goroutine returns
	inflight   atomic.Int32  // calls between register and their end

	mu      sync.Mutex // protects the following
	nextID  uint64
	pending map[uint64]*call // calls waiting for a response, by request id
	err     error            // why the client stopped; nil while it works
}

// call is one outstanding request. The reader hands over the answer by
// filling the fields and sending on done, which is buffered so that the
// reader never waits for the caller.
type call struct {
	done    chan struct{} // capacity 1; one send per use
	kind    kind          // kindResponse or kindError
	payload []byte
	err     error // the connection broke before an answer came
}

// Dial connects to the server at addr (host:port over TCP), with TLS if
// cfg.TLS is set, and returns a client using the connection. The context
// bounds the dial and the TLS handshake only.
func Dial(ctx context.Context, addr string, cfg ClientConfig) (*Client, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	var nc net.Conn
	if cfg.TLS != nil {
		d := tls.Dialer{NetDialer: cfg.Dialer, Config: cfg.TLS}
		nc, err = d.DialContext(ctx, "tcp", addr)
	} else {
		nc, err = cfg.Dialer.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return nil, fmt.Errorf("rpc: dial %s: %w", addr, err)
	}
	return newClient(nc, cfg), nil
}

// NewClient returns a client using nc, which it owns from then on and
// closes on Close. It fails if cfg holds a bad value.
func NewClient(nc net.Conn, cfg ClientConfig) (*Client, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return newClient(nc, cfg), nil
}

// newClient starts the reader goroutine of a client on nc.
func newClient(nc net.Conn, cfg ClientConfig) *Client {
	c := &Client{
		nc:         nc,
		cfg:        cfg,
		w:          frameWriter{w: nc, max: cfg.MaxFrameSize},
		dead:       make(chan struct{}),
		readerDone: make(chan struct{}),
		pending:    make(map[uint64]*call),
	}
	c.calls.New = func() any { return &call{done: make(chan struct{}, 1)} }
	go c.readLoop()
	return c
}

// Close closes the connection, fails the calls waiting on it with
// ErrClosed and waits for the client's goroutine to return. Closing a
// client from Server.LocalClient does nothing.
func (c *Client) Close() error {
	if c.local != nil {
		return nil
	}
	c.fail(ErrClosed)
	<-c.readerDone
	return nil
}

// Done returns a channel closed when the client's connection is gone,
// whether by Close or by a failure. The client of Server.LocalClient
// never breaks, and its Done returns nil.
func (c *Client) Done() <-chan struct{} {
	if c.local != nil {
		return nil
	}
	return c.dead
}

// call sends one request and waits for its answer.
func (c *Client) call(ctx context.Context, service, method uint64, payload []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cl := c.calls.Get().(*call)
	id, err := c.register(cl)
	if err != nil {
		c.calls.Put(cl)
		return nil, err
	}
	h := header{kind: kindRequest, id: id, service: service, method: method, deadline: deadlineOf(ctx)}
	if err := c.w.writeFrame(h, payload, c.inflight.Load() > 1); err != nil {
		return nil, c.writeFailed(cl, id, err)
	}
	return c.wait(ctx, cl, id)
}

// notify writes a one-way request; see Method.Notify.
func (c *Client) notify(ctx context.Context, service, method uint64, payload []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	err := c.err
	c.mu.Unlock()
	if err != nil {
		return err
	}
	h := header{kind: kindNotify, service: service, method: method, deadline: deadlineOf(ctx)}
	if err := c.w.writeFrame(h, payload, c.inflight.Load() > 0); err != nil {
		return c.sendError(err)
	}
	return nil
}

// register gives cl a request id and records it as pending.
func (c *Client) register(cl *call) (uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	c.nextID++
	c.pending[c.nextID] = cl
	c.inflight.Add(1)
	return c.nextID, nil
}

// writeFailed cleans up after a request that could not be written.
func (c *Client) writeFailed(cl *call, id uint64, err error) error {
	err = c.sendError(err)
	c.abandon(cl, id)
	return err
}

// sendError turns a failed frame write into the caller's error. A frame
// too large was not sent and leaves the client working; any other error
// means a broken connection, which is closed.
func (c *Client) sendError(err error) error {
	if errors.Is(err, ErrFrameTooLarge) {
		return err
	}
	c.fail(err)
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// wait waits for the answer to request id, or for ctx to end, in which
// case the server is asked to cancel the handler.
func (c *Client) wait(ctx context.Context, cl *call, id uint64) ([]byte, error) {
	select {
	case <-cl.done:
		p, err := cl.result()
		c.recycle(cl)
		if err != nil && ctx.Err() != nil {
			return nil, ctx.Err() // the context ended as the answer came
		}
		return p, err
	case <-ctx.Done():
		if c.abandon(cl, id) {
			_ = c.w.writeFrame(header{kind: kindCancel, id: id}, nil, false) // a broken connection is the reader's to report
		}
		return nil, ctx.Err()
	}
}

// abandon forgets request id and recycles cl. It reports whether the
// request was still pending; if not, the reader has taken cl and is
// about to signal it, so abandon waits for that before reusing cl.
func (c *Client) abandon(cl *call, id uint64) bool {
	c.mu.Lock()
	_, pending := c.pending[id]
	delete(c.pending, id)
	c.mu.Unlock()
	if !pending {
		<-cl.done
	}
	c.recycle(cl)
	return pending
}

// recycle clears cl and puts it back in the pool.
func (c *Client) recycle(cl *call) {
	c.inflight.Add(-1)
	cl.payload, cl.err = nil, nil
	c.calls.Put(cl)
}

// result turns the answer in cl into a payload or an error.
func (cl *call) result() ([]byte, error) {
	switch {
	case cl.err != nil:
		return nil, cl.err
	case cl.kind == kindError:
		return nil, decodeError(cl.payload)
	}
	return cl.payload, nil
}

// readLoop is the client's reader goroutine: it reads answers and hands
// each to its caller until the connection fails.
func (c *Client) readLoop() {
	defer close(c.readerDone)
	br := bufio.NewReaderSize(c.nc, c.cfg.ReadBufferSize)
	for {
		h, n, err := readHeader(br, c.cfg.MaxFrameSize)
		if err == nil {
			err = c.readAnswer(br, h, n)
		}
		if err != nil {
			c.fail(err)
			return
		}
	}
}

// readAnswer reads the payload of an answer and delivers it. An answer
// for a request nobody waits for any more (its caller gave up) is
// dropped.
func (c *Client) readAnswer(br *bufio.Reader, h header, n int) error {
	if h.kind != kindResponse && h.kind != kindError {
		return fmt.Errorf("%w: kind %d sent to a client", ErrMalformedFrame, h.kind)
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(br, p); err != nil {
		return err
	}
	c.mu.Lock()
	cl := c.pending[h.id]
	delete(c.pending, h.id)
	c.mu.Unlock()
	if cl != nil {
		cl.kind, cl.payload = h.kind, p
		cl.done <- struct{}{}
	}
	return nil
}

// fail breaks the client for cause: it closes the connection and fails
// every pending call. Only the first cause is kept.
func (c *Client) fail(cause error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = closedError(cause)
	pending := c.pending
	c.pending = nil
	c.mu.Unlock()
	close(c.dead)
	c.nc.Close()
	for _, cl := range pending {
		cl.err = c.err
		cl.done <- struct{}{}
	}
	if !errors.Is(cause, ErrClosed) {
		c.cfg.Logger.Info("rpc: client connection closed", "remote", c.nc.RemoteAddr(), "err", cause)
	}
}

// closedError wraps the cause of a broken connection in ErrClosed.
func closedError(cause error) error {
	if errors.Is(cause, ErrClosed) || errors.Is(cause, io.EOF) || errors.Is(cause, net.ErrClosed) {
		return ErrClosed
	}
	return fmt.Errorf("%w: %w", ErrClosed, cause)
}

// deadlineOf returns ctx's deadline in unix nanoseconds, or 0.
func deadlineOf(ctx context.Context) int64 {
	if d, ok := ctx.Deadline(); ok {
		return d.UnixNano()
	}
	return 0
}
