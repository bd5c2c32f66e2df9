package rpc

import (
	"context"
	"errors"
	"testing"
)

// TestLocalClient calls a server in process: the handler gets the very
// value the caller passed, and errors look as they do over the network.
func TestLocalClient(t *testing.T) {
	svc := NewService("local")
	var seen *record
	keep := mustRegister(t, svc, "Keep", func(_ context.Context, r *record) (*record, error) {
		seen = r
		return r, nil
	})
	fail := mustRegister(t, svc, "Fail", func(context.Context, int) (int, error) {
		return 0, errors.New("no")
	})
	s := newTestServer(t, Config{}, svc)
	c := s.LocalClient()
	in := &record{Name: "x"}
	out, err := keep.Call(context.Background(), c, in)
	if err != nil || out != in || seen != in {
		t.Errorf("got %p, %v; want the same pointer %p back, unencoded", out, err, in)
	}
	var re *RemoteError
	if _, err := fail.Call(context.Background(), c, 1); !errors.As(err, &re) || re.Message != "no" {
		t.Errorf("handler error: got %v, want RemoteError no", err)
	}
	if _, err := NewMethod[int, int]("nope", "Fail").Call(context.Background(), c, 1); !errors.Is(err, ErrServiceNotFound) {
		t.Errorf("unknown service: got %v", err)
	}
	if _, err := NewMethod[int, int]("local", "Nope").Call(context.Background(), c, 1); !errors.Is(err, ErrMethodNotFound) {
		t.Errorf("unknown method: got %v", err)
	}
	if err := c.Close(); err != nil || c.Done() != nil {
		t.Errorf("local Close and Done: %v, %v", err, c.Done())
	}
}

// TestLocalAndNetworkAgree makes the same calls in process and over
// TCP, including one whose Method types differ from the registered ones
// and so go through the codecs.
func TestLocalAndNetworkAgree(t *testing.T) {
	svc := NewService("math")
	mustRegister(t, svc, "Double", func(_ context.Context, p point) (point, error) {
		return point{2 * p.X, 2 * p.Y}, nil
	})
	s := newTestServer(t, Config{}, svc)
	network := dialTest(t, serveTCP(t, s), ClientConfig{})
	typed := NewMethod[point, point]("math", "Double")
	asBytes := NewMethod[[]byte, []byte]("math", "Double")
	in, _ := (&point{3, -4}).AppendBinary(nil)
	for name, c := range map[string]*Client{"local": s.LocalClient(), "network": network} {
		t.Run(name, func(t *testing.T) {
			if got, err := typed.Call(context.Background(), c, point{3, -4}); err != nil || got != (point{6, -8}) {
				t.Errorf("typed: got %+v, %v", got, err)
			}
			raw, err := asBytes.Call(context.Background(), c, in)
			var got point
			if err == nil {
				err = got.UnmarshalBinary(raw)
			}
			if err != nil || got != (point{6, -8}) {
				t.Errorf("through the codecs: got %+v, %v", got, err)
			}
		})
	}
}

// TestLocalAfterClose checks that in-process calls stop with the server.
func TestLocalAfterClose(t *testing.T) {
	svc, echo := echoService(t)
	s := newTestServer(t, Config{}, svc)
	s.Close()
	if _, err := echo.Call(context.Background(), s.LocalClient(), nil); !errors.Is(err, ErrClosed) {
		t.Errorf("got %v, want ErrClosed", err)
	}
}
