package rpc

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// num is a request type on the binary fast path.
type num uint64

func (n *num) AppendBinary(b []byte) ([]byte, error) {
	return binary.BigEndian.AppendUint64(b, uint64(*n)), nil
}

func (n *num) UnmarshalBinary(b []byte) error {
	if len(b) != 8 {
		return errors.New("num: want 8 bytes")
	}
	*n = num(binary.BigEndian.Uint64(b))
	return nil
}

// TestConcurrentCallsOutOfOrder runs 64 calls on one connection, holds
// every handler until all 64 are running at once, then lets them finish
// in reverse order, one at a time: each caller must get its own answer.
func TestConcurrentCallsOutOfOrder(t *testing.T) {
	const n = 64
	arrived := make(chan num, n)
	release := make([]chan struct{}, n)
	for i := range release {
		release[i] = make(chan struct{})
	}
	svc := NewService("math")
	square := mustRegister(t, svc, "Square", func(ctx context.Context, x num) (num, error) {
		arrived <- x
		<-release[x]
		return x * x, nil
	})
	c := dialTest(t, serveTCP(t, newTestServer(t, Config{}, svc)), ClientConfig{})

	type result struct {
		x, got num
		err    error
	}
	results := make(chan result)
	for i := range n {
		go func() {
			got, err := square.Call(context.Background(), c, num(i))
			results <- result{num(i), got, err}
		}()
	}
	for range n {
		<-arrived // all 64 handlers run concurrently
	}
	for i := n - 1; i >= 0; i-- {
		close(release[i])
		r := <-results
		if r.err != nil || r.x != num(i) || r.got != r.x*r.x {
			t.Fatalf("released %d: got call %d -> %d, %v; want %d -> %d", i, r.x, r.got, r.err, i, i*i)
		}
	}
}

// TestBlockedHandlerDoesNotDelayOthers parks one handler until its
// context ends and checks that other calls on the same connection go
// through meanwhile.
func TestBlockedHandlerDoesNotDelayOthers(t *testing.T) {
	svc, echo := echoService(t)
	started := make(chan struct{})
	block := mustRegister(t, svc, "Block", func(ctx context.Context, _ []byte) ([]byte, error) {
		close(started)
		<-ctx.Done()
		return nil, ctx.Err()
	})
	c := dialTest(t, serveTCP(t, newTestServer(t, Config{}, svc)), ClientConfig{})
	ctx, cancel := context.WithCancel(context.Background())
	blocked := make(chan error, 1)
	go func() {
		_, err := block.Call(ctx, c, nil)
		blocked <- err
	}()
	<-started
	for i := range 100 {
		want := fmt.Appendf(nil, "call %d", i)
		if got, err := echo.Call(context.Background(), c, want); err != nil || string(got) != string(want) {
			t.Fatalf("echo %d: got %q, %v", i, got, err)
		}
	}
	cancel()
	if err := <-blocked; !errors.Is(err, context.Canceled) {
		t.Errorf("blocked call: got %v, want context.Canceled", err)
	}
}

// TestCancelReachesHandler cancels a call and checks that the handler's
// context is cancelled in turn.
func TestCancelReachesHandler(t *testing.T) {
	svc := NewService("slow")
	started := make(chan struct{})
	seen := make(chan error, 1)
	wait := mustRegister(t, svc, "Wait", func(ctx context.Context, _ []byte) ([]byte, error) {
		close(started)
		<-ctx.Done()
		seen <- ctx.Err()
		return nil, ctx.Err()
	})
	c := dialTest(t, serveTCP(t, newTestServer(t, Config{}, svc)), ClientConfig{})
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-started
		cancel()
	}()
	if _, err := wait.Call(ctx, c, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("call: got %v, want context.Canceled", err)
	}
	if err := <-seen; !errors.Is(err, context.Canceled) {
		t.Errorf("handler saw %v, want context.Canceled", err)
	}
}

// TestDeadlineTravels checks, on a fake clock, that the caller's
// deadline reaches the handler's context and ends both sides together.
func TestDeadlineTravels(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		svc := NewService("slow")
		type seen struct {
			deadline time.Time
			err      error
		}
		seenc := make(chan seen, 1)
		wait := mustRegister(t, svc, "Wait", func(ctx context.Context, _ []byte) ([]byte, error) {
			d, _ := ctx.Deadline()
			<-ctx.Done()
			seenc <- seen{d, ctx.Err()}
			return nil, ctx.Err()
		})
		s := newTestServer(t, Config{}, svc)
		c := pipeClient(t, s)

		deadline := time.Now().Add(3 * time.Second)
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		defer cancel()
		if _, err := wait.Call(ctx, c, nil); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("call: got %v, want context.DeadlineExceeded", err)
		}
		got := <-seenc
		if !got.deadline.Equal(deadline) {
			t.Errorf("handler deadline %v, want %v", got.deadline, deadline)
		}
		if got.err == nil {
			t.Error("handler context not ended")
		}
	})
}

// TestServerDeadlineOwnClock sends a request whose deadline the server's
// clock reaches while the client never cancels: the handler's context
// must end by itself.
func TestServerDeadlineOwnClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		svc := NewService("slow")
		mustRegister(t, svc, "Wait", func(ctx context.Context, _ []byte) ([]byte, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		})
		s := newTestServer(t, Config{}, svc)
		ln := newPipeListener()
		serveOn(t, s, ln)
		nc := ln.dial(t)
		defer nc.Close()
		h := header{kind: kindRequest, id: 1, service: ServiceID("slow"), method: MethodID("Wait"),
			deadline: time.Now().Add(time.Second).UnixNano()}
		go nc.Write(appendFrame(nil, h, nil))
		got, p := readFrameT(t, bufio.NewReader(nc))
		if got.kind != kindError || got.id != 1 {
			t.Fatalf("got %+v, want an error for request 1", got)
		}
		if err := decodeError(p); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("got %v, want a remote deadline error", err)
		}
	})
}

// readFrameT reads one whole frame or fails t.
func readFrameT(t testing.TB, br *bufio.Reader) (header, []byte) {
	t.Helper()
	h, n, err := readHeader(br, DefaultMaxFrameSize)
	if err != nil {
		t.Fatalf("read frame: %v", err)
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(br, p); err != nil {
		t.Fatalf("read payload: %v", err)
	}
	return h, p
}

// TestErrors checks each error a call can end with.
func TestErrors(t *testing.T) {
	svc, echo := echoService(t)
	mustRegister(t, svc, "Fail", func(context.Context, []byte) ([]byte, error) {
		return nil, errors.New("disk on fire")
	})
	s := newTestServer(t, Config{MaxFrameSize: 1024}, svc)
	c := dialTest(t, serveTCP(t, s), ClientConfig{MaxFrameSize: 4096})
	ctx := context.Background()

	_, err := NewMethod[[]byte, []byte]("nope", "Echo").Call(ctx, c, nil)
	if !errors.Is(err, ErrServiceNotFound) {
		t.Errorf("unknown service: got %v", err)
	}
	_, err = NewMethod[[]byte, []byte]("echo", "Nope").Call(ctx, c, nil)
	if !errors.Is(err, ErrMethodNotFound) {
		t.Errorf("unknown method: got %v", err)
	}
	_, err = NewMethod[[]byte, []byte]("echo", "Fail").Call(ctx, c, nil)
	var re *RemoteError
	if !errors.As(err, &re) || re.Message != "disk on fire" {
		t.Errorf("handler error: got %v, want RemoteError disk on fire", err)
	}
	if _, err := echo.Call(ctx, c, make([]byte, 5000)); !errors.Is(err, ErrFrameTooLarge) {
		t.Errorf("request over the client's maximum: got %v", err)
	}
	if _, err := echo.Call(ctx, c, make([]byte, 2000)); !errors.Is(err, ErrClosed) {
		t.Errorf("request over the server's maximum: got %v, want ErrClosed", err)
	}
}

// TestResponseTooLarge checks that a response over the server's maximum
// becomes ErrFrameTooLarge for the caller, and the connection survives.
func TestResponseTooLarge(t *testing.T) {
	svc := NewService("big")
	big := mustRegister(t, svc, "Big", func(_ context.Context, n num) ([]byte, error) {
		return make([]byte, n), nil
	})
	c := dialTest(t, serveTCP(t, newTestServer(t, Config{MaxFrameSize: 1024}, svc)), ClientConfig{})
	if _, err := big.Call(context.Background(), c, 2000); !errors.Is(err, ErrFrameTooLarge) {
		t.Errorf("got %v, want ErrFrameTooLarge", err)
	}
	if p, err := big.Call(context.Background(), c, 10); err != nil || len(p) != 10 {
		t.Errorf("after: got %d bytes, %v", len(p), err)
	}
}

// TestInFlightBoundPushesBack limits a connection to two running calls
// and checks that a third waits, unread, instead of failing.
func TestInFlightBoundPushesBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		svc := NewService("slow")
		arrived := make(chan int, 3)
		release := make(chan struct{})
		hold := mustRegister(t, svc, "Hold", func(_ context.Context, i int) (int, error) {
			arrived <- i
			<-release
			return i, nil
		})
		s := newTestServer(t, Config{MaxInFlight: 2}, svc)
		c := pipeClient(t, s)
		errs := make(chan error, 3)
		for i := range 3 {
			go func() {
				_, err := hold.Call(context.Background(), c, i)
				errs <- err
			}()
		}
		synctest.Wait()
		if len(arrived) != 2 || len(errs) != 0 {
			t.Fatalf("%d handlers running and %d calls over, want 2 and 0", len(arrived), len(errs))
		}
		close(release)
		for range 3 {
			if err := <-errs; err != nil {
				t.Errorf("call: %v", err)
			}
		}
	})
}

// TestShutdownDrains checks that Shutdown lets a running call answer,
// refuses new ones, and returns once the call is over.
func TestShutdownDrains(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		svc, echo := echoService(t)
		started, release := make(chan struct{}), make(chan struct{})
		hold := mustRegister(t, svc, "Hold", func(_ context.Context, p []byte) ([]byte, error) {
			close(started)
			<-release
			return p, nil
		})
		s := newTestServer(t, Config{}, svc)
		c := pipeClient(t, s)
		held := make(chan error, 1)
		go func() {
			_, err := hold.Call(context.Background(), c, []byte("x"))
			held <- err
		}()
		<-started
		shut := make(chan error, 1)
		go func() { shut <- s.Shutdown(context.Background()) }()
		synctest.Wait()
		if len(shut) != 0 {
			t.Fatal("Shutdown returned with a call running")
		}
		if _, err := echo.Call(context.Background(), c, nil); !errors.Is(err, ErrShutdown) {
			t.Errorf("new call while draining: got %v, want ErrShutdown", err)
		}
		close(release)
		if err := <-held; err != nil {
			t.Errorf("running call: got %v, want its answer", err)
		}
		if err := <-shut; err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		<-c.Done() // the server closed the connection once idle
	})
}

// TestShutdownTimeout checks that Shutdown gives up when its context
// ends, closing the server and cancelling the handler.
func TestShutdownTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		svc := NewService("slow")
		started := make(chan struct{})
		wait := mustRegister(t, svc, "Wait", func(ctx context.Context, _ []byte) ([]byte, error) {
			close(started)
			<-ctx.Done()
			return nil, ctx.Err()
		})
		s := newTestServer(t, Config{}, svc)
		c := pipeClient(t, s)
		go wait.Call(context.Background(), c, nil)
		<-started
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Shutdown: got %v, want context.DeadlineExceeded", err)
		}
	})
}

// TestCloseCancelsHandlers checks that Close ends running handlers and
// fails their callers with ErrClosed.
func TestCloseCancelsHandlers(t *testing.T) {
	svc := NewService("slow")
	started := make(chan struct{})
	wait := mustRegister(t, svc, "Wait", func(ctx context.Context, _ []byte) ([]byte, error) {
		close(started)
		<-ctx.Done()
		return nil, ctx.Err()
	})
	s := newTestServer(t, Config{}, svc)
	c := dialTest(t, serveTCP(t, s), ClientConfig{})
	errc := make(chan error, 1)
	go func() {
		_, err := wait.Call(context.Background(), c, nil)
		errc <- err
	}()
	<-started
	s.Close()
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Errorf("got %v, want ErrClosed", err)
	}
	if _, err := wait.Call(context.Background(), c, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("after close: got %v, want ErrClosed", err)
	}
}

// TestBadInput sends broken bytes on one connection and checks that the
// server answers or closes it, while a client on another connection
// keeps working.
func TestBadInput(t *testing.T) {
	svc, echo := echoService(t)
	s := newTestServer(t, Config{}, svc)
	addr := serveTCP(t, s)
	good := dialTest(t, addr, ClientConfig{})
	req := func(id uint64, svc, method string) []byte {
		return appendFrame(nil, header{kind: kindRequest, id: id, service: ServiceID(svc), method: MethodID(method)}, []byte("hi"))
	}
	closes := []struct {
		name string
		b    []byte
	}{
		{"garbage", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")},
		{"4 GiB prefix", rawFrame(1<<32-1, byte(kindRequest), headerSize-1)},
		{"length below header", rawFrame(3, byte(kindRequest), 3)},
		{"unknown kind", rawFrame(headerSize, 77, headerSize-1)},
		{"response kind", appendFrame(nil, header{kind: kindResponse, id: 1}, nil)},
		{"truncated", req(1, "echo", "Echo")[:20]},
	}
	for _, tt := range closes {
		t.Run(tt.name, func(t *testing.T) {
			nc := rawConn(t, addr)
			nc.Write(tt.b)
			nc.(*net.TCPConn).CloseWrite()
			if rest, err := io.ReadAll(nc); err != nil || len(rest) != 0 {
				t.Errorf("got %q, %v; want the server to close without answering", rest, err)
			}
			checkEcho(t, echo, good)
		})
	}
	answers := []struct {
		name string
		b    []byte
		code byte
	}{
		{"unknown service", req(5, "nope", "Echo"), codeServiceNotFound},
		{"unknown method", req(6, "echo", "Nope"), codeMethodNotFound},
	}
	for _, tt := range answers {
		t.Run(tt.name, func(t *testing.T) {
			nc := rawConn(t, addr)
			nc.Write(tt.b)
			h, p := readFrameT(t, bufio.NewReader(nc))
			if h.kind != kindError || len(p) == 0 || p[0] != tt.code {
				t.Errorf("got %+v %x, want an error frame with code %d", h, p, tt.code)
			}
			checkEcho(t, echo, good)
		})
	}
}

// rawConn dials addr for hand-written frames.
func rawConn(t *testing.T, addr string) net.Conn {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return nc
}

// checkEcho fails t unless an echo call through c works.
func checkEcho(t *testing.T, echo *Method[[]byte, []byte], c *Client) {
	t.Helper()
	if got, err := echo.Call(context.Background(), c, []byte("ok")); err != nil || string(got) != "ok" {
		t.Errorf("other connection: got %q, %v", got, err)
	}
}

// TestDuplicateRequestID checks that reusing the id of a running request
// closes the connection.
func TestDuplicateRequestID(t *testing.T) {
	svc := NewService("slow")
	started := make(chan struct{}, 1)
	mustRegister(t, svc, "Wait", func(ctx context.Context, _ []byte) ([]byte, error) {
		started <- struct{}{}
		<-ctx.Done()
		return nil, ctx.Err()
	})
	addr := serveTCP(t, newTestServer(t, Config{}, svc))
	nc := rawConn(t, addr)
	f := appendFrame(nil, header{kind: kindRequest, id: 1, service: ServiceID("slow"), method: MethodID("Wait")}, nil)
	nc.Write(f)
	<-started
	nc.Write(f)
	if rest, err := io.ReadAll(nc); err != nil || len(rest) != 0 {
		t.Errorf("got %q, %v; want the connection closed", rest, err)
	}
}

// TestServeAfterClose checks that a closed server refuses to serve.
func TestServeAfterClose(t *testing.T) {
	s := newTestServer(t, Config{})
	s.Close()
	if err := s.Serve(newPipeListener()); !errors.Is(err, ErrServerClosed) {
		t.Errorf("got %v, want ErrServerClosed", err)
	}
}

// TestLongErrorMessageCut checks that a handler error longer than a
// frame reaches the caller cut short, on a connection that survives.
func TestLongErrorMessageCut(t *testing.T) {
	svc, echo := echoService(t)
	fail := mustRegister(t, svc, "Fail", func(_ context.Context, _ []byte) ([]byte, error) {
		return nil, errors.New(strings.Repeat("x", 5000))
	})
	c := dialTest(t, serveTCP(t, newTestServer(t, Config{MaxFrameSize: 1024}, svc)), ClientConfig{})
	var re *RemoteError
	if _, err := fail.Call(context.Background(), c, nil); !errors.As(err, &re) || len(re.Message) != 1024-headerSize-1 {
		t.Errorf("got %v, want a RemoteError cut to the frame", err)
	}
	checkEcho(t, echo, c)
}
