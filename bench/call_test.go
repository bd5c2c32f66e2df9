package bench

import (
	"bytes"
	"context"
	"net"
	netrpc "net/rpc"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bifrost-go/bifrost/rpc"
)

// payloadSize is the size, in bytes, of the echoed request.
const payloadSize = 128

// callers is the number of concurrent callers in the parallel runs.
const callers = 64

// BenchmarkCall measures a 128-byte echo over loopback TCP, one caller
// and 64 concurrent callers on one connection, for bifrost's rpc and for
// the standard library's net/rpc. The -timeout run gives each call a
// context with a deadline, as real callers do, which net/rpc has no
// counterpart for.
func BenchmarkCall(b *testing.B) {
	b.Run("bifrost-serial", func(b *testing.B) { runCalls(b, 1, bifrostEcho(b, 0)) })
	b.Run("bifrost-serial-timeout", func(b *testing.B) { runCalls(b, 1, bifrostEcho(b, time.Minute)) })
	b.Run("bifrost-parallel64", func(b *testing.B) { runCalls(b, callers, bifrostEcho(b, 0)) })
	b.Run("netrpc-serial", func(b *testing.B) { runCalls(b, 1, netrpcEcho(b)) })
	b.Run("netrpc-parallel64", func(b *testing.B) { runCalls(b, callers, netrpcEcho(b)) })
}

// echoFunc makes one call and checks its answer.
type echoFunc func(req []byte) error

// runCalls shares b.N calls among n goroutines, each with its own
// request buffer.
func runCalls(b *testing.B, n int, echo echoFunc) {
	b.ReportAllocs()
	b.SetBytes(payloadSize)
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := bytes.Repeat([]byte{'x'}, payloadSize)
			for next.Add(1) <= int64(b.N) {
				if err := echo(req); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// listen returns a loopback listener; the server given it closes it.
func listen(b *testing.B) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	return ln
}

// bifrostEcho starts a bifrost server with an echo method and returns a
// call through one client connection, with a context of that timeout
// when it is not zero.
func bifrostEcho(b *testing.B, timeout time.Duration) echoFunc {
	svc := rpc.NewService("echo")
	echo, err := rpc.Register(svc, "Echo", func(_ context.Context, req []byte) ([]byte, error) {
		return req, nil
	})
	if err != nil {
		b.Fatal(err)
	}
	srv, err := rpc.NewServer(rpc.Config{})
	if err != nil {
		b.Fatal(err)
	}
	if err := srv.AddService(svc); err != nil {
		b.Fatal(err)
	}
	ln := listen(b)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	c, err := rpc.Dial(context.Background(), ln.Addr().String(), rpc.ClientConfig{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		c.Close()
		srv.Close()
		<-served
	})
	return func(req []byte) error {
		ctx, cancel := context.Background(), context.CancelFunc(func() {})
		if timeout > 0 {
			ctx, cancel = context.WithTimeout(ctx, timeout)
		}
		resp, err := echo.Call(ctx, c, req)
		cancel()
		if err == nil && len(resp) != len(req) {
			b.Errorf("got %d bytes back, want %d", len(resp), len(req))
		}
		return err
	}
}

// Echo is the net/rpc service.
type Echo struct{}

// Echo answers args.
func (Echo) Echo(args []byte, reply *[]byte) error {
	*reply = args
	return nil
}

// netrpcEcho starts a net/rpc server with an echo method and returns a
// call through one client connection.
func netrpcEcho(b *testing.B) echoFunc {
	srv := netrpc.NewServer()
	if err := srv.Register(Echo{}); err != nil {
		b.Fatal(err)
	}
	ln := listen(b)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				srv.ServeConn(conn)
			}()
		}
	}()
	c, err := netrpc.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		c.Close()
		ln.Close()
		wg.Wait()
	})
	return func(req []byte) error {
		var resp []byte
		err := c.Call("Echo.Echo", req, &resp)
		if err == nil && len(resp) != len(req) {
			b.Errorf("got %d bytes back, want %d", len(resp), len(req))
		}
		return err
	}
}
