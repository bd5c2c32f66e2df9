package rpc

import (
	"context"
	"errors"
	"net"
	"testing"
)

// TestPoolReconnectsAfterRestart restarts the server on the same
// address and checks that the pool drops the broken client and dials
// the new server.
func TestPoolReconnectsAfterRestart(t *testing.T) {
	svc, echo := echoService(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	first, err := NewServer(Config{})
	if err != nil {
		t.Fatal(err)
	}
	first.AddService(svc)
	served := make(chan error, 1)
	go func() { served <- first.Serve(ln) }()

	p, err := NewPool(ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx := context.Background()
	c1 := poolEcho(t, p, addr, echo)

	first.Close()
	<-served
	<-c1.Done() // the client saw its connection close

	ln2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	serveOn(t, newTestServer(t, Config{}, svc), ln2)
	if _, err := echo.Call(ctx, c1, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("old client: got %v, want ErrClosed", err)
	}
	if c2 := poolEcho(t, p, addr, echo); c2 == c1 {
		t.Error("pool returned the broken client")
	}
}

// poolEcho gets addr's client from p, checks an echo through it and
// returns it.
func poolEcho(t *testing.T, p *Pool, addr string, echo *Method[[]byte, []byte]) *Client {
	t.Helper()
	c, err := p.Client(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := echo.Call(context.Background(), c, []byte("hi")); err != nil || string(got) != "hi" {
		t.Fatalf("echo: got %q, %v", got, err)
	}
	return c
}

// TestPoolSharesClient checks that an address has one client, shared.
func TestPoolSharesClient(t *testing.T) {
	svc, echo := echoService(t)
	addr := serveTCP(t, newTestServer(t, Config{}, svc))
	p, _ := NewPool(ClientConfig{})
	defer p.Close()
	clients := make(chan *Client, 8)
	for range cap(clients) {
		go func() {
			c, err := p.Client(context.Background(), addr)
			if err != nil {
				t.Error(err)
			}
			clients <- c
		}()
	}
	first := <-clients
	for range cap(clients) - 1 {
		if c := <-clients; c != first {
			t.Fatal("two clients for one address")
		}
	}
	poolEcho(t, p, addr, echo)
}

// TestPoolDialFailure checks that a failed dial is reported and retried
// on the next request.
func TestPoolDialFailure(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	p, _ := NewPool(ClientConfig{})
	defer p.Close()
	if _, err := p.Client(context.Background(), addr); err == nil {
		t.Fatal("dial to a closed port worked")
	}
	ln2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("port taken meanwhile: %v", err)
	}
	svc, echo := echoService(t)
	serveOn(t, newTestServer(t, Config{}, svc), ln2)
	poolEcho(t, p, addr, echo)
}

// TestPoolLocal checks that an address registered with SetLocal is
// served in process, and over the network once removed.
func TestPoolLocal(t *testing.T) {
	svc, echo := echoService(t)
	s := newTestServer(t, Config{}, svc)
	addr := serveTCP(t, s)
	p, _ := NewPool(ClientConfig{})
	defer p.Close()
	p.SetLocal(addr, s)
	if c := poolEcho(t, p, addr, echo); c != s.LocalClient() {
		t.Error("registered address did not give the local client")
	}
	p.SetLocal(addr, nil)
	if c := poolEcho(t, p, addr, echo); c == s.LocalClient() {
		t.Error("removed address still gave the local client")
	}
}

// TestPoolClosed checks that a closed pool refuses requests.
func TestPoolClosed(t *testing.T) {
	p, _ := NewPool(ClientConfig{})
	p.Close()
	if _, err := p.Client(context.Background(), "127.0.0.1:1"); !errors.Is(err, ErrClosed) {
		t.Errorf("got %v, want ErrClosed", err)
	}
}
