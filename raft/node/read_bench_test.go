package node

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkReads compares linearizable reads, lease reads and commands
// (128 B, fsync'd WAL) on one 3-node loopback group, with 64 callers on
// the leader. Reported as ops/s.
func BenchmarkReads(b *testing.B) {
	g := newLoopbackGroupWith(b, 3, func(c *Config) { c.LeaseReads = true })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	lead := g.waitLeader(ctx).node
	cmd := make([]byte, 128)
	ops := map[string]func(context.Context) error{
		"command":   func(ctx context.Context) error { _, _, err := lead.Propose(ctx, cmd); return err },
		"readindex": func(ctx context.Context) error { _, err := lead.ReadIndex(ctx); return err },
		"lease":     func(ctx context.Context) error { _, err := lead.LeaseRead(ctx); return err },
	}
	for _, name := range []string{"command", "readindex", "lease"} {
		b.Run("op="+name+"/callers=64", func(b *testing.B) {
			runParallelOps(b, 64, ops[name])
		})
	}
}

// runParallelOps runs b.N calls of op from callers goroutines.
func runParallelOps(b *testing.B, callers int, op func(context.Context) error) {
	ctx := context.Background()
	if err := op(ctx); err != nil {
		b.Fatalf("warm-up: %v", err)
	}
	b.ResetTimer()
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Value
	for range callers {
		wg.Go(func() {
			for next.Add(1) <= int64(b.N) {
				if err := op(ctx); err != nil {
					failed.Store(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	if err := failed.Load(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}
