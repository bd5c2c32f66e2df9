package rpc

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// serverState is where a Server is in its life.
type serverState int

const (
	stateRunning  serverState = iota
	stateDraining             // Shutdown called: no new calls, running ones finish
	stateClosed               // Close called: everything cancelled
)

// Server answers calls for the services added to it, on any number of
// listeners. Handlers run concurrently, so a slow call never holds up
// the others on its connection for long: a call runs on a worker
// goroutine, or, when its method has proved quick and no other frame
// waits behind it, on the connection's reader, which another goroutine
// takes over if the handler turns out slow (see the package doc).
// Notifications run in order on the connection's reader (see
// Method.Notify). A Server is safe for concurrent use.
type Server struct {
	cfg      Config
	services atomic.Pointer[map[uint64]*Service] // copy on write; read without locks
	regMu    sync.Mutex                          // serialises AddService
	local    *Client                             // the in-process client, see LocalClient
	counters serverCounters                      // stats.go

	budget    *byteBudget   // request bytes in flight, over all connections
	connSlots chan struct{} // a token per connection served; nil for no limit
	stopping  chan struct{} // closed by Shutdown or Close
	closing   chan struct{} // closed by Close
	rescue    rescuer

	mu        sync.Mutex // protects the following
	state     serverState
	listeners map[net.Listener]struct{}
	conns     map[*serverConn]struct{}
	rescuing  bool // the rescue goroutine has been started

	wg      sync.WaitGroup // connection readers and handler workers
	localWG sync.WaitGroup // in-process calls running, waited for by Shutdown
}

// NewServer returns a server with no services. It fails if cfg holds a
// bad value.
func NewServer(cfg Config) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:       cfg,
		budget:    newByteBudget(cfg.MaxInFlightBytes),
		stopping:  make(chan struct{}),
		closing:   make(chan struct{}),
		rescue:    newRescuer(),
		listeners: make(map[net.Listener]struct{}),
		conns:     make(map[*serverConn]struct{}),
	}
	if cfg.MaxConnections > 0 {
		s.connSlots = make(chan struct{}, cfg.MaxConnections)
	}
	s.services.Store(&map[uint64]*Service{})
	s.local = &Client{local: s}
	return s, nil
}

// AddService makes svc's methods callable on s. It fails with
// ErrDuplicate when a service with the same id is already there.
func (s *Server) AddService(svc *Service) error {
	s.regMu.Lock()
	defer s.regMu.Unlock()
	old := *s.services.Load()
	if _, dup := old[svc.id]; dup {
		return fmt.Errorf("%w: service %s", ErrDuplicate, svc.name)
	}
	next := maps.Clone(old)
	next[svc.id] = svc
	s.counters.addService(svc)
	s.services.Store(&next)
	return nil
}

// lookup finds the method for a request.
func (s *Server) lookup(service, method uint64) (*entry, error) {
	svc := (*s.services.Load())[service]
	if svc == nil {
		return nil, ErrServiceNotFound
	}
	e := svc.method(method)
	if e == nil {
		return nil, ErrMethodNotFound
	}
	return e, nil
}

// Serve accepts connections on ln and serves each on its own goroutine
// until Close or Shutdown, when it returns ErrServerClosed. It closes ln
// before returning.
func (s *Server) Serve(ln net.Listener) error {
	if !s.addListener(ln) {
		ln.Close()
		return ErrServerClosed
	}
	defer s.removeListener(ln)
	var backoff time.Duration
	for {
		if !s.takeConnSlot() {
			return ErrServerClosed
		}
		nc, err := ln.Accept()
		if err != nil {
			s.releaseConnSlot()
			if backoff, err = s.acceptFailed(err, backoff); err != nil {
				return err
			}
			continue
		}
		backoff = 0
		s.startConn(nc)
	}
}

// takeConnSlot waits, while MaxConnections connections are being served,
// for one of them to close. It reports false if the server stops first.
func (s *Server) takeConnSlot() bool {
	if s.connSlots == nil {
		return true
	}
	select {
	case s.connSlots <- struct{}{}:
		return true
	case <-s.stopping:
		return false
	}
}

// releaseConnSlot gives back the slot of a connection that is over.
func (s *Server) releaseConnSlot() {
	if s.connSlots != nil {
		<-s.connSlots
	}
}

// acceptFailed decides what a failed Accept means: the server closed,
// a fatal listener error, or a passing one (such as too many open
// files) that is retried after a growing pause.
func (s *Server) acceptFailed(err error, backoff time.Duration) (time.Duration, error) {
	if s.stopped() {
		return 0, ErrServerClosed
	}
	// Like net/http, retry errors the net package calls temporary
	// (EMFILE, ECONNABORTED, ...); the method is deprecated on net.Error
	// because its meaning is vague, which is why it is asked for here by
	// a local interface.
	var temp interface{ Temporary() bool }
	if !errors.As(err, &temp) || !temp.Temporary() {
		return 0, fmt.Errorf("rpc: accept: %w", err)
	}
	backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
	s.cfg.Logger.Warn("rpc: accept failed; retrying", "err", err, "after", backoff)
	time.Sleep(backoff)
	return backoff, nil
}

// addListener records ln so that Close can close it.
func (s *Server) addListener(ln net.Listener) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != stateRunning {
		return false
	}
	s.listeners[ln] = struct{}{}
	return true
}

// removeListener forgets and closes ln.
func (s *Server) removeListener(ln net.Listener) {
	s.mu.Lock()
	delete(s.listeners, ln)
	s.mu.Unlock()
	ln.Close()
}

// stopped reports whether Close or Shutdown has been called.
func (s *Server) stopped() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state != stateRunning
}

// startConn serves nc on a new goroutine, unless the server is stopping.
func (s *Server) startConn(nc net.Conn) {
	if s.cfg.TLS != nil {
		nc = tls.Server(nc, s.cfg.TLS)
	}
	c := newServerConn(s, nc)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != stateRunning {
		nc.Close()
		s.releaseConnSlot()
		return
	}
	s.conns[c] = struct{}{}
	s.startRescuerLocked()
	s.wg.Add(1)
	go c.serve()
}

// forget drops a closed connection and frees its slot. The last one of
// a stopped server lets the rescue goroutine end at once.
func (s *Server) forget(c *serverConn) {
	s.mu.Lock()
	delete(s.conns, c)
	last := len(s.conns) == 0 && s.state != stateRunning
	s.mu.Unlock()
	s.releaseConnSlot()
	if last {
		s.rescue.poke()
	}
}

// stop moves the server to state, closes its listeners and returns its
// connections. It reports false if the server was already at or past
// state.
func (s *Server) stop(state serverState) ([]*serverConn, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state >= state {
		return nil, false
	}
	if s.state == stateRunning {
		close(s.stopping)
	}
	if state == stateClosed {
		close(s.closing)
	}
	s.state = state
	for ln := range s.listeners {
		ln.Close()
	}
	conns := make([]*serverConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	return conns, true
}

// Close stops the server at once: it closes the listeners and every
// connection, cancels the contexts of running handlers and waits for
// them and for every goroutine the server started to return. Handlers
// must therefore honour their context. In-process calls already running
// are not waited for. Close is idempotent and returns nil.
func (s *Server) Close() error {
	conns, _ := s.stop(stateClosed)
	for _, c := range conns {
		c.close()
	}
	s.wg.Wait()
	return nil
}

// Shutdown stops the server gracefully: it closes the listeners, refuses
// new calls with ErrShutdown, lets running calls (in-process ones too)
// finish and send their responses, then closes each connection. If ctx
// ends first, Shutdown calls Close and returns the context's error.
func (s *Server) Shutdown(ctx context.Context) error {
	conns, _ := s.stop(stateDraining)
	for _, c := range conns {
		c.drain()
	}
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		s.localWG.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.Close()
		<-done
		return ctx.Err()
	}
}
