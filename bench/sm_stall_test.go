package bench

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"
)

// stallHealthy is how many subscribers keep up in the stall benchmark.
const stallHealthy = 10

// BenchmarkSMStalledSubscriber measures the latency of Map inserts from
// 16 callers on a 3-member loopback group with fsync'd WALs while 10
// subscribers, each on a client of its own, take every event
// (stalled=0), and with one more subscriber whose callback never returns
// (stalled=1): it takes its first event and blocks until the run ends,
// as a Watch callback waiting on a channel would. Reported: p50-ns and
// p99-ns of the inserts; the healthy subscribers must each get every
// insert in order, and the stalled one must have stalled. Target: p99 of
// stalled=1 at most 10% above stalled=0.
func BenchmarkSMStalledSubscriber(b *testing.B) {
	for _, stalled := range []int{0, 1} {
		b.Run(fmt.Sprintf("stalled=%d", stalled), func(b *testing.B) { benchStalled(b, stalled) })
	}
}

// benchStalled runs on a group of its own, so that stalled=1 does not
// inherit the log and window stalled=0 left.
func benchStalled(b *testing.B, stalled int) {
	g := startMapGroup(b, runHostConfig(b))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cs := g.clients(b, 1+stallHealthy+stalled)
	writer, healthy, stuck := cs[0], cs[1:1+stallHealthy], cs[1+stallHealthy:]
	if _, _, err := benchMap.Insert(ctx, writer, "warm-up", ""); err != nil {
		b.Fatal(err)
	}
	sts, err := openStreams(ctx, healthy, stallHealthy)
	if err != nil {
		b.Fatal(err)
	}
	release := make(chan struct{})
	stuckDone := make([]chan error, stalled)
	for i, c := range stuck {
		st, err := onInserted.Open(ctx, c, struct{}{})
		if err != nil {
			b.Fatal(err)
		}
		stuckDone[i] = make(chan error, 1)
		go func() { stuckDone[i] <- stall(ctx, st, release) }()
	}
	lat := make([][]time.Duration, eventWriters)
	b.ResetTimer()
	wait := checkStreams(ctx, cancel, sts, b.N, eventWriters)
	err = insertN(ctx, writer, eventWriters, b.N, payloadSize, func(w int, d time.Duration) { lat[w] = append(lat[w], d) })
	b.StopTimer()
	if err != nil {
		cancel()
		b.Fatal(err)
	}
	if err := wait(); err != nil {
		b.Fatal(err)
	}
	close(release)
	for _, done := range stuckDone {
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
	reportLatency(b, slices.Concat(lat...))
}

// stall takes the first event of st, as a callback's caller would, and
// blocks until release closes; it fails if there was no such event.
func stall(ctx context.Context, st *insertStream, release <-chan struct{}) error {
	ev, err := st.Next(ctx)
	if err != nil {
		return fmt.Errorf("stalled subscriber: %w", err)
	}
	if err := newInsertChecker(eventWriters).see(ev); err != nil {
		return fmt.Errorf("stalled subscriber: %w", err)
	}
	<-release
	return nil
}

// reportLatency reports the median and the 99th percentile of ds, and
// ops/s over the timed run.
func reportLatency(b *testing.B, ds []time.Duration) {
	if len(ds) != b.N {
		b.Fatalf("%d latencies for %d inserts", len(ds), b.N)
	}
	slices.Sort(ds)
	b.ReportMetric(float64(ds[len(ds)/2]), "p50-ns")
	b.ReportMetric(float64(ds[len(ds)*99/100]), "p99-ns")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "inserts/s")
}
