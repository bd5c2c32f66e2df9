package rpc

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"sync"
	"testing"
)

// pipeNet routes the dials of ClientConfig.Dial by address to pipe
// listeners, and counts them.
type pipeNet struct {
	mu     sync.Mutex // protects the following
	routes map[string]*pipeListener
	dials  map[string]int
}

var errNoRoute = errors.New("no route to address")

func newPipeNet() *pipeNet {
	return &pipeNet{routes: map[string]*pipeListener{}, dials: map[string]int{}}
}

// serve serves s at addr until t ends.
func (n *pipeNet) serve(t *testing.T, addr string, s *Server) {
	ln := newPipeListener()
	serveOn(t, s, ln)
	n.mu.Lock()
	defer n.mu.Unlock()
	n.routes[addr] = ln
}

// dial is a ClientConfig.Dial.
func (n *pipeNet) dial(ctx context.Context, addr string) (net.Conn, error) {
	n.mu.Lock()
	ln := n.routes[addr]
	n.dials[addr]++
	n.mu.Unlock()
	if ln == nil {
		return nil, errNoRoute
	}
	cli, srv := net.Pipe()
	select {
	case ln.conns <- srv:
		return cli, nil
	case <-ln.done:
		err := net.ErrClosed
		cli.Close()
		srv.Close()
		return nil, err
	case <-ctx.Done():
		cli.Close()
		srv.Close()
		return nil, ctx.Err()
	}
}

func (n *pipeNet) dialsTo(addr string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.dials[addr]
}

// nameService answers Name with name.
func nameService(t *testing.T, name string) (*Service, *Method[[]byte, []byte]) {
	svc := NewService("name")
	m := mustRegister(t, svc, "Name", func(context.Context, []byte) ([]byte, error) { return []byte(name), nil })
	return svc, m
}

type ctxKey struct{}

// TestDialUsesConfigDial checks that Dial connects through
// ClientConfig.Dial, handing it its context and the address, and that the
// connection it returns carries calls.
func TestDialUsesConfigDial(t *testing.T) {
	svc, echo := echoService(t)
	n := newPipeNet()
	n.serve(t, "mem:1", newTestServer(t, Config{}, svc))
	var gotCtx any
	cfg := ClientConfig{Dial: func(ctx context.Context, addr string) (net.Conn, error) {
		gotCtx = ctx.Value(ctxKey{})
		return n.dial(ctx, addr)
	}}
	ctx := context.WithValue(context.Background(), ctxKey{}, "dial's")
	c, err := Dial(ctx, "mem:1", cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got, err := echo.Call(context.Background(), c, []byte("hi")); err != nil || string(got) != "hi" {
		t.Errorf("echo through the dialled connection: %q, %v", got, err)
	}
	if gotCtx != "dial's" {
		t.Errorf("Dial got context value %v, want the caller's", gotCtx)
	}
	if got := n.dialsTo("mem:1"); got != 1 {
		t.Errorf("%d dials of mem:1, want 1", got)
	}
}

// TestPoolDialsThroughConfigDial checks that a pool reaches each address
// through ClientConfig.Dial, once while the connection works and again
// after it broke.
func TestPoolDialsThroughConfigDial(t *testing.T) {
	n := newPipeNet()
	for _, name := range []string{"a", "b"} {
		svc, _ := nameService(t, name)
		n.serve(t, name, newTestServer(t, Config{}, svc))
	}
	_, nameOf := nameService(t, "")
	p, err := NewPool(ClientConfig{Dial: n.dial})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx := context.Background()
	call := func(addr string) *Client {
		t.Helper()
		c, err := p.Client(ctx, addr)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := nameOf.Call(ctx, c, nil); err != nil || string(got) != addr {
			t.Errorf("call to %s answered %q, %v", addr, got, err)
		}
		return c
	}
	first := call("a")
	call("a")
	call("b")
	if a, b := n.dialsTo("a"), n.dialsTo("b"); a != 1 || b != 1 {
		t.Errorf("dials: a %d, b %d; want one each", a, b)
	}
	first.nc.Close() // the connection breaks
	<-first.Done()
	call("a")
	if got := n.dialsTo("a"); got != 2 {
		t.Errorf("%d dials of a after its connection broke, want 2", got)
	}
}

// TestDialReportsConfigDialErrors checks that a failed ClientConfig.Dial
// fails Dial and the pool with its error.
func TestDialReportsConfigDialErrors(t *testing.T) {
	n := newPipeNet()
	cfg := ClientConfig{Dial: n.dial}
	if _, err := Dial(context.Background(), "nowhere", cfg); !errors.Is(err, errNoRoute) {
		t.Errorf("Dial: %v, want errNoRoute", err)
	}
	p, err := NewPool(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for range 2 { // a failed dial is not remembered
		if _, err := p.Client(context.Background(), "nowhere"); !errors.Is(err, errNoRoute) {
			t.Errorf("Pool.Client: %v, want errNoRoute", err)
		}
	}
	if got := n.dialsTo("nowhere"); got != 3 {
		t.Errorf("%d dials, want 3", got)
	}
}

// TestDialTLSOverConfigDial checks that TLS runs over the connection
// ClientConfig.Dial returns, with the server's certificate checked
// against the host of the address dialled.
func TestDialTLSOverConfigDial(t *testing.T) {
	ca := newTestCA(t, "bifrost test CA")
	svc, echo := echoService(t)
	s := newTestServer(t, Config{TLS: &tls.Config{
		Certificates: []tls.Certificate{ca.issue(t, "server", x509.ExtKeyUsageServerAuth)},
	}}, svc)
	n := newPipeNet()
	n.serve(t, "127.0.0.1:7000", s)   // the certificate's address
	n.serve(t, "example.net:7000", s) // another name for the same server
	ctx := context.Background()

	c, err := Dial(ctx, "127.0.0.1:7000", ClientConfig{Dial: n.dial, TLS: &tls.Config{RootCAs: ca.pool}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got, err := echo.Call(ctx, c, []byte("secret")); err != nil || string(got) != "secret" {
		t.Errorf("echo over TLS: %q, %v", got, err)
	}
	if _, ok := c.nc.(*tls.Conn); !ok {
		t.Errorf("the connection is a %T, want a *tls.Conn", c.nc)
	}

	// A client refusing the certificate would write its alert while the
	// server still writes, which an unbuffered pipe cannot carry: look at
	// the name checked instead.
	var checked string
	c2, err := Dial(ctx, "example.net:7000", ClientConfig{Dial: n.dial, TLS: &tls.Config{InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error { checked = cs.ServerName; return nil }}})
	if err != nil {
		t.Fatal(err)
	}
	c2.Close()
	if checked != "example.net" {
		t.Errorf("server name %q checked, want the host dialled", checked)
	}
}
