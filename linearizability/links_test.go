package linearizability

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"sync"
	"time"
)

// Errors of the client links, as a client's rpc connection sees them.
var (
	errRefused = errors.New("connection refused: the server is down or cut off")
	errCut     = errors.New("connection cut: a request or reply was lost")
)

// links carries the rpc connections between a cluster's clients and its
// servers, inside the bubble: each running server's rpc.Server accepts on
// a memListener, and a client's dial hands that listener one end of a
// net.Pipe. The links follow the cluster's faults. A write takes a hop's
// delay; one the network loses cuts its connection as it is written, as a
// reset TCP connection would, so a client whose request was lost cannot
// tell it from a lost reply to a request that was served. A crashed
// server, or one its client is cut off from, refuses dials and loses its
// connections.
type links struct {
	c *cluster // whose faults and client partitions the links follow

	mu        sync.Mutex // protects the following
	rng       *rand.Rand
	listeners map[uint64]*memListener // by server id, while it runs
	open      map[*pipePair]struct{}
	stats     linkStats
}

// linkStats counts what happened on the links.
type linkStats struct {
	dials, refused            int
	lostRequests, lostReplies int // writes that cut their connection
	cuts                      int // connections cut by crashes and partitions
}

func newLinks(c *cluster, seed uint64) *links {
	return &links{c: c, rng: rand.New(rand.NewPCG(seed, 0x6c696e6b)),
		listeners: map[uint64]*memListener{}, open: map[*pipePair]struct{}{}}
}

// up makes server id accept connections on ln.
func (l *links) up(id uint64, ln *memListener) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.listeners[id] = ln
}

// down refuses dials to server id and cuts its connections: it crashed.
func (l *links) down(id uint64) {
	l.mu.Lock()
	delete(l.listeners, id)
	l.mu.Unlock()
	l.cutWhere(func(p *pipePair) bool { return p.server == id })
}

// cutOff cuts the connections of client to the servers it can no longer
// reach.
func (l *links) cutOff(client int) {
	l.cutWhere(func(p *pipePair) bool { return p.client == client && !l.c.reachable(client, p.server) })
}

func (l *links) cutWhere(match func(*pipePair) bool) {
	l.mu.Lock()
	cut := takeWhere(l.open, match)
	l.stats.cuts += len(cut)
	l.mu.Unlock()
	for _, p := range cut {
		p.cut()
	}
}

// dial connects from's client to the server at addr, after a hop's delay
// for the handshake, unless the server is down or cut off from it.
func (l *links) dial(ctx context.Context, from *clientLinks, addr string) (net.Conn, error) {
	id := l.c.idOf[addr]
	d, _ := l.hop(hopDial)
	from.count(hopDial, d)
	if err := sleep(ctx, d); err != nil {
		return nil, err
	}
	ln, p := l.connect(from, id)
	if ln == nil {
		return nil, errRefused
	}
	select {
	case ln.conns <- p.end(l, false):
		return p.end(l, true), nil
	case <-ln.done:
		l.forget(p)
		return nil, errRefused
	case <-ctx.Done():
		l.forget(p)
		return nil, ctx.Err()
	}
}

// connect returns the listener of server id and a new connection to it
// from from's client, or nil if the server refuses.
func (l *links) connect(from *clientLinks, id uint64) (*memListener, *pipePair) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stats.dials++
	ln := l.listeners[id]
	if ln == nil || !l.c.reachable(from.client, id) {
		l.stats.refused++
		return nil, nil
	}
	cli, srv := net.Pipe()
	p := &pipePair{client: from.client, server: id, from: from, ends: [2]net.Conn{cli, srv}}
	l.open[p] = struct{}{}
	return ln, p
}

// hopKind says what crosses a link.
type hopKind int

const (
	hopDial    hopKind = iota // a connection's handshake, never lost
	hopRequest                // a write of the client's end
	hopReply                  // a write of the server's end
)

// hop draws the delay of one crossing, or its loss, from the current
// faults. A client has one request out at a time, so a request held back
// long would only slow it: hops never take the long delay.
func (l *links) hop(kind hopKind) (time.Duration, bool) {
	f := l.c.faultsNow()
	f.longDelay = 0
	l.mu.Lock()
	defer l.mu.Unlock()
	if kind == hopDial || l.rng.Float64() >= f.drop {
		return f.delay(l.rng), false
	}
	if kind == hopRequest {
		l.stats.lostRequests++
	} else {
		l.stats.lostReplies++
	}
	return 0, true
}

// forget cuts p and drops it from the open connections.
func (l *links) forget(p *pipePair) {
	l.mu.Lock()
	delete(l.open, p)
	l.mu.Unlock()
	p.cut()
}

func (l *links) statsNow() linkStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stats
}

// pipePair is one connection: both ends of a pipe, cut together.
type pipePair struct {
	client int
	server uint64
	from   *clientLinks
	ends   [2]net.Conn // the client's, the server's
	once   sync.Once
}

func (p *pipePair) cut() {
	p.once.Do(func() {
		p.ends[0].Close()
		p.ends[1].Close()
	})
}

// end returns the client's end of p, or the server's, as its owner uses
// it.
func (p *pipePair) end(l *links, client bool) net.Conn {
	if client {
		return &linkEnd{Conn: p.ends[0], l: l, pair: p, kind: hopRequest}
	}
	return &linkEnd{Conn: p.ends[1], l: l, pair: p, kind: hopReply}
}

// linkEnd is one end of a connection: its writes take a hop's delay or
// are lost, and closing it closes the connection.
type linkEnd struct {
	net.Conn
	l    *links
	pair *pipePair
	kind hopKind // what its writes carry
}

func (e *linkEnd) Write(b []byte) (int, error) {
	d, lost := e.l.hop(e.kind)
	e.pair.from.count(e.kind, d)
	if lost {
		e.l.forget(e.pair)
		return 0, errCut
	}
	if err := sleep(context.Background(), d); err != nil {
		return 0, err
	}
	return e.Conn.Write(b)
}

func (e *linkEnd) Close() error {
	e.l.forget(e.pair)
	return nil
}

// clientLinks is one client's side of the links: the dial of its rpc
// pool, and the count of what crossed its connections.
type clientLinks struct {
	l      *links
	client int

	mu      sync.Mutex // protects traffic
	traffic traffic
}

// traffic counts what crossed one client's connections.
type traffic struct {
	requests, replies int           // writes of the client's ends and of the servers'
	delay             time.Duration // the fake time the links held them, dials included
}

// sub returns what crossed between before and t.
func (t traffic) sub(before traffic) traffic {
	return traffic{requests: t.requests - before.requests, replies: t.replies - before.replies, delay: t.delay - before.delay}
}

func (cl *clientLinks) dial(ctx context.Context, addr string) (net.Conn, error) {
	return cl.l.dial(ctx, cl, addr)
}

// count records a crossing that took d.
func (cl *clientLinks) count(kind hopKind, d time.Duration) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	cl.traffic.delay += d
	switch kind {
	case hopRequest:
		cl.traffic.requests++
	case hopReply:
		cl.traffic.replies++
	}
}

func (cl *clientLinks) now() traffic {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return cl.traffic
}

// memListener is a server's listener on the links: Accept returns the
// server's end of each connection dialled to it.
type memListener struct {
	addr  string
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newMemListener(addr string) *memListener {
	return &memListener{addr: addr, conns: make(chan net.Conn), done: make(chan struct{})}
}

func (ln *memListener) Accept() (net.Conn, error) {
	select {
	case c := <-ln.conns:
		return c, nil
	case <-ln.done:
		return nil, net.ErrClosed
	}
}

func (ln *memListener) Close() error {
	ln.once.Do(func() { close(ln.done) })
	return nil
}

func (ln *memListener) Addr() net.Addr { return memAddr(ln.addr) }

// memAddr is the address of a server on the links.
type memAddr string

func (a memAddr) Network() string { return "mem" }
func (a memAddr) String() string  { return string(a) }

// sleep waits d of the bubble's time, or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		// No timer that is due when its channel is first read: the
		// runtime then runs it from the select itself, and under the
		// race detector (Go 1.26.8) that path crashed in TSan twice
		// (SIGSEGV in SlotLock).
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

// takeWhere removes the connections that match picks from open and
// returns them, for the caller to cut once it let go of the lock that
// guards open.
func takeWhere[C comparable](open map[C]struct{}, match func(C) bool) []C {
	var taken []C
	for c := range open {
		if match(c) {
			taken = append(taken, c)
			delete(open, c)
		}
	}
	return taken
}
