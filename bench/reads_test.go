package bench

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/bifrost-go/bifrost/raft"
	"github.com/bifrost-go/bifrost/raft/node"
)

// nopSM applies nothing: the read benchmark measures consensus, not the
// state machine.
type nopSM struct{}

func (nopSM) Apply(raft.Entry) []byte { return nil }

// BenchmarkReads compares, on one 3-member loopback group with fsync'd
// WALs and 64 callers on the leader, linearizable reads (ReadIndex: one
// heartbeat round shared by all reads waiting), lease reads (no round
// while the lease holds) and 128-byte commands. Reported as ops/s; the
// target is ReadIndex at least 3x commands.
func BenchmarkReads(b *testing.B) {
	_, lead := startGroup(b, func() node.StateMachine { return nopSM{} },
		func(c *node.Config) { c.Raft.LeaseReads = true })
	cmd := make([]byte, 128)
	ops := []struct {
		name string
		op   func(context.Context) error
	}{
		{"command", func(ctx context.Context) error { _, _, err := lead.Propose(ctx, cmd); return err }},
		{"readindex", func(ctx context.Context) error { _, err := lead.ReadIndex(ctx); return err }},
		{"lease", func(ctx context.Context) error { _, err := lead.LeaseRead(ctx); return err }},
	}
	for _, o := range ops {
		b.Run("op="+o.name+"/callers=64", func(b *testing.B) { runParallel(b, 64, o.op) })
	}
}

// runParallel runs b.N calls of op from callers goroutines, each with one
// call outstanding, and reports ops/s.
func runParallel(b *testing.B, callers int, op func(context.Context) error) {
	ctx := context.Background()
	if err := op(ctx); err != nil {
		b.Fatalf("warm-up: %v", err)
	}
	b.ReportAllocs()
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
