package rpc

import (
	"context"
	"sync"
)

// Pool keeps one Client per server address, dialled on first use (by
// ClientConfig.Dial when it is set, by TCP otherwise). A client whose
// connection broke is dropped and the next request for its address dials
// again, so a restarted server is reached without the caller doing
// anything. Addresses registered with SetLocal are served in process. A
// Pool is safe for concurrent use.
type Pool struct {
	cfg ClientConfig

	mu      sync.Mutex // protects the following
	entries map[string]*poolEntry
	local   map[string]*Server
	closed  bool
}

// poolEntry is the client for one address, or the dial making it.
type poolEntry struct {
	ready  chan struct{} // closed when the dial is over
	client *Client       // set before ready is closed, if the dial worked
	err    error         // set before ready is closed, if it failed
}

// NewPool returns an empty pool whose clients use cfg. It fails if cfg
// holds a bad value.
func NewPool(cfg ClientConfig) (*Pool, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Pool{cfg: cfg, entries: make(map[string]*poolEntry), local: make(map[string]*Server)}, nil
}

// SetLocal makes calls to addr go to s in process, through
// s.LocalClient, instead of over the network. A nil s removes addr's
// in-process route.
func (p *Pool) SetLocal(addr string, s *Server) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if s == nil {
		delete(p.local, addr)
		return
	}
	p.local[addr] = s
}

// Client returns the client for addr, dialling if there is none or the
// last one broke. Concurrent requests for the same address share one
// dial; ctx bounds the wait.
func (p *Pool) Client(ctx context.Context, addr string) (*Client, error) {
	e, local, dial, err := p.entry(addr)
	if err != nil || local != nil {
		return local, err
	}
	if dial {
		p.dial(ctx, addr, e)
	}
	select {
	case <-e.ready:
		return e.client, e.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// entry returns addr's entry, making a fresh one (and reporting that the
// caller must dial) if there is none or its client broke. For an
// in-process address it returns the local client instead.
func (p *Pool) entry(addr string) (e *poolEntry, local *Client, dial bool, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, nil, false, ErrClosed
	}
	if s := p.local[addr]; s != nil {
		return nil, s.LocalClient(), false, nil
	}
	if e = p.entries[addr]; e != nil && !e.broken() {
		return e, nil, false, nil
	}
	if e != nil && e.client != nil {
		e.client.Close() // only its reader is left, and it is finishing
	}
	e = &poolEntry{ready: make(chan struct{})}
	p.entries[addr] = e
	return e, nil, true, nil
}

// dial fills e. A failed dial is forgotten so that the next request
// tries again; a dial that ends after Close is undone.
func (p *Pool) dial(ctx context.Context, addr string, e *poolEntry) {
	c, err := Dial(ctx, addr, p.cfg)
	p.mu.Lock()
	if err == nil && p.closed {
		c.Close()
		c, err = nil, ErrClosed
	}
	if err != nil && p.entries[addr] == e {
		delete(p.entries, addr)
	}
	e.client, e.err = c, err
	p.mu.Unlock()
	close(e.ready)
}

// broken reports whether e's dial is over and gave no working client.
func (e *poolEntry) broken() bool {
	select {
	case <-e.ready:
	default:
		return false
	}
	if e.err != nil {
		return true
	}
	select {
	case <-e.client.Done():
		return true
	default:
		return false
	}
}

// Close closes every client in the pool; later requests fail with
// ErrClosed. Servers registered with SetLocal are left alone.
func (p *Pool) Close() error {
	p.mu.Lock()
	p.closed = true
	entries := p.entries
	p.entries = nil
	p.mu.Unlock()
	for _, e := range entries {
		<-e.ready
		if e.client != nil {
			e.client.Close()
		}
	}
	return nil
}
