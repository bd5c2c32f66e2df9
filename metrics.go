package bifrost

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/bifrost-go/bifrost/internal/metrics"
	"github.com/bifrost-go/bifrost/raft"
	"github.com/bifrost-go/bifrost/rpc"
	"github.com/bifrost-go/bifrost/sm"
)

// The metrics of a node are the counts its parts keep anyway (their
// Stats methods), read when scraped, so that reporting them costs the
// hot paths nothing more than the atomic adds the parts already do.
// Each node and each HTTP API has its own registry: two nodes in one
// process never share a number.

// WriteMetrics writes the node's metrics in the Prometheus text format.
// An HTTP API serves them at GET /metrics, with its own beside them.
func (n *Node) WriteMetrics(w io.Writer) error {
	r := metrics.NewRegistry()
	n.registerMetrics(r, map[string]bool{})
	return r.WriteText(w)
}

// registerMetrics adds the node's parts to r; services are the rpc
// services registered (registerRPCServices).
func (n *Node) registerMetrics(r *metrics.Registry, services map[string]bool) {
	n.registerRaftMetrics(r)
	n.registerRPCMetrics(r)
	n.registerRPCServices(r, services)
	n.registerSMMetrics(r)
	n.registerWALMetrics(r)
}

func (n *Node) registerWALMetrics(r *metrics.Registry) {
	if n.wal != nil {
		w := n.wal
		r.HistogramFunc("bifrost_wal_fsync_duration_seconds", "Latency of the write-ahead log's fsyncs.", nil,
			func() metrics.HistogramSnapshot { return w.Stats().SyncSeconds })
		r.CounterFunc("bifrost_wal_appended_bytes_total", "Bytes of records appended to the write-ahead log.", nil,
			func() uint64 { return w.Stats().BytesAppended })
	}
}

func (n *Node) registerRaftMetrics(r *metrics.Registry) {
	rn := n.raft
	gauge := func(name, help string, f func(st raft.Status) uint64) {
		r.GaugeFunc(name, help, nil, func() float64 { return float64(f(rn.Status().Status)) })
	}
	gauge("bifrost_raft_term", "The raft term this member is in.", func(st raft.Status) uint64 { return st.Term })
	gauge("bifrost_raft_commit_index", "The highest log index this member knows committed.", func(st raft.Status) uint64 { return st.Commit })
	gauge("bifrost_raft_applied_index", "The highest log index this member applied.", func(st raft.Status) uint64 { return st.Applied })
	gauge("bifrost_raft_leader", "1 while this member leads its group, else 0.", func(st raft.Status) uint64 {
		if st.Role == raft.RoleLeader {
			return 1
		}
		return 0
	})
	r.CounterFunc("bifrost_raft_entries_applied_total", "Log entries applied on this member.", nil,
		func() uint64 { return rn.Stats().EntriesApplied })
	r.CounterFunc("bifrost_raft_proposals_total", "Commands and configuration changes this member took into its log as leader.", nil,
		func() uint64 { return rn.Stats().Proposals })
	r.CounterFunc("bifrost_raft_elections_started_total", "Elections this member stood in as a candidate.", nil,
		func() uint64 { return rn.Stats().ElectionsStarted })
	r.CounterFunc("bifrost_raft_elections_won_total", "Elections this member won.", nil,
		func() uint64 { return rn.Stats().ElectionsWon })
	r.CounterFunc("bifrost_raft_leader_changes_total", "Times this member learned of a new leader.", nil,
		func() uint64 { return rn.Stats().LeaderChanges })
}

func (n *Node) registerRPCMetrics(r *metrics.Registry) {
	s := n.server
	const calls, errs = "Calls the member's rpc server answered.", "Calls the member's rpc server answered with an error."
	r.CounterFunc("bifrost_rpc_calls_total", calls, metrics.Labels{"transport": "network"}, func() uint64 { return s.Stats().Calls })
	r.CounterFunc("bifrost_rpc_calls_total", calls, metrics.Labels{"transport": "local"}, func() uint64 { return s.Stats().LocalCalls })
	r.CounterFunc("bifrost_rpc_errors_total", errs, metrics.Labels{"transport": "network"}, func() uint64 { return s.Stats().Errors })
	r.CounterFunc("bifrost_rpc_errors_total", errs, metrics.Labels{"transport": "local"}, func() uint64 { return s.Stats().LocalErrors })
	r.CounterFunc("bifrost_rpc_notifications_total", "One-way requests the member's rpc server took from connections.", nil,
		func() uint64 { return s.Stats().Notifications })
	r.GaugeFunc("bifrost_rpc_in_flight", "Requests from connections running on the member's rpc server.", nil,
		func() float64 { return float64(s.Stats().InFlight) })
}

// registerRPCServices adds to r the per-service series of the rpc
// server's services not in known yet, and adds them to known. Services
// are added to a running server, so a registry that lives long calls it
// at each scrape.
func (n *Node) registerRPCServices(r *metrics.Registry, known map[string]bool) {
	s := n.server
	const calls, errs = "Calls the member's rpc server answered, by service.", "Calls the member's rpc server answered with an error, by service."
	for name := range s.Stats().Services {
		if known[name] {
			continue
		}
		known[name] = true
		get := func() rpc.ServiceStats { return s.Stats().Services[name] }
		network, local := metrics.Labels{"service": name, "transport": "network"}, metrics.Labels{"service": name, "transport": "local"}
		r.CounterFunc("bifrost_rpc_service_calls_total", calls, network, func() uint64 { return get().Calls })
		r.CounterFunc("bifrost_rpc_service_calls_total", calls, local, func() uint64 { return get().LocalCalls })
		r.CounterFunc("bifrost_rpc_service_errors_total", errs, network, func() uint64 { return get().Errors })
		r.CounterFunc("bifrost_rpc_service_errors_total", errs, local, func() uint64 { return get().LocalErrors })
	}
}

// readModeNames label the read modes as the HTTP API's consistency
// parameter names them, stale being the follower read.
var readModeNames = map[sm.ReadMode]string{sm.Linearizable: "linearizable", sm.Lease: "lease", sm.Follower: "stale"}

func (n *Node) registerSMMetrics(r *metrics.Registry) {
	s, h := n.sm, n.host
	for mode, name := range readModeNames {
		r.CounterFunc("bifrost_sm_reads_total", "Queries this member took, by read mode.", metrics.Labels{"mode": name},
			func() uint64 { return s.Stats().Reads[mode] })
	}
	r.CounterFunc("bifrost_sm_reads_refused_total", "Queries refused for want of a read index.", nil,
		func() uint64 { return s.Stats().ReadsRefused })
	r.CounterFunc("bifrost_sm_commands_received_total", "Client commands this member received; a follower redirects them.", nil,
		func() uint64 { return s.Stats().Commands })
	r.CounterFunc("bifrost_sm_commands_applied_total", "Commands whose handler ran on this member.", nil,
		func() uint64 { return h.Stats().CommandsApplied })
	r.CounterFunc("bifrost_sm_polls_total", "Subscriber polls this member took.", nil,
		func() uint64 { return s.Stats().Polls })
	r.HistogramFunc("bifrost_sm_subscription_lag_entries",
		"Log entries from a subscriber's oldest waiting event to the newest recorded, at each poll the leader answered.", nil,
		func() metrics.HistogramSnapshot { return h.Stats().SubscriptionLag })
}

// httpMetrics are an HTTP API's registry: the node's metrics and the
// API's own, the requests it answered by route and status class.
type httpMetrics struct {
	node   *Node
	reg    *metrics.Registry
	routes sync.Map // pattern -> *routeMetrics, stored once complete

	mu       sync.Mutex      // serialises registering, so each series is registered once; protects services
	services map[string]bool // the rpc services registered
}

// routeMetrics are one route's series.
type routeMetrics struct {
	codes   [6]*metrics.Counter // by status class: 2xx at 2 ... 5xx at 5; 0 for anything else, 1 unused
	latency *metrics.Histogram
}

func newHTTPMetrics(n *Node) *httpMetrics {
	m := &httpMetrics{node: n, reg: metrics.NewRegistry(), services: map[string]bool{}}
	n.registerMetrics(m.reg, m.services)
	return m
}

// registry returns the registry, with the rpc services added since the
// last scrape.
func (m *httpMetrics) registry() *metrics.Registry {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.node.registerRPCServices(m.reg, m.services)
	return m.reg
}

// route returns the series of pattern, the ServeMux pattern that answered
// (empty for the mux's own redirects), registering them at its first
// request. Patterns are the API's own, not what clients send, so the
// label sets stay as few as the routes.
func (m *httpMetrics) route(pattern string) *routeMetrics {
	if rm, ok := m.routes.Load(pattern); ok {
		return rm.(*routeMetrics)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if rm, ok := m.routes.Load(pattern); ok {
		return rm.(*routeMetrics)
	}
	rm := &routeMetrics{}
	route := pattern
	if route == "" {
		route = "other"
	}
	for class := range rm.codes {
		code := strconv.Itoa(class) + "xx"
		switch class {
		case 0:
			code = "other"
		case 1:
			continue // a handler's answer is never informational
		}
		rm.codes[class] = m.reg.Counter("bifrost_http_requests_total", "HTTP requests answered, by route and status class.",
			metrics.Labels{"route": route, "code": code})
	}
	rm.latency = m.reg.Histogram("bifrost_http_request_duration_seconds", "Time to answer an HTTP request, by route.",
		metrics.Labels{"route": route}, metrics.LatencyBuckets)
	m.routes.Store(pattern, rm)
	return rm
}

// serve answers r through next and counts it.
func (m *httpMetrics) serve(w http.ResponseWriter, r *http.Request, next http.Handler) {
	start := time.Now()
	rec := &statusRecorder{ResponseWriter: w}
	next.ServeHTTP(rec, r) // a ServeMux sets r.Pattern to the route that answered
	rm := m.route(r.Pattern)
	class := rec.status() / 100
	if class < 2 || class > 5 {
		class = 0
	}
	rm.codes[class].Inc()
	rm.latency.Since(start)
}

// statusRecorder remembers the status a handler answered with.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(p []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the writer's Flush and
// deadlines, which the event streams use.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (s *statusRecorder) status() int {
	if s.code == 0 {
		return http.StatusOK // a handler that wrote nothing answered 200
	}
	return s.code
}

func (h *HTTP) metrics(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", metrics.ContentType)
	h.stats.registry().WriteText(w)
}

// vars answers what expvar's handler would, the command line and the
// memory statistics, and the node's metrics under "bifrost". It writes
// the JSON itself rather than import expvar, whose init adds /debug/vars
// to http.DefaultServeMux in every program that imports it, and it
// publishes nothing process-wide: each node answers its own.
func (h *HTTP) vars(w http.ResponseWriter, r *http.Request) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	// Neither fails to encode, as expvar assumes too: strings, and
	// numbers that are all finite.
	cmdline, _ := json.Marshal(os.Args)
	mem, _ := json.Marshal(ms)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	fmt.Fprintf(w, "{\n%q: %s,\n%q: %s,\n%q: %s\n}\n", "bifrost", h.stats.registry(), "cmdline", cmdline, "memstats", mem)
}
