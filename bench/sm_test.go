package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bifrost-go/bifrost"
	"github.com/bifrost-go/bifrost/rpc"
	"github.com/bifrost-go/bifrost/sm"
)

// benchPut is a command that keeps nothing: what is measured is the
// framework around it.
var benchPut = sm.NewCommand[[]byte, []byte]("bench", "put")

type emptyState struct{}

func (emptyState) Snapshot() ([]byte, error) { return nil, nil }
func (emptyState) Restore([]byte) error      { return nil }

func benchMachine() *sm.Machine {
	m := sm.NewMachine("bench", emptyState{})
	sm.HandleCommand(m, benchPut, func(_ *sm.Apply, b []byte) ([]byte, error) { return nil, nil })
	return m
}

// BenchmarkSMCommand measures a typed command through sm (session,
// sequence number, dedupe, envelope, leader following) against a raw
// node.Propose of the same 128 bytes, both called over one rpc hop to the
// leader of the same 3-member loopback group of Nodes on fsync'd WALs.
// Sharing the group keeps what differs between the two to sm itself: the
// same raft settings, transport, WALs and background traffic (the
// members' heartbeats). On a shared machine two runs a second apart
// differ by more than the overhead, so the interleaved run alternates
// short rounds of the two and reports sm's time over raw's from the same
// moments: that ratio is the overhead.
func BenchmarkSMCommand(b *testing.B) {
	for _, callers := range []int{1, 64} {
		g := startCommandGroup(b)
		b.Run(fmt.Sprintf("raw/callers=%d", callers), func(b *testing.B) { runParallel(b, callers, g.raw) })
		b.Run(fmt.Sprintf("sm/callers=%d", callers), func(b *testing.B) { runParallel(b, callers, g.sm) })
		b.Run(fmt.Sprintf("interleaved/callers=%d", callers), func(b *testing.B) { g.interleave(b, callers) })
	}
}

// interleave runs b.N raw proposes and b.N sm commands in alternating
// rounds of round operations each, and reports each one's time per
// operation and sm's over raw's.
func (g *commandGroup) interleave(b *testing.B, callers int) {
	const round = 256
	ctx := context.Background()
	if err := errors.Join(g.raw(ctx), g.sm(ctx)); err != nil {
		b.Fatalf("warm-up: %v", err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	var raw, typed time.Duration
	for done := 0; done < b.N; done += round {
		n := min(round, b.N-done)
		raw += timeOps(b, callers, n, g.raw)
		typed += timeOps(b, callers, n, g.sm)
	}
	b.StopTimer()
	b.ReportMetric(float64(raw.Nanoseconds())/float64(b.N), "raw-ns/op")
	b.ReportMetric(float64(typed.Nanoseconds())/float64(b.N), "sm-ns/op")
	b.ReportMetric(float64(typed)/float64(raw), "sm/raw")
}

// timeOps runs op n times from callers goroutines and returns how long
// that took.
func timeOps(b *testing.B, callers, n int, op func(context.Context) error) time.Duration {
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Value
	for range min(callers, n) {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				if err := op(context.Background()); err != nil {
					failed.Store(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := failed.Load(); err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}

// commandGroup is a group of Nodes carrying the bench machine, with a
// "raw" service on every member that proposes its request's bytes to
// raft as they are.
type commandGroup struct {
	leader string
	pool   *rpc.Pool
	client *sm.Client
	cmd    []byte
}

var rawPropose = rpc.NewMethod[[]byte, []byte]("raw", "propose")

func startCommandGroup(b *testing.B) *commandGroup {
	nodes := startNodes(b, func(cfg *bifrost.Config) {
		cfg.Group, cfg.Machines = "bench", []*sm.Machine{benchMachine()}
	})
	for _, n := range nodes {
		svc := rpc.NewService("raw")
		r := n.Raft()
		// The host refuses these bytes at their first one, which names
		// no operation, and answers at once: what a raw propose costs is
		// raft's path alone.
		if _, err := rpc.Register(svc, "propose", func(ctx context.Context, req []byte) ([]byte, error) {
			_, v, err := r.Propose(ctx, req)
			return v, err
		}); err != nil {
			b.Fatal(err)
		}
		if err := n.RPC().AddService(svc); err != nil {
			b.Fatal(err)
		}
	}
	pool, err := rpc.NewPool(rpc.ClientConfig{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { pool.Close() })
	client, err := sm.NewClient(sm.ClientConfig{Group: "bench", Servers: addrsOf(nodes), Pool: pool})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { client.Close(context.Background()) })
	return &commandGroup{leader: nodes[0].Addr(), pool: pool, client: client, cmd: bytes.Repeat([]byte{'x'}, payloadSize)}
}

func (g *commandGroup) raw(ctx context.Context) error {
	c, err := g.pool.Client(ctx, g.leader)
	if err != nil {
		return err
	}
	_, err = rawPropose.Call(ctx, c, g.cmd)
	return err
}

func (g *commandGroup) sm(ctx context.Context) error {
	_, err := benchPut.Do(ctx, g.client, g.cmd)
	return err
}
