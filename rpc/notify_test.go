package rpc

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
)

// notifyService records the numbers notified to "Record", in the order
// handled; "Barrier" answers a call, which on the same connection is read
// only after every notification sent before it was handled.
type notifyService struct {
	mu   sync.Mutex // protects seen
	seen []num

	svc     *Service
	record  *Method[num, struct{}]
	barrier *Method[num, num]
}

func newNotifyService(t *testing.T) *notifyService {
	ns := &notifyService{svc: NewService("notes")}
	ns.record = mustRegister(t, ns.svc, "Record", func(_ context.Context, x num) (struct{}, error) {
		ns.mu.Lock()
		defer ns.mu.Unlock()
		ns.seen = append(ns.seen, x)
		return struct{}{}, nil
	})
	ns.barrier = mustRegister(t, ns.svc, "Barrier", func(_ context.Context, x num) (num, error) { return x, nil })
	return ns
}

func (ns *notifyService) snapshot() []num {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	return slices.Clone(ns.seen)
}

func TestNotifyArrivesInOrder(t *testing.T) {
	for _, local := range []bool{false, true} {
		name := map[bool]string{false: "tcp", true: "local"}[local]
		t.Run(name, func(t *testing.T) {
			ns := newNotifyService(t)
			s := newTestServer(t, Config{}, ns.svc)
			c := s.LocalClient()
			if !local {
				c = dialTest(t, serveTCP(t, s), ClientConfig{})
			}
			var want []num
			for i := range num(1000) {
				if err := ns.record.Notify(t.Context(), c, i); err != nil {
					t.Fatalf("notify %d: %v", i, err)
				}
				want = append(want, i)
			}
			if _, err := ns.barrier.Call(t.Context(), c, 0); err != nil {
				t.Fatal(err)
			}
			if got := ns.snapshot(); !slices.Equal(got, want) {
				t.Errorf("handled %d notifications, want all 1000 in order; first differences: %v", len(got), got[:min(len(got), 10)])
			}
		})
	}
}

func TestNotifyUnknownMethodKeepsConnection(t *testing.T) {
	ns := newNotifyService(t)
	c := dialTest(t, serveTCP(t, newTestServer(t, Config{}, ns.svc)), ClientConfig{})
	unknown := NewMethod[num, struct{}]("notes", "Nope")
	if err := unknown.Notify(t.Context(), c, 1); err != nil {
		t.Fatalf("notify of an unknown method: %v, want nil (nothing is answered)", err)
	}
	if got, err := ns.barrier.Call(t.Context(), c, 7); err != nil || got != 7 {
		t.Errorf("call after it = %d, %v; want 7, nil", got, err)
	}
}

func TestNotifyOnClosedClient(t *testing.T) {
	ns := newNotifyService(t)
	c := dialTest(t, serveTCP(t, newTestServer(t, Config{}, ns.svc)), ClientConfig{})
	c.Close()
	if err := ns.record.Notify(t.Context(), c, 1); !errors.Is(err, ErrClosed) {
		t.Errorf("notify on a closed client: %v, want ErrClosed", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := ns.record.Notify(ctx, c, 1); !errors.Is(err, context.Canceled) {
		t.Errorf("notify with an ended context: %v, want context.Canceled", err)
	}
}

// TestCloseCancelsNotification: a notification handler waiting on its
// context is released when the server closes, as a call's handler is.
func TestCloseCancelsNotification(t *testing.T) {
	started := make(chan struct{})
	svc := NewService("waiter")
	wait := mustRegister(t, svc, "Wait", func(ctx context.Context, _ num) (struct{}, error) {
		close(started)
		<-ctx.Done()
		return struct{}{}, ctx.Err()
	})
	s := newTestServer(t, Config{}, svc)
	c := dialTest(t, serveTCP(t, s), ClientConfig{})
	if err := wait.Notify(t.Context(), c, 1); err != nil {
		t.Fatal(err)
	}
	<-started
	if err := s.Close(); err != nil {
		t.Errorf("Close = %v, want nil", err)
	}
}
