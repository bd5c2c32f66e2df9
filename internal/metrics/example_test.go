package metrics_test

import (
	"os"

	"github.com/bifrost-go/bifrost/internal/metrics"
)

func ExampleRegistry_WriteText() {
	r := metrics.NewRegistry()
	for _, mode := range []string{"lease", "linearizable"} {
		r.Counter("reads_total", "Reads served, by mode.", metrics.Labels{"mode": mode}).Add(uint64(len(mode)))
	}
	h := r.Histogram("fsync_seconds", "Fsync latency.", nil, []float64{0.001, 0.01})
	h.Observe(0.0005)
	h.Observe(0.0025)
	r.WriteText(os.Stdout)
	// Output:
	// # HELP fsync_seconds Fsync latency.
	// # TYPE fsync_seconds histogram
	// fsync_seconds_bucket{le="0.001"} 1
	// fsync_seconds_bucket{le="0.01"} 2
	// fsync_seconds_bucket{le="+Inf"} 2
	// fsync_seconds_sum 0.003
	// fsync_seconds_count 2
	// # HELP reads_total Reads served, by mode.
	// # TYPE reads_total counter
	// reads_total{mode="lease"} 5
	// reads_total{mode="linearizable"} 12
}
