package rpc

import (
	"context"
	"testing"
)

// maxFastPathAllocs is the project's budget of allocations per call, on
// both ends together, for []byte and BinaryAppender payloads.
const maxFastPathAllocs = 4

// TestFastPathAllocs counts the allocations of a whole call over
// loopback TCP, client and server together.
func TestFastPathAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocation counts")
	}
	svc, echo := echoService(t)
	double := mustRegister(t, svc, "Double", func(_ context.Context, p point) (point, error) {
		return point{2 * p.X, 2 * p.Y}, nil
	})
	c := dialTest(t, serveTCP(t, newTestServer(t, Config{}, svc)), ClientConfig{})
	ctx := context.Background()
	req := make([]byte, 128)
	tests := []struct {
		name string
		call func()
	}{
		{"bytes", func() { echo.Call(ctx, c, req) }},
		{"binary", func() { double.Call(ctx, c, point{1, 2}) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.call() // warm the pools and buffers
			if n := testing.AllocsPerRun(200, tt.call); n > maxFastPathAllocs {
				t.Errorf("%v allocations per call, want at most %d", n, maxFastPathAllocs)
			} else {
				t.Logf("%v allocations per call", n)
			}
		})
	}
}
