package rpc

import (
	"bytes"
	"context"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// holdService returns a service whose method "Hold" reports the size of
// each request on started as it begins, then waits for a token on
// release. It counts the frame bytes of running handlers in active and
// fails t if they, or the bytes the server holds, ever exceed budget.
func holdService(t *testing.T, s **Server, budget int64) (*Service, *Method[[]byte, []byte], chan int, chan struct{}) {
	svc := NewService("hold")
	started, release := make(chan int, 16), make(chan struct{})
	var active atomic.Int64
	hold := mustRegister(t, svc, "Hold", func(_ context.Context, req []byte) ([]byte, error) {
		if n := active.Add(frameBytes(len(req))); n > budget {
			t.Errorf("handlers hold %d bytes, budget %d", n, budget)
		}
		if n := (*s).budget.held(); n > budget {
			t.Errorf("server holds %d bytes, budget %d", n, budget)
		}
		started <- len(req)
		<-release
		active.Add(-frameBytes(len(req)))
		return req[:1], nil
	})
	return svc, hold, started, release
}

// TestInFlightBytesBudget runs slow handlers over several connections
// with a budget that fits three requests: three run at a time, the rest
// wait unread, and every call completes as handlers return.
func TestInFlightBytesBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const budget, size, conns, perConn = 4096, 1000, 4, 2
		var s *Server
		svc, hold, started, release := holdService(t, &s, budget)
		s = newTestServer(t, Config{MaxFrameSize: 2048, MaxInFlightBytes: budget}, svc)
		errs := make(chan error, conns*perConn)
		for range conns {
			c := pipeClient(t, s)
			for range perConn {
				go func() {
					_, err := hold.Call(context.Background(), c, make([]byte, size))
					errs <- err
				}()
			}
		}
		running := 0
		for left := conns * perConn; left > 0; left-- {
			synctest.Wait()
			running += len(started)
			for len(started) > 0 {
				<-started
			}
			if want := min(3, left); running != want {
				t.Fatalf("%d calls left: %d handlers running, want %d", left, running, want)
			}
			release <- struct{}{}
			if err := <-errs; err != nil {
				t.Fatalf("call: %v", err)
			}
			running--
		}
		synctest.Wait() // the last handler's bytes go back after its answer is written
		if n := s.budget.held(); n != 0 {
			t.Errorf("server holds %d bytes after every call returned", n)
		}
	})
}

// TestInFlightBytesLargeRequestAlone uses a budget of exactly one
// maximum frame: a request that large waits for a small one to finish,
// then runs alone, and a small request sent after it does not overtake
// it although it would fit.
func TestInFlightBytesLargeRequestAlone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const budget = 4096
		var s *Server
		svc, hold, started, release := holdService(t, &s, budget)
		s = newTestServer(t, Config{MaxFrameSize: budget, MaxInFlightBytes: budget}, svc)
		errs := make(chan error, 3)
		send := func(n int) {
			c := pipeClient(t, s)
			go func() {
				_, err := hold.Call(context.Background(), c, make([]byte, n))
				errs <- err
			}()
			synctest.Wait()
		}
		send(100)
		send(budget - headerSize)
		send(100)
		want := []int{100, budget - headerSize, 100}
		for i, n := range want {
			if got := len(started); got != 1 {
				t.Fatalf("step %d: %d handlers running, want 1", i, got)
			}
			if got := <-started; got != n {
				t.Fatalf("step %d: a %d-byte request runs, want the %d-byte one", i, got, n)
			}
			release <- struct{}{}
			if err := <-errs; err != nil {
				t.Fatalf("call: %v", err)
			}
			synctest.Wait()
		}
	})
}

// TestMaxConnections checks that a server at its connection limit
// stops accepting until a connection closes, and then serves the
// waiting client.
func TestMaxConnections(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		svc, echo := echoService(t)
		s := newTestServer(t, Config{MaxConnections: 1}, svc)
		ln := newPipeListener()
		serveOn(t, s, ln)
		first, err := NewClient(ln.dial(t), ClientConfig{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := echo.Call(context.Background(), first, []byte("a")); err != nil {
			t.Fatalf("first client: %v", err)
		}
		dialed := make(chan *Client, 1)
		go func() {
			c, _ := NewClient(ln.dial(t), ClientConfig{})
			dialed <- c
		}()
		synctest.Wait()
		if len(dialed) != 0 {
			t.Fatal("a second connection was accepted beyond MaxConnections")
		}
		first.Close()
		second := <-dialed
		defer second.Close()
		if p, err := echo.Call(context.Background(), second, []byte("b")); err != nil || string(p) != "b" {
			t.Fatalf("second client: got %q, %v", p, err)
		}
	})
}

// TestSlowInlineHandlerRescued makes a method quick enough to run on the
// connection's reader and lets the rescuer fall asleep, then has one of
// the method's calls block: a call behind it on the same connection must
// still be answered, and the method goes back to workers.
func TestSlowInlineHandlerRescued(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		svc := NewService("maybe")
		entered, unblock := make(chan struct{}), make(chan struct{})
		m := mustRegister(t, svc, "Maybe", func(_ context.Context, req []byte) ([]byte, error) {
			if string(req) == "block" {
				close(entered)
				<-unblock
			}
			return req, nil
		})
		s := newTestServer(t, Config{}, svc)
		c := pipeClient(t, s)
		ctx := context.Background()
		for range quickRunsToInline {
			if _, err := m.Call(ctx, c, []byte("x")); err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait() // a worker times its run after writing the answer
		e := svc.method(m.methodID)
		if !e.inlineOK() {
			t.Fatalf("after %d quick runs the method does not run inline", quickRunsToInline)
		}
		time.Sleep(2 * rescueIdleLooks * rescuePeriod) // the bubble's clock
		if !s.rescue.asleep.Load() {
			t.Fatal("the rescuer still looks at an idle server")
		}
		blocked := make(chan error, 1)
		go func() {
			_, err := m.Call(ctx, c, []byte("block"))
			blocked <- err
		}()
		<-entered
		if p, err := m.Call(ctx, c, []byte("behind")); err != nil || !bytes.Equal(p, []byte("behind")) {
			t.Fatalf("call behind a blocked handler: got %q, %v", p, err)
		}
		close(unblock)
		if err := <-blocked; err != nil {
			t.Fatalf("blocked call: %v", err)
		}
		synctest.Wait() // the old reader learns of the rescue after writing the answer
		if e.inlineOK() {
			t.Error("a rescued method still runs inline")
		}
	})
}
