package rpc

import (
	"context"
	"errors"
	"testing"
)

// TestDuplicateRegistration checks that names cannot be registered
// twice.
func TestDuplicateRegistration(t *testing.T) {
	svc, _ := echoService(t)
	if _, err := Register(svc, "Echo", func(context.Context, int) (int, error) { return 0, nil }); !errors.Is(err, ErrDuplicate) {
		t.Errorf("method: got %v, want ErrDuplicate", err)
	}
	s := newTestServer(t, Config{}, svc)
	if err := s.AddService(NewService("echo")); !errors.Is(err, ErrDuplicate) {
		t.Errorf("service: got %v, want ErrDuplicate", err)
	}
}

// TestMethodNames checks the names and ids a Method carries.
func TestMethodNames(t *testing.T) {
	m := NewMethod[int, int]("kv", "Get")
	if m.String() != "kv.Get" || m.serviceID != ServiceID("kv") || m.methodID != MethodID("Get") {
		t.Errorf("got %s with ids %#x, %#x", m, m.serviceID, m.methodID)
	}
	if NewService("kv").Name() != "kv" {
		t.Error("Service.Name")
	}
}

// TestEmptyMessages calls a method whose request and response are
// struct{}, which gob alone could not send.
func TestEmptyMessages(t *testing.T) {
	svc := NewService("ping")
	ping := mustRegister(t, svc, "Ping", func(context.Context, struct{}) (struct{}, error) { return struct{}{}, nil })
	c := dialTest(t, serveTCP(t, newTestServer(t, Config{}, svc)), ClientConfig{})
	if _, err := ping.Call(context.Background(), c, struct{}{}); err != nil {
		t.Error(err)
	}
}

// TestDecodeFailureIsRemoteError sends bytes the handler's request type
// cannot decode.
func TestDecodeFailureIsRemoteError(t *testing.T) {
	svc := NewService("math")
	mustRegister(t, svc, "Double", func(_ context.Context, p point) (point, error) { return p, nil })
	c := dialTest(t, serveTCP(t, newTestServer(t, Config{}, svc)), ClientConfig{})
	var re *RemoteError
	if _, err := NewMethod[[]byte, []byte]("math", "Double").Call(context.Background(), c, []byte("short")); !errors.As(err, &re) {
		t.Errorf("got %v, want a RemoteError", err)
	}
}
