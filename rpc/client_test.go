package rpc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"
	"testing"
)

// fakeServer is the far end of a pipe, driven by hand to produce
// orderings a real server makes only by chance.
type fakeServer struct {
	t  *testing.T
	nc net.Conn
	br *bufio.Reader
}

// newFake returns a client and the fake server at the other end.
func newFake(t *testing.T) (*Client, *fakeServer) {
	cli, srv := net.Pipe()
	c, err := NewClient(cli, ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		srv.Close()
	})
	return c, &fakeServer{t: t, nc: srv, br: bufio.NewReader(srv)}
}

// read reads the next frame and checks its kind.
func (f *fakeServer) read(want kind) (header, []byte) {
	f.t.Helper()
	h, p := readFrameT(f.t, f.br)
	if h.kind != want {
		f.t.Fatalf("got frame kind %d, want %d", h.kind, want)
	}
	return h, p
}

// write sends one frame.
func (f *fakeServer) write(h header, p []byte) {
	f.t.Helper()
	if _, err := f.nc.Write(appendFrame(nil, h, p)); err != nil {
		f.t.Fatal(err)
	}
}

// TestLateResponseDropped answers a call after its caller gave up: the
// answer must be dropped without harm and the next call must work.
func TestLateResponseDropped(t *testing.T) {
	c, f := newFake(t)
	echo := NewMethod[[]byte, []byte]("echo", "Echo")
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := echo.Call(ctx, c, []byte("first"))
		errc <- err
	}()
	first, _ := f.read(kindRequest)
	cancel()
	if h, _ := f.read(kindCancel); h.id != first.id { // a pipe has no buffer: read before the caller can return
		t.Fatalf("cancel for id %d, want %d", h.id, first.id)
	}
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled call: got %v", err)
	}
	f.write(header{kind: kindResponse, id: first.id}, []byte("late"))
	f.write(header{kind: kindError, id: first.id}, appendError(nil, errors.New("later")))
	f.write(header{kind: kindResponse, id: 12345}, []byte("never asked"))

	go func() {
		h, p := f.read(kindRequest)
		f.write(header{kind: kindResponse, id: h.id}, p)
	}()
	if got, err := echo.Call(context.Background(), c, []byte("second")); err != nil || string(got) != "second" {
		t.Errorf("next call: got %q, %v", got, err)
	}
}

// TestClientCloseFailsPending checks that Close fails waiting calls with
// ErrClosed, and later calls too.
func TestClientCloseFailsPending(t *testing.T) {
	c, f := newFake(t)
	echo := NewMethod[[]byte, []byte]("echo", "Echo")
	errc := make(chan error, 1)
	go func() {
		_, err := echo.Call(context.Background(), c, nil)
		errc <- err
	}()
	f.read(kindRequest)
	c.Close()
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Errorf("pending call: got %v, want ErrClosed", err)
	}
	if _, err := echo.Call(context.Background(), c, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: got %v, want ErrClosed", err)
	}
	<-c.Done()
}

// TestClientRejectsBadFrames sends the client frames a server never
// sends; each must break the connection cleanly with ErrClosed.
func TestClientRejectsBadFrames(t *testing.T) {
	bad := map[string][]byte{
		"request kind": appendFrame(nil, header{kind: kindRequest, id: 1}, nil),
		"garbage":      []byte("\x00\x00\x00\x02xx"),
		"too large":    rawFrame(DefaultMaxFrameSize+1, byte(kindResponse), 0),
	}
	for name, b := range bad {
		t.Run(name, func(t *testing.T) {
			c, f := newFake(t)
			echo := NewMethod[[]byte, []byte]("echo", "Echo")
			errc := make(chan error, 1)
			go func() {
				_, err := echo.Call(context.Background(), c, nil)
				errc <- err
			}()
			f.read(kindRequest)
			f.nc.Write(b)
			if err := <-errc; !errors.Is(err, ErrClosed) {
				t.Errorf("got %v, want ErrClosed", err)
			}
		})
	}
}

// TestCallWithEndedContext checks that an ended context stops a call
// before anything is sent.
func TestCallWithEndedContext(t *testing.T) {
	c, _ := newFake(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := NewMethod[[]byte, []byte]("echo", "Echo").Call(ctx, c, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want context.Canceled", err)
	}
}

// TestManyCallers hammers one connection from many goroutines with a
// mix of codecs, sizes and cancellations; run it with -race.
func TestManyCallers(t *testing.T) {
	svc, echo := echoService(t)
	rec := mustRegister(t, svc, "Record", func(_ context.Context, r record) (record, error) {
		r.Count++
		return r, nil
	})
	c := dialTest(t, serveTCP(t, newTestServer(t, Config{MaxInFlight: 8}, svc)), ClientConfig{})
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				manyCallersStep(t, c, echo, rec, g, i)
			}
		}()
	}
	wg.Wait()
}

func manyCallersStep(t *testing.T, c *Client, echo *Method[[]byte, []byte], rec *Method[record, record], g, i int) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if i%7 == 3 {
		cancel() // some calls give up at once
	}
	want := fmt.Appendf(nil, "%d/%d/%0*d", g, i, i*40, 0)
	got, err := echo.Call(ctx, c, want)
	if err != nil && !errors.Is(err, context.Canceled) || err == nil && string(got) != string(want) {
		t.Errorf("echo: got %q, %v", got, err)
	}
	r, err := rec.Call(context.Background(), c, record{Name: string(want), Count: i})
	if err != nil || r.Count != i+1 || r.Name != string(want) {
		t.Errorf("record: got %+v, %v", r, err)
	}
}

// roleOf returns who holds c's reader role.
func roleOf(c *Client) readerRole {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.role
}

// TestLeaderCancelledMidFrame cancels a call while it reads its own
// answer, half of which has arrived: Call must return the context's
// error, and the next call must finish reading the half frame, drop it
// and get its own answer.
func TestLeaderCancelledMidFrame(t *testing.T) {
	c, f := newFake(t)
	echo := NewMethod[[]byte, []byte]("echo", "Echo")
	type result struct {
		p   []byte
		err error
	}
	call := func(ctx context.Context, req string) chan result {
		res := make(chan result, 1)
		go func() {
			p, err := echo.Call(ctx, c, []byte(req))
			res <- result{p, err}
		}()
		return res
	}

	first := call(context.Background(), "a")
	h, _ := f.read(kindRequest)
	f.write(header{kind: kindResponse, id: h.id}, []byte("a"))
	if r := <-first; r.err != nil {
		t.Fatalf("first call: %v", r.err)
	}
	for roleOf(c) == roleWatcher {
		runtime.Gosched() // the watcher gives the role up once idle
	}

	ctx, cancel := context.WithCancel(context.Background())
	second := call(ctx, "b")
	h2, _ := f.read(kindRequest)
	late := appendFrame(nil, header{kind: kindResponse, id: h2.id}, []byte("bbbbbbbb"))
	if _, err := f.nc.Write(late[:len(late)-4]); err != nil {
		t.Fatal(err)
	}
	cancel()
	if hc, _ := f.read(kindCancel); hc.id != h2.id {
		t.Errorf("cancel for request %d, want %d", hc.id, h2.id)
	}
	if r := <-second; !errors.Is(r.err, context.Canceled) {
		t.Fatalf("cancelled call: got %q, %v; want context.Canceled", r.p, r.err)
	}

	third := call(context.Background(), "c")
	h3, _ := f.read(kindRequest)
	rest := appendFrame(late[len(late)-4:], header{kind: kindResponse, id: h3.id}, []byte("c"))
	if _, err := f.nc.Write(rest); err != nil {
		t.Fatal(err)
	}
	if r := <-third; r.err != nil || string(r.p) != "c" {
		t.Fatalf("third call: got %q, %v; want \"c\"", r.p, r.err)
	}
}
