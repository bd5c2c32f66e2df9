package rpc

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"

	"github.com/bifrost-go/bifrost/internal/leakcheck"
)

// TestMain fails the run if any goroutine of this package outlives the
// tests: every goroutine must have an owner whose Close waits for it.
func TestMain(m *testing.M) { leakcheck.Main(m, "github.com/bifrost-go/bifrost/rpc") }

// newTestServer returns a server holding svcs, closed when t ends.
func newTestServer(t testing.TB, cfg Config, svcs ...*Service) *Server {
	t.Helper()
	s, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, svc := range svcs {
		if err := s.AddService(svc); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// serveTCP serves s on a loopback listener and returns its address; the
// server is closed and Serve's return awaited when t ends.
func serveTCP(t testing.TB, s *Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveOn(t, s, ln)
	return ln.Addr().String()
}

// serveOn serves s on ln until t ends, then checks that Serve returned
// ErrServerClosed.
func serveOn(t testing.TB, s *Server, ln net.Listener) {
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-served; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
}

// pipeClient serves s on an in-memory listener until t ends and returns
// a client connected to it, closed when t ends (before the server).
func pipeClient(t testing.TB, s *Server) *Client {
	t.Helper()
	ln := newPipeListener()
	serveOn(t, s, ln)
	c, err := NewClient(ln.dial(t), ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// dialTest dials addr and closes the client when t ends.
func dialTest(t testing.TB, addr string, cfg ClientConfig) *Client {
	t.Helper()
	c, err := Dial(context.Background(), addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// mustRegister registers h on s, failing t on error.
func mustRegister[Req, Resp any](t testing.TB, s *Service, name string, h Handler[Req, Resp]) *Method[Req, Resp] {
	t.Helper()
	m, err := Register(s, name, h)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// echoService returns a service "echo" whose method "Echo" answers its
// request.
func echoService(t testing.TB) (*Service, *Method[[]byte, []byte]) {
	svc := NewService("echo")
	m := mustRegister(t, svc, "Echo", func(_ context.Context, req []byte) ([]byte, error) {
		return req, nil
	})
	return svc, m
}

// pipeListener is a net.Listener over net.Pipe, for tests inside a
// synctest bubble, where real sockets are not allowed.
type pipeListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

// Accept returns the server end of the next dial.
func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close stops Accept.
func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

// Addr returns a placeholder address.
func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

// dial returns the client end of a new pipe whose server end Accept
// returns.
func (l *pipeListener) dial(t testing.TB) net.Conn {
	cli, srv := net.Pipe()
	select {
	case l.conns <- srv:
		return cli
	case <-l.done:
		t.Fatal("dial on a closed pipeListener")
		return nil
	}
}

// pipeAddr is the address of a pipeListener.
type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }
