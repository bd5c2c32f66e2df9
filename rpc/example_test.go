package rpc_test

import (
	"context"
	"fmt"
	"net"
	"strings"

	"github.com/bifrost-go/bifrost/rpc"
)

// Example serves a method on a loopback port and calls it over TCP.
func Example() {
	svc := rpc.NewService("greeter")
	hello, err := rpc.Register(svc, "Hello", func(_ context.Context, name string) (string, error) {
		return "hello, " + name, nil
	})
	if err != nil {
		panic(err)
	}
	srv, _ := rpc.NewServer(rpc.Config{})
	srv.AddService(svc)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	defer func() { srv.Close(); <-done }()

	ctx := context.Background()
	c, err := rpc.Dial(ctx, ln.Addr().String(), rpc.ClientConfig{})
	if err != nil {
		panic(err)
	}
	defer c.Close()
	msg, err := hello.Call(ctx, c, "bifrost")
	fmt.Println(msg, err)
	// Output: hello, bifrost <nil>
}

// ExampleNewMethod calls a method from a program that does not have its
// handler: the name and the types are all it needs.
func ExampleNewMethod() {
	upper := rpc.NewMethod[[]byte, []byte]("text", "Upper")

	srv, _ := rpc.NewServer(rpc.Config{}) // usually another process
	svc := rpc.NewService("text")
	rpc.Register(svc, "Upper", func(_ context.Context, b []byte) ([]byte, error) {
		return []byte(strings.ToUpper(string(b))), nil
	})
	srv.AddService(svc)
	defer srv.Close()

	out, err := upper.Call(context.Background(), srv.LocalClient(), []byte("shout"))
	fmt.Println(string(out), err)
	// Output: SHOUT <nil>
}

// ExampleServer_LocalClient calls a server in the same process without a
// network; a missing method fails as it would remotely.
func ExampleServer_LocalClient() {
	svc := rpc.NewService("math")
	double, _ := rpc.Register(svc, "Double", func(_ context.Context, n int) (int, error) {
		return 2 * n, nil
	})
	srv, _ := rpc.NewServer(rpc.Config{})
	srv.AddService(svc)
	defer srv.Close()

	n, err := double.Call(context.Background(), srv.LocalClient(), 21)
	fmt.Println(n, err)
	_, err = rpc.NewMethod[int, int]("math", "Triple").Call(context.Background(), srv.LocalClient(), 1)
	fmt.Println(err)
	// Output:
	// 42 <nil>
	// rpc: method not found
}

// ExamplePool gets clients by address; a broken connection is replaced
// on the next request.
func ExamplePool() {
	svc := rpc.NewService("echo")
	echo, _ := rpc.Register(svc, "Echo", func(_ context.Context, b []byte) ([]byte, error) { return b, nil })
	srv, _ := rpc.NewServer(rpc.Config{})
	srv.AddService(svc)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	defer func() { srv.Close(); <-done }()

	pool, _ := rpc.NewPool(rpc.ClientConfig{})
	defer pool.Close()
	ctx := context.Background()
	c, err := pool.Client(ctx, ln.Addr().String())
	if err != nil {
		panic(err)
	}
	out, err := echo.Call(ctx, c, []byte("ping"))
	fmt.Println(string(out), err)
	// Output: ping <nil>
}
