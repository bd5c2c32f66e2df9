package bifrost

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bifrost-go/bifrost/raft"
	"github.com/bifrost-go/bifrost/raft/node"
	"github.com/bifrost-go/bifrost/rpc"
)

// scrape is one GET /metrics, its samples by series (name{labels} as
// written) and the TYPE of each family.
type scrape struct {
	samples map[string]float64
	types   map[string]string
}

// scrapeMetrics gets /metrics from h and reads it back: every family
// has HELP then TYPE before its samples, every sample parses.
func scrapeMetrics(t *testing.T, h *HTTP) scrape {
	t.Helper()
	w := do(h, "GET", "/metrics", "")
	if w.Code != 200 || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/plain; version=0.0.4") {
		t.Fatalf("GET /metrics: %d %q", w.Code, w.Header().Get("Content-Type"))
	}
	s := scrape{samples: map[string]float64{}, types: map[string]string{}}
	var helped string
	sc := bufio.NewScanner(w.Body)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "# HELP "); ok {
			helped, _, _ = strings.Cut(rest, " ")
			continue
		}
		if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
			name, kind, _ := strings.Cut(rest, " ")
			if name != helped {
				t.Fatalf("TYPE of %s without its HELP", name)
			}
			s.types[name] = kind
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if i < 0 || err != nil {
			t.Fatalf("sample %q: %v", line, err)
		}
		if name, _, _ := strings.Cut(line[:i], "{"); s.types[strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_sum"), "_count")] == "" {
			t.Fatalf("sample %q before its family's TYPE", line)
		}
		s.samples[line[:i]] = v
	}
	return s
}

// get returns a sample's value, failing t if the series is missing.
func (s scrape) get(t *testing.T, series string) float64 {
	t.Helper()
	v, ok := s.samples[series]
	if !ok {
		t.Fatalf("no series %s", series)
	}
	return v
}

// A three-node cluster driven through the HTTP API reports what it did:
// each node its own requests, reads of every mode, commands applied,
// fsyncs, rpc calls and the leader changes of a transfer.
func TestMetricsOfAClusterAtWork(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	nodes, _ := startCluster(t, 3)
	hs := make([]*HTTP, len(nodes))
	for i, n := range nodes {
		h, err := NewHTTP(n, HTTPConfig{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(h.Close)
		hs[i] = h
	}
	lead := leaderIndex(ctx, t, nodes)
	before := make([]scrape, len(hs))
	for i, h := range hs {
		before[i] = scrapeMetrics(t, h)
	}

	const puts = 3
	for i := range puts {
		if w := do(hs[0], "PUT", fmt.Sprintf("/v1/kv/k%d", i), "v"); w.Code != 200 {
			t.Fatalf("PUT: %d %s", w.Code, w.Body)
		}
	}
	for _, mode := range []string{"linearizable", "lease", "stale"} {
		if w := do(hs[0], "GET", "/v1/kv/k0?consistency="+mode, ""); w.Code != 200 {
			t.Fatalf("GET %s: %d %s", mode, w.Code, w.Body)
		}
	}
	if w := do(hs[0], "GET", "/v1/kv/absent", ""); w.Code != 404 {
		t.Fatalf("GET absent: %d", w.Code)
	}
	newLead := transferLeadership(ctx, t, nodes, lead)
	index := nodes[newLead].Raft().Status().Commit
	for _, n := range nodes {
		err := n.Raft().WaitFor(ctx, func(st node.Status) bool {
			return st.Lead != 0 && st.Lead != uint64(lead+1) && st.Applied >= index
		})
		if err != nil {
			t.Fatal(err)
		}
	}

	after := make([]scrape, len(hs))
	for i, h := range hs {
		after[i] = scrapeMetrics(t, h)
	}
	// A route's series start at its first request.
	delta := func(i int, series string) float64 { return after[i].samples[series] - before[i].samples[series] }
	sum := func(series string) (d float64) {
		for i := range hs {
			d += delta(i, series)
		}
		return d
	}
	put := `bifrost_http_requests_total{code="2xx",route="PUT /v1/kv/{key...}"}`
	if d := delta(0, put); d != puts {
		t.Errorf("node 1: %s moved %v, want %d", put, d, puts)
	}
	get4xx := `bifrost_http_requests_total{code="4xx",route="GET /v1/kv/{key...}"}`
	if d := delta(0, get4xx); d != 1 {
		t.Errorf("node 1: %s moved %v, want 1", get4xx, d)
	}
	if _, ok := after[1].samples[put]; ok {
		t.Errorf("node 2 counts node 1's PUTs: %s = %v", put, after[1].samples[put])
	}
	if n := after[0].get(t, `bifrost_http_request_duration_seconds_count{route="PUT /v1/kv/{key...}"}`); n != puts {
		t.Errorf("PUT latency observations: got %v, want %d", n, puts)
	}
	for _, mode := range []string{"linearizable", "lease", "stale"} {
		// The 404 is a linearizable read too; any member may have answered.
		if d := sum(`bifrost_sm_reads_total{mode="` + mode + `"}`); d < 1 {
			t.Errorf("reads of mode %s moved %v over the cluster, want at least 1", mode, d)
		}
	}
	for i := range hs {
		if d := delta(i, "bifrost_sm_commands_applied_total"); d < puts {
			t.Errorf("node %d: commands applied moved %v, want at least %d", i+1, d, puts)
		}
		if n := after[i].get(t, "bifrost_wal_fsync_duration_seconds_count"); n <= 0 {
			t.Errorf("node %d: no fsync observed", i+1)
		}
		if n := after[i].get(t, `bifrost_rpc_calls_total{transport="network"}`) +
			after[i].get(t, "bifrost_rpc_notifications_total"); n <= 0 {
			t.Errorf("node %d: no rpc request from the network counted", i+1)
		}
		if d := delta(i, "bifrost_raft_leader_changes_total"); d < 1 {
			t.Errorf("node %d: leader changes moved %v across a transfer, want at least 1", i+1, d)
		}
	}
	if d := sum("bifrost_raft_elections_won_total"); d < 1 {
		t.Errorf("elections won moved %v across a transfer, want at least 1", d)
	}
	if got := after[newLead].get(t, "bifrost_raft_leader") + after[lead].get(t, "bifrost_raft_leader"); got > 1 {
		t.Errorf("bifrost_raft_leader of the old and the new leader sum to %v, want at most 1", got)
	}
	for name, kind := range map[string]string{"bifrost_wal_fsync_duration_seconds": "histogram",
		"bifrost_raft_entries_applied_total": "counter", "bifrost_rpc_in_flight": "gauge"} {
		if got := after[0].types[name]; got != kind {
			t.Errorf("TYPE of %s: got %q, want %s", name, got, kind)
		}
	}
}

// leaderIndex waits for a node that leads by its own account and
// returns its index in nodes.
func leaderIndex(ctx context.Context, t *testing.T, nodes []*Node) int {
	t.Helper()
	for {
		for i, n := range nodes {
			if n.Raft().Status().Role == raft.RoleLeader {
				return i
			}
		}
		for _, n := range nodes {
			sub, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
			n.Raft().WaitFor(sub, func(st node.Status) bool { return st.Role == raft.RoleLeader })
			cancel()
		}
		if ctx.Err() != nil {
			t.Fatal("no leader")
		}
	}
}

// transferLeadership moves leadership away from nodes[from] (which may
// have lost it meanwhile) and returns the index of the new leader.
func transferLeadership(ctx context.Context, t *testing.T, nodes []*Node, from int) int {
	t.Helper()
	for {
		lead := leaderIndex(ctx, t, nodes)
		if lead != from {
			return lead
		}
		err := nodes[lead].Raft().TransferLeadership(ctx, 0)
		if err != nil && !errors.Is(err, node.ErrTransferFailed) && !errors.Is(err, raft.ErrNotLeader) {
			t.Fatal(err)
		}
	}
}

func TestDebugVars(t *testing.T) {
	h := newTestHTTP(t, HTTPConfig{})
	w := do(h, "GET", "/debug/vars", "")
	if w.Code != 200 || w.Header().Get("Content-Type") != "application/json; charset=utf-8" {
		t.Fatalf("GET /debug/vars: %d %q", w.Code, w.Header().Get("Content-Type"))
	}
	var vars struct {
		Cmdline  []string       `json:"cmdline"`
		Memstats map[string]any `json:"memstats"`
		Bifrost  map[string]any `json:"bifrost"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &vars); err != nil {
		t.Fatalf("%v: %s", err, w.Body)
	}
	if len(vars.Cmdline) == 0 || vars.Memstats["HeapAlloc"] == nil {
		t.Errorf("cmdline %q, memstats %d fields: want expvar's", vars.Cmdline, len(vars.Memstats))
	}
	if _, ok := vars.Bifrost["bifrost_raft_term"]; !ok {
		t.Errorf("bifrost vars lack bifrost_raft_term: %v", vars.Bifrost)
	}
}

func TestMetricsRoutesRefuseOtherMethods(t *testing.T) {
	h := newTestHTTP(t, HTTPConfig{})
	for _, target := range []string{"/metrics", "/debug/vars"} {
		if w := do(h, "POST", target, ""); w.Code != 405 {
			t.Errorf("POST %s: got %d, want 405", target, w.Code)
		}
	}
}

func TestNodeWriteMetrics(t *testing.T) {
	nodes, _ := startCluster(t, 1)
	var b strings.Builder
	if err := nodes[0].WriteMetrics(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "# TYPE bifrost_wal_fsync_duration_seconds histogram\n") {
		t.Errorf("no fsync histogram in\n%s", b.String())
	}
}

// The first requests of a route, arriving together, share its series.
func TestHTTPMetricsFirstRequestsTogether(t *testing.T) {
	h := newTestHTTP(t, HTTPConfig{})
	const n = 8
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() { do(h, "GET", "/v1/status", "") })
	}
	wg.Wait()
	s := scrapeMetrics(t, h)
	if got := s.get(t, `bifrost_http_requests_total{code="2xx",route="GET /v1/status"}`); got != n {
		t.Errorf("got %v status requests counted, want %d", got, n)
	}
}

// Calls are counted by rpc service too, services added after the API
// started among them.
func TestMetricsCountRPCServices(t *testing.T) {
	h := newTestHTTP(t, HTTPConfig{})
	if w := do(h, "PUT", "/v1/kv/k", "v"); w.Code != 200 {
		t.Fatalf("PUT: %d %s", w.Code, w.Body)
	}
	svc := rpc.NewService("later")
	echo, err := rpc.Register(svc, "echo", func(_ context.Context, b []byte) ([]byte, error) { return b, nil })
	if err != nil {
		t.Fatal(err)
	}
	if err := h.node.RPC().AddService(svc); err != nil {
		t.Fatal(err)
	}
	if _, err := echo.Call(t.Context(), h.node.RPC().LocalClient(), []byte("x")); err != nil {
		t.Fatal(err)
	}
	s := scrapeMetrics(t, h)
	if got := s.get(t, `bifrost_rpc_service_calls_total{service="later",transport="local"}`); got != 1 {
		t.Errorf("calls of the service added later: got %v, want 1", got)
	}
	if got := s.get(t, `bifrost_rpc_service_calls_total{service="sm.bifrost",transport="local"}`); got < 1 {
		t.Errorf("calls of the group's sm service: got %v, want at least 1 (the PUT)", got)
	}
}
