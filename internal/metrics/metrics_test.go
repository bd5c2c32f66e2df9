package metrics

import (
	"math"
	"sync"
	"testing"
	"time"
)

func TestHistogramBuckets(t *testing.T) {
	h := NewHistogram([]float64{1, 2, 5})
	for _, v := range []float64{0, 1, 1.5, 2, 4.9, 5, 6, 100} {
		h.Observe(v)
	}
	s := h.Snapshot()
	// "le": an observation equal to a bound counts in that bound's bucket.
	want := []uint64{2, 4, 6}
	for i := range want {
		if s.Cumulative[i] != want[i] {
			t.Errorf("bucket le=%v: got %d, want %d", s.Bounds[i], s.Cumulative[i], want[i])
		}
	}
	if s.Count != 8 {
		t.Errorf("count: got %d, want 8", s.Count)
	}
	if s.Sum != 120.4 {
		t.Errorf("sum: got %v, want 120.4", s.Sum)
	}
}

func TestHistogramObserveDuration(t *testing.T) {
	h := NewHistogram(LatencyBuckets)
	h.ObserveDuration(3 * time.Millisecond)
	s := h.Snapshot()
	if s.Count != 1 || s.Sum != 0.003 {
		t.Fatalf("got count %d sum %v, want 1 and 0.003", s.Count, s.Sum)
	}
	for i, le := range s.Bounds {
		want := uint64(0)
		if le >= 0.003 {
			want = 1
		}
		if s.Cumulative[i] != want {
			t.Errorf("le=%v: got %d, want %d", le, s.Cumulative[i], want)
		}
	}
}

func TestNewHistogramRefusesBadBounds(t *testing.T) {
	for _, bounds := range [][]float64{{1, 1}, {2, 1}, {1, math.Inf(1)}, {math.NaN()}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("NewHistogram(%v) did not panic", bounds)
				}
			}()
			NewHistogram(bounds)
		}()
	}
}

// Concurrent updates lose nothing: the counts and the sum's CAS loop.
func TestConcurrentUpdates(t *testing.T) {
	var c Counter
	var g Gauge
	h := NewHistogram(LatencyBuckets)
	const workers, each = 8, 1000
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				c.Inc()
				g.Add(2)
				g.Add(-1)
				h.Observe(1)
			}
		})
	}
	wg.Wait()
	s := h.Snapshot()
	if c.Load() != workers*each || g.Load() != workers*each || s.Count != workers*each || s.Sum != workers*each {
		t.Fatalf("counter %d gauge %d count %d sum %v, want %d each", c.Load(), g.Load(), s.Count, s.Sum, workers*each)
	}
}

func TestHotPathsDoNotAllocate(t *testing.T) {
	r := NewRegistry()
	c := r.Counter("c_total", "c", nil)
	g := r.Gauge("g", "g", Labels{"a": "b"})
	h := r.Histogram("h_seconds", "h", nil, LatencyBuckets)
	if n := testing.AllocsPerRun(100, func() {
		c.Inc()
		c.Add(2)
		g.Add(1)
		g.Set(3)
		h.Observe(0.01)
		h.ObserveDuration(time.Millisecond)
	}); n != 0 {
		t.Fatalf("got %v allocations per update, want 0", n)
	}
}

func BenchmarkCounterInc(b *testing.B) {
	var c Counter
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c.Inc()
		}
	})
}

func BenchmarkHistogramObserve(b *testing.B) {
	h := NewHistogram(LatencyBuckets)
	b.RunParallel(func(pb *testing.PB) {
		v := 0.0
		for pb.Next() {
			h.Observe(v)
			v += 0.0001
		}
	})
}
