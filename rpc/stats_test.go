package rpc

import (
	"context"
	"errors"
	"maps"
	"reflect"
	"testing"
)

// Stats counts calls and errors from connections and in process,
// notifications, and the requests running.
func TestServerStats(t *testing.T) {
	svc, echo := echoService(t)
	fail := mustRegister(t, svc, "Fail", func(context.Context, []byte) ([]byte, error) { return nil, errors.New("no") })
	entered, release := make(chan struct{}), make(chan struct{})
	block := mustRegister(t, svc, "Block", func(context.Context, []byte) ([]byte, error) {
		close(entered)
		<-release
		return nil, nil
	})
	notified := make(chan struct{}, 1)
	note := mustRegister(t, svc, "Note", func(context.Context, []byte) ([]byte, error) {
		notified <- struct{}{}
		return nil, nil
	})
	s := newTestServer(t, Config{}, svc)
	c := dialTest(t, serveTCP(t, s), ClientConfig{})
	ctx := context.Background()

	blocked := make(chan error, 1)
	go func() { _, err := block.Call(ctx, c, nil); blocked <- err }()
	<-entered
	if got := s.Stats().InFlight; got != 1 {
		t.Errorf("in flight with one handler running: got %d, want 1", got)
	}
	close(release)
	if err := <-blocked; err != nil {
		t.Fatal(err)
	}
	for range 3 {
		checkEcho(t, echo, c)
	}
	if _, err := fail.Call(ctx, c, nil); err == nil {
		t.Fatal("Fail answered no error")
	}
	if _, err := NewMethod[[]byte, []byte]("echo", "Nope").Call(ctx, c, nil); !errors.Is(err, ErrMethodNotFound) {
		t.Fatalf("unknown method: got %v, want ErrMethodNotFound", err)
	}
	if _, err := NewMethod[[]byte, []byte]("nosuch", "Echo").Call(ctx, c, nil); !errors.Is(err, ErrServiceNotFound) {
		t.Fatalf("unknown service: got %v, want ErrServiceNotFound", err)
	}
	if err := note.Notify(ctx, c, nil); err != nil {
		t.Fatal(err)
	}
	<-notified
	local := s.LocalClient()
	if _, err := echo.Call(ctx, local, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := fail.Call(ctx, local, nil); err == nil {
		t.Fatal("local Fail answered no error")
	}

	got := s.Stats()
	services := got.Services
	got.InFlight, got.Services = 0, nil // finished calls leave in flight after their answer is out
	if want := (ServerStats{Calls: 7, Errors: 3, LocalCalls: 2, LocalErrors: 1, Notifications: 1}); !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
	// The unknown service's call counts in the totals alone.
	want := map[string]ServiceStats{"echo": {Calls: 6, Errors: 2, LocalCalls: 2, LocalErrors: 1}}
	if !maps.Equal(services, want) {
		t.Errorf("by service: got %+v, want %+v", services, want)
	}
}
