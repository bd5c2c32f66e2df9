// Package metrics holds the numbers a node reports about itself: counters,
// gauges and fixed-bucket histograms that hot paths update with atomic
// operations alone, no lock and no allocation, and a Registry that names
// them, with fixed label sets, and writes them in the Prometheus text
// exposition format and as JSON for /debug/vars.
//
// There is no default registry: each owner (a node, an HTTP API) makes its
// own, so two nodes in one process never share a counter.
package metrics

import (
	"fmt"
	"math"
	"slices"
	"sync/atomic"
	"time"
)

// Counter is a number that only goes up. The zero value is ready; it is
// safe for concurrent use.
type Counter struct{ v atomic.Uint64 }

// Inc adds one.
func (c *Counter) Inc() { c.v.Add(1) }

// Add adds n.
func (c *Counter) Add(n uint64) { c.v.Add(n) }

// Load returns the count.
func (c *Counter) Load() uint64 { return c.v.Load() }

// Gauge is a number that goes up and down. The zero value is ready; it is
// safe for concurrent use.
type Gauge struct{ v atomic.Int64 }

// Set sets the gauge to v.
func (g *Gauge) Set(v int64) { g.v.Store(v) }

// Add adds d, which may be negative.
func (g *Gauge) Add(d int64) { g.v.Add(d) }

// Load returns the value.
func (g *Gauge) Load() int64 { return g.v.Load() }

// LatencyBuckets are upper bounds in seconds, from 50µs to 10s, fit for
// fsyncs, rpc calls and HTTP requests alike.
var LatencyBuckets = []float64{0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
	0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// Histogram counts observations into buckets fixed when it is made.
// Observe takes no lock and allocates nothing, so it can sit on a hot
// path; a Snapshot may see an observation in its bucket before it shows
// in the sum. It is safe for concurrent use.
type Histogram struct {
	bounds []float64       // upper bounds, strictly increasing
	counts []atomic.Uint64 // per bucket, not cumulative; the last is +Inf
	sum    atomic.Uint64   // math.Float64bits of the sum
}

// NewHistogram returns a histogram with the given upper bounds, which must
// be finite and strictly increasing; +Inf is implied. Bounds are the
// program's constants, so bad ones are a bug and NewHistogram panics.
func NewHistogram(bounds []float64) *Histogram {
	if err := checkBounds(bounds); err != nil {
		panic(err)
	}
	return &Histogram{bounds: slices.Clone(bounds), counts: make([]atomic.Uint64, len(bounds)+1)}
}

func checkBounds(bounds []float64) error {
	for i, b := range bounds {
		if math.IsInf(b, 0) || math.IsNaN(b) || i > 0 && b <= bounds[i-1] {
			return fmt.Errorf("metrics: histogram bounds not finite and increasing: %v", bounds)
		}
	}
	return nil
}

// Observe records v. A NaN counts in the +Inf bucket and spoils the sum,
// as Prometheus's own clients do.
func (h *Histogram) Observe(v float64) {
	i, _ := slices.BinarySearch(h.bounds, v) // the first bound >= v: buckets are "le"
	h.counts[i].Add(1)
	for {
		old := h.sum.Load()
		if h.sum.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			return
		}
	}
}

// ObserveDuration records d in seconds.
func (h *Histogram) ObserveDuration(d time.Duration) { h.Observe(d.Seconds()) }

// Since records the seconds since start.
func (h *Histogram) Since(start time.Time) { h.ObserveDuration(time.Since(start)) }

// HistogramSnapshot is a histogram's state at one moment, cumulative as
// the exposition format wants it.
type HistogramSnapshot struct {
	// Bounds are the buckets' upper bounds, +Inf left implied. The
	// histogram's own: read them, never change them.
	Bounds []float64
	// Cumulative[i] counts the observations at most Bounds[i].
	Cumulative []uint64
	// Count counts every observation: the +Inf bucket.
	Count uint64
	// Sum is the sum of the observations.
	Sum float64
}

// Snapshot returns the histogram's counts so far. Count is the sum of the
// buckets read, so the +Inf bucket always equals it.
func (h *Histogram) Snapshot() HistogramSnapshot {
	s := HistogramSnapshot{Bounds: h.bounds, Cumulative: make([]uint64, len(h.bounds))}
	for i := range h.bounds {
		s.Count += h.counts[i].Load()
		s.Cumulative[i] = s.Count
	}
	s.Count += h.counts[len(h.bounds)].Load()
	s.Sum = math.Float64frombits(h.sum.Load())
	return s
}
