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
	"time"
)

// Client calls methods over one connection. Any number of goroutines may
// call at once: their requests share the connection, matched to their
// responses by request id, and their frames are coalesced into few
// writes under load. A Client is safe for concurrent use.
//
// A Client whose connection breaks stays broken: every call fails with
// ErrClosed. A Pool replaces broken clients.
//
// Answers are read by whoever holds the reader role. A caller that finds
// the connection quiet (nobody reading, no other call waiting) takes the
// role itself and reads its own answer, which saves the goroutine
// wake-up of a hand-off; otherwise the client's watcher goroutine reads
// and hands each answer to its caller. The watcher also takes the role
// when the connection has been quiet for a while, so that a broken
// connection is noticed (see Done) and late answers drained while
// nobody calls.
type Client struct {
	local *Server // set for a client from Server.LocalClient; nothing else is then used

	nc         net.Conn
	cfg        ClientConfig
	br         *bufio.Reader // read only by the holder of the reader role
	w          frameWriter
	calls      sync.Pool     // *call, reused across calls
	dead       chan struct{} // closed when the connection is gone
	readerDone chan struct{} // closed when the watcher goroutine returns
	toWatcher  chan struct{} // capacity 1: the reader role is handed to the watcher
	inflight   atomic.Int32  // calls between register and their end

	mu      sync.Mutex // protects the following
	nextID  uint64
	pending map[uint64]*call // calls waiting for a response, by request id
	err     error            // why the client stopped; nil while it works
	role    readerRole       // who reads the connection
	leader  uint64           // request id of the caller holding roleCaller
	stopped uint64           // request id of a leader whose read was interrupted
	quietAt uint64           // nextID when the watcher last found no reader

	part partialFrame // an answer partly read; the reader role's holder owns it
}

// partialFrame is an answer whose reading was interrupted, to be
// finished by the next holder of the reader role.
type partialFrame struct {
	h   header
	p   []byte // nil when no frame is partly read
	got int    // bytes of p read so far
}

// readerRole says who holds the right to read the connection.
type readerRole int

const (
	roleFree    readerRole = iota // nobody reads
	roleCaller                    // a caller reads until its own answer comes
	roleWatcher                   // the watcher goroutine reads
)

// call is one outstanding request. The reader hands over the answer by
// filling the fields and sending on done, which is buffered so that the
// reader never waits for the caller.
type call struct {
	done    chan struct{} // capacity 1; one send per use
	kind    kind          // kindResponse or kindError
	payload []byte
	err     error // the connection broke before an answer came
}

// Dial connects to the server at addr (host:port over TCP, or whatever
// cfg.Dial understands), with TLS if cfg.TLS is set, and returns a client
// using the connection. The context bounds the dial and the TLS
// handshake only.
func Dial(ctx context.Context, addr string, cfg ClientConfig) (*Client, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	nc, err := cfg.connect(ctx, addr)
	if err != nil {
		return nil, fmt.Errorf("rpc: dial %s: %w", addr, err)
	}
	return newClient(nc, cfg), nil
}

// connect opens the connection of Dial: cfg.Dial's or TCP through
// cfg.Dialer, with TLS over it if cfg.TLS is set.
func (cfg ClientConfig) connect(ctx context.Context, addr string) (net.Conn, error) {
	switch {
	case cfg.Dial != nil:
		return cfg.connectWithDial(ctx, addr)
	case cfg.TLS != nil:
		d := tls.Dialer{NetDialer: cfg.Dialer, Config: cfg.TLS}
		return d.DialContext(ctx, "tcp", addr)
	}
	return cfg.Dialer.DialContext(ctx, "tcp", addr)
}

// connectWithDial opens a connection with cfg.Dial and runs the TLS
// handshake over it, if cfg.TLS is set.
func (cfg ClientConfig) connectWithDial(ctx context.Context, addr string) (net.Conn, error) {
	nc, err := cfg.Dial(ctx, addr)
	if err != nil || cfg.TLS == nil {
		return nc, err
	}
	tc := tls.Client(nc, tlsFor(cfg.TLS, addr))
	if err := tc.HandshakeContext(ctx); err != nil {
		nc.Close()
		return nil, err
	}
	return tc, nil
}

// tlsFor returns c with the server name taken from addr when c names
// none, as tls.Dialer does, so that the certificate is checked against
// the address dialled.
func tlsFor(c *tls.Config, addr string) *tls.Config {
	if c.ServerName != "" {
		return c
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	c = c.Clone()
	c.ServerName = host
	return c
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
		br:         bufio.NewReaderSize(nc, cfg.ReadBufferSize),
		w:          frameWriter{w: nc, max: cfg.MaxFrameSize},
		dead:       make(chan struct{}),
		readerDone: make(chan struct{}),
		toWatcher:  make(chan struct{}, 1),
		pending:    make(map[uint64]*call),
		role:       roleWatcher,
	}
	c.calls.New = func() any { return &call{done: make(chan struct{}, 1)} }
	go c.watch()
	return c
}

// Close closes the connection, fails the calls waiting on it with
// ErrClosed and waits for the client's watcher goroutine to return.
// Closing a client from Server.LocalClient does nothing.
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
	id, lead, err := c.register(cl)
	if err != nil {
		c.calls.Put(cl)
		return nil, err
	}
	h := header{kind: kindRequest, id: id, service: service, method: method, deadline: deadlineOf(ctx)}
	if err := c.w.writeFrame(h, payload, c.inflight.Load() > 1); err != nil {
		err = c.writeFailed(cl, id, err)
		if lead {
			c.passRole()
		}
		return nil, err
	}
	if lead {
		return c.lead(ctx, cl, id)
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

// register gives cl a request id and records it as pending. It reports
// whether the caller is to read its own answer: the role goes to it only
// when nobody reads and no other call waits. When nobody reads but
// others wait, the role goes to the watcher.
func (c *Client) register(cl *call) (id uint64, lead bool, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, false, c.err
	}
	c.nextID++
	c.pending[c.nextID] = cl
	c.inflight.Add(1)
	if c.role != roleFree {
		return c.nextID, false, nil
	}
	if len(c.pending) == 1 {
		c.role, c.leader = roleCaller, c.nextID
		return c.nextID, true, nil
	}
	c.handToWatcherLocked()
	return c.nextID, false, nil
}

// handToWatcherLocked gives the reader role to the watcher.
func (c *Client) handToWatcherLocked() {
	c.role = roleWatcher
	select {
	case c.toWatcher <- struct{}{}:
	default:
	}
}

// passRole is called by a caller giving up the reader role: with calls
// still waiting the watcher reads for them, else nobody reads.
func (c *Client) passRole() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.clearInterruptLocked()
	if len(c.pending) > 0 {
		c.handToWatcherLocked()
	} else {
		c.role = roleFree
	}
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

// lead reads answers, handing others' to their callers, until cl's own
// comes or ctx ends, then passes the reader role on.
func (c *Client) lead(ctx context.Context, cl *call, id uint64) ([]byte, error) {
	stop := c.interruptOnDone(ctx, id)
	defer stop()
	for {
		got, err := c.readAnswer()
		if err != nil && c.wasInterrupted(id) {
			return nil, c.leaderGaveUp(ctx, cl, id)
		}
		if err != nil {
			c.fail(err)
			break // fail answered cl, which was still pending
		}
		if got == cl {
			c.passRole()
			return c.finishCall(cl)
		}
		if got != nil {
			got.done <- struct{}{}
		}
	}
	<-cl.done
	return c.finishCall(cl)
}

// interruptOnDone arranges for the leader's blocked read to be cut short
// when ctx ends, by a read deadline in the past, and returns the
// function that cancels the arrangement.
func (c *Client) interruptOnDone(ctx context.Context, id uint64) func() bool {
	if ctx.Done() == nil {
		return func() bool { return false }
	}
	return context.AfterFunc(ctx, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.role == roleCaller && c.leader == id {
			c.stopped = id
			_ = c.nc.SetReadDeadline(aLongTimeAgo)
		}
	})
}

// aLongTimeAgo is a read deadline that has passed.
var aLongTimeAgo = time.Unix(1, 0)

// wasInterrupted reports whether the leader id's read failed because
// its context ended, and if so lets reads block again.
func (c *Client) wasInterrupted(id uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped != id {
		return false
	}
	c.clearInterruptLocked()
	return true
}

// clearInterruptLocked undoes the read deadline of an interrupted
// leader, if any.
func (c *Client) clearInterruptLocked() {
	if c.stopped != 0 {
		c.stopped = 0
		_ = c.nc.SetReadDeadline(time.Time{})
	}
}

// leaderGaveUp ends a leader's call whose context ended: the role
// passes on, the call is forgotten and the server asked to cancel it.
func (c *Client) leaderGaveUp(ctx context.Context, cl *call, id uint64) error {
	pending := c.abandon(cl, id)
	c.passRole()
	if pending {
		_ = c.w.writeFrame(header{kind: kindCancel, id: id}, nil, false)
	}
	return ctx.Err()
}

// finishCall returns cl's result and recycles it.
func (c *Client) finishCall(cl *call) ([]byte, error) {
	p, err := cl.result()
	c.recycle(cl)
	return p, err
}

// watch is the client's watcher goroutine: it reads answers whenever it
// holds the reader role, until the connection fails.
func (c *Client) watch() {
	defer close(c.readerDone)
	t := time.NewTimer(watchQuiet)
	defer t.Stop()
	for {
		if err := c.readAsWatcher(); err != nil {
			c.fail(err)
			return
		}
		if !c.awaitRole(t) {
			return
		}
	}
}

// watchQuiet is how long a connection must be quiet, with no call made
// and nobody reading, before the watcher reads it, so that a broken
// connection is noticed while nobody calls. Callers that keep calling
// take the role themselves in between, at no cost to them.
const watchQuiet = 10 * time.Millisecond

// awaitRole waits until the watcher is handed the reader role, or takes
// it once the connection has been quiet for watchQuiet. It reports false
// if the client breaks first.
func (c *Client) awaitRole(t *time.Timer) bool {
	for {
		t.Reset(watchQuiet)
		select {
		case <-c.toWatcher:
			return true
		case <-c.dead:
			return false
		case <-t.C:
			if c.takeIfQuiet() {
				return true
			}
		}
	}
}

// takeIfQuiet gives the watcher the reader role if nobody holds it and
// no call was made since the last look.
func (c *Client) takeIfQuiet() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	quiet := c.role == roleFree && c.quietAt == c.nextID
	c.quietAt = c.nextID
	if quiet {
		c.role = roleWatcher
	}
	return quiet
}

// readAsWatcher reads and hands over answers while the watcher holds the
// reader role. It gives the role up once no call waits and no byte is
// buffered, so that the next caller may read for itself.
func (c *Client) readAsWatcher() error {
	for {
		got, err := c.readAnswer()
		if err != nil {
			return err
		}
		if got != nil {
			got.done <- struct{}{}
		}
		if c.releaseIfIdle() {
			return nil
		}
	}
}

// releaseIfIdle frees the watcher's reader role when nothing is left for
// it to read.
func (c *Client) releaseIfIdle() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.role != roleWatcher || len(c.pending) > 0 || c.br.Buffered() > 0 {
		return false
	}
	select {
	case <-c.toWatcher: // a stale hand-over; the role is already ours
	default:
	}
	c.role = roleFree
	return true
}

// readAnswer reads one answer and returns its call, filled in but not
// yet signalled, or nil for an answer nobody waits for any more (its
// caller gave up), which is dropped. An interrupted read leaves the
// frame in c.part for the next reader to finish.
func (c *Client) readAnswer() (*call, error) {
	if c.part.p == nil {
		h, n, err := readHeader(c.br, c.cfg.MaxFrameSize)
		if err != nil {
			return nil, err
		}
		if h.kind != kindResponse && h.kind != kindError {
			return nil, fmt.Errorf("%w: kind %d sent to a client", ErrMalformedFrame, h.kind)
		}
		c.part = partialFrame{h: h, p: make([]byte, n)}
	}
	for c.part.got < len(c.part.p) {
		n, err := c.br.Read(c.part.p[c.part.got:])
		c.part.got += n
		if err != nil {
			return nil, eofError(1, err)
		}
	}
	h, p := c.part.h, c.part.p
	c.part = partialFrame{}
	return c.take(h, p), nil
}

// take removes the call waiting for the answer h and fills it in.
func (c *Client) take(h header, p []byte) *call {
	c.mu.Lock()
	cl := c.pending[h.id]
	delete(c.pending, h.id)
	c.mu.Unlock()
	if cl != nil {
		cl.kind, cl.payload = h.kind, p
	}
	return cl
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
