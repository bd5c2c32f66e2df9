package bifrost

import (
	"context"
	"encoding/json"
	"maps"
	"math"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bifrost-go/bifrost/chash"
	"github.com/bifrost-go/bifrost/membership"
)

// joinRing registers a member called name through n, as a server of a
// group does, and puts it in group with weight, creating the group. kill
// stops its heartbeats without leaving, as a crash would.
func joinRing(t testing.TB, n *Node, name, group string, weight uint64) (kill func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, pool, err := n.NewClient()
	if err != nil {
		t.Fatal(err)
	}
	if err := membership.NewObserver(c).CreateGroup(ctx, group); err != nil {
		t.Fatal(err)
	}
	mc := membership.Config{Group: n.Group(), Pool: pool, Servers: slices.Sorted(maps.Values(n.Peers()))}
	m, err := membership.Join(ctx, c, name, n.Addr(), mc)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.JoinGroupWeighted(ctx, group, weight); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	kill = func() { once.Do(func() { pool.Close() }) }
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		m.Close(ctx) // fails once killed: nothing to leave through
		c.Close(ctx)
		kill()
	})
	return kill
}

// getJSON does a GET on h and decodes its JSON answer into v.
func getJSON(t testing.TB, h http.Handler, target string, v any) {
	t.Helper()
	w := do(h, "GET", target, "")
	if w.Code != 200 || !strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
		t.Fatalf("GET %s: %d %s", target, w.Code, w.Body)
	}
	if err := json.Unmarshal(w.Body.Bytes(), v); err != nil {
		t.Fatalf("GET %s: %v in %s", target, err, w.Body)
	}
}

// The page is one document: no script, style, font or image from
// anywhere, here or elsewhere, and a policy that would block one; and it
// polls only endpoints the API has.
func TestStatusPageIsSelfContained(t *testing.T) {
	h := newTestHTTP(t, HTTPConfig{})
	w := do(h, "GET", "/", "")
	if w.Code != 200 || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") {
		t.Fatalf("GET /: %d %q", w.Code, w.Header().Get("Content-Type"))
	}
	if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("Content-Security-Policy %q, want default-src 'none'", csp)
	}
	page := w.Body.String()
	// The SVG namespace is a name, not an address anything loads from.
	rest := strings.ReplaceAll(page, `"http://www.w3.org/2000/svg"`, "")
	for _, re := range []string{`https?:`, `//[a-z0-9.-]+\.[a-z]{2,}`, `<link`, `\bsrc\s*=`, `\bhref\s*=`,
		`@import`, `url\(`, `<iframe`, `<object`, `<embed`, `import\(`, `\bimportScripts\b`} {
		if loc := regexp.MustCompile(re).FindStringIndex(rest); loc != nil {
			t.Errorf("page refers to something outside it (%s): %q", re, rest[max(0, loc[0]-40):min(len(rest), loc[1]+40)])
		}
	}
	polled := regexp.MustCompile(`"(v1/[a-z]+)`).FindAllStringSubmatch(page, -1)
	if len(polled) < 3 {
		t.Fatalf("page polls %v, want the cluster, members and rings", polled)
	}
	for _, p := range polled {
		if w := do(h, "GET", "/"+p[1], ""); w.Code != 200 || !json.Valid(w.Body.Bytes()) {
			t.Errorf("the page polls /%s: %d %s", p[1], w.Code, w.Body)
		}
	}
	if w := do(h, "POST", "/", ""); w.Code != 404 || !json.Valid(w.Body.Bytes()) {
		t.Errorf("POST /: %d %s, want a 404 in JSON", w.Code, w.Body)
	}
}

type ringsAnswer struct {
	Groups []struct {
		Group, Fingerprint, Error string
		Version                   uint64
		Servers                   []struct {
			Name, Addr string
			Weight     uint64
			Online     bool
			Share      float64
			Arcs       [][2]float64
		}
	}
}

// startRingAPI starts a one-node cluster and its API, configured to draw
// group "cache".
func startRingAPI(t *testing.T) ([]*Node, *HTTP) {
	t.Helper()
	nodes, _ := startCluster(t, 1)
	h, err := NewHTTP(nodes[0], HTTPConfig{Groups: []string{"cache"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return nodes, h
}

// /v1/rings shows the groups asked for and configured, each server with
// its weight and its arcs, which cover the hash space once between them.
func TestStatusPageRings(t *testing.T) {
	nodes, h := startRingAPI(t)
	joinRing(t, nodes[0], "a", "cache", 1)
	joinRing(t, nodes[0], "b", "cache", 3)
	joinRing(t, nodes[0], "c", "other", 1)

	// The rings are read when first asked for, after the joins.
	var got ringsAnswer
	getJSON(t, h, "/v1/rings?group=other&group=nogroup&group=other", &got)
	if len(got.Groups) != 3 {
		t.Fatalf("groups %+v, want cache (configured), nogroup and other (asked for)", got.Groups)
	}
	if names := []string{got.Groups[0].Group, got.Groups[1].Group, got.Groups[2].Group}; !slices.Equal(names, []string{"cache", "nogroup", "other"}) {
		t.Fatalf("groups %v, want cache (configured), nogroup and other (asked for)", names)
	}
	cache := got.Groups[0]
	if cache.Error != "" || cache.Version == 0 || len(cache.Fingerprint) != 16 {
		t.Errorf("cache: error %q, version %d, fingerprint %q", cache.Error, cache.Version, cache.Fingerprint)
	}
	var total float64
	var all [][2]float64
	for i, want := range []struct {
		name   string
		weight uint64
	}{{"a", 1}, {"b", 3}} {
		s := cache.Servers[i]
		if s.Name != want.name || s.Weight != want.weight || !s.Online || s.Addr == "" || len(s.Arcs) == 0 {
			t.Errorf("server %d: %+v, want %s online with weight %d and arcs", i, s, want.name, want.weight)
		}
		total += s.Share
		all = append(all, s.Arcs...)
	}
	if a, b := cache.Servers[0].Share, cache.Servers[1].Share; math.Abs(total-1) > 1e-9 || b < 2*a {
		t.Errorf("shares %v and %v: want a total of 1, the heavier server's about three times the other's", a, b)
	}
	slices.SortFunc(all, func(x, y [2]float64) int { return int(math.Copysign(1, x[0]-y[0])) })
	if all[0][0] != 0 || all[len(all)-1][1] != 1 {
		t.Errorf("arcs run from %v to %v, want 0 to 1", all[0][0], all[len(all)-1][1])
	}
	for i := 1; i < len(all); i++ {
		if math.Abs(all[i][0]-all[i-1][1]) > 2e-6 {
			t.Fatalf("arcs %v and %v leave a gap or overlap", all[i-1], all[i])
		}
	}
	if g := got.Groups[1]; !strings.Contains(g.Error, "no such group") || len(g.Servers) != 0 {
		t.Errorf("nogroup: %+v, want an error and no servers", g)
	}
	if g := got.Groups[2]; g.Error != "" || len(g.Servers) != 1 || g.Servers[0].Share != 1 {
		t.Errorf("other: %+v, want its one server owning everything", g)
	}

	// Naming none shows every group the cluster has.
	var every ringsAnswer
	getJSON(t, h, "/v1/rings", &every)
	var names []string
	for _, g := range every.Groups {
		names = append(names, g.Group)
	}
	if !slices.Equal(names, []string{"cache", "other"}) {
		t.Errorf("groups without ?group=: %v, want the cluster's, cache and other", names)
	}
}

// A page that names the rings it has (If-None-Match) gets 304 and no
// body while they are unchanged, and the new rings once one changes.
func TestStatusPageRingsRevalidate(t *testing.T) {
	nodes, h := startRingAPI(t)
	joinRing(t, nodes[0], "a", "cache", 1)
	get := func(etag string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "/v1/rings", nil)
		if etag != "" {
			r.Header.Set("If-None-Match", etag)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	first := get("")
	etag := first.Header().Get("ETag")
	if first.Code != 200 || etag == "" || !strings.Contains(first.Body.String(), `"name":"a"`) {
		t.Fatalf("first GET: %d, ETag %q, %s", first.Code, etag, first.Body)
	}
	if w := get(etag); w.Code != http.StatusNotModified || w.Body.Len() != 0 {
		t.Fatalf("GET naming its ETag: %d with %d bytes, want 304 and none", w.Code, w.Body.Len())
	}
	h.mu.Lock()
	ring := h.rings["cache"]
	h.mu.Unlock()
	changed := make(chan struct{}, 1)
	defer ring.WatchRing(func(chash.RingChange) {
		select {
		case changed <- struct{}{}:
		default:
		}
	})()
	joinRing(t, nodes[0], "b", "cache", 1)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for {
		// Members may show b before the ring this node follows does.
		w := get(etag)
		if w.Code == 200 {
			var got ringsAnswer
			if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			if w.Header().Get("ETag") == etag {
				t.Fatal("a changed answer kept its ETag")
			}
			etag = w.Header().Get("ETag")
			if s := got.Groups[0].Servers; len(s) == 2 && len(s[1].Arcs) > 0 {
				if s[0].Share+s[1].Share < 0.999999 || len(s[0].Arcs) == 0 {
					t.Fatalf("after b joined: %+v, want a and b sharing the ring", s)
				}
				return
			}
		} else if w.Code != http.StatusNotModified {
			t.Fatalf("GET: %d %s", w.Code, w.Body)
		}
		select {
		case <-ctx.Done():
			t.Fatal("the ring never showed b")
		case <-changed:
		}
	}
}

// arcs turns ranges into fractions of the hash space that meet end to
// start, and their total into the exact share.
func TestStatusPageArcs(t *testing.T) {
	const top = math.MaxUint64
	for _, tt := range []struct {
		name   string
		ranges []chash.Range
		share  float64
		arcs   [][2]float64
	}{
		{"none", nil, 0, [][2]float64{}},
		{"all", []chash.Range{{Start: 0, End: top}}, 1, [][2]float64{{0, 1}}},
		{"halves", []chash.Range{{Start: 0, End: top / 2}}, 0.5, [][2]float64{{0, 0.5}}},
		{"two", []chash.Range{{Start: 0, End: top / 4}, {Start: top / 2, End: top}}, 0.75, [][2]float64{{0, 0.25}, {0.5, 1}}},
		{"one hash", []chash.Range{{Start: 7, End: 7}}, 1 / hashSpace, [][2]float64{{0, 0}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			share, arcs := arcs(tt.ranges)
			if share != tt.share || !slices.Equal(arcs, tt.arcs) {
				t.Errorf("arcs(%v) = %v, %v; want %v, %v", tt.ranges, share, arcs, tt.share, tt.arcs)
			}
		})
	}
}

// A group's servers are its members, offline ones too, joined to their
// arcs by name; a server the ring has but the read missed still shows.
func TestStatusPageRingServers(t *testing.T) {
	ring, err := chash.NewRing(map[string]uint64{"a": 1, "b": 1}, chash.RingConfig{})
	if err != nil {
		t.Fatal(err)
	}
	got := ringServers(drawRing(ring), []membership.Member{
		{Name: "a", Addr: "a:1", Online: true, Weight: 1},
		{Name: "c", Addr: "c:1", Online: false, Weight: 5},
	})
	if len(got) != 3 {
		t.Fatalf("servers %+v, want a, b and c", got)
	}
	for i, want := range []struct {
		name, addr string
		weight     uint64
		online     bool
		arcs       bool
	}{{"a", "a:1", 1, true, true}, {"b", "", 0, true, true}, {"c", "c:1", 5, false, false}} {
		s := got[i]
		if s.Name != want.name || s.Addr != want.addr || s.Weight != want.weight || s.Online != want.online ||
			(len(s.Arcs) > 0) != want.arcs || (s.Share > 0) != want.arcs || s.Arcs == nil {
			t.Errorf("server %d: %+v, want %+v", i, s, want)
		}
	}
	if none := ringServers(drawRing(nil), nil); none == nil || len(none) != 0 {
		t.Errorf("no ring, no members: %#v, want an empty list", none)
	}
}

type clusterAnswer struct {
	Group   string
	Self    uint64
	Leader  uint64
	Term    uint64
	Members []memberStatus
}

// /v1/cluster has every member answer for itself; one without an HTTP
// API, and so without the status service, or gone, shows as unreachable
// with the reason.
func TestStatusPageCluster(t *testing.T) {
	nodes, _ := startCluster(t, 3)
	var hs []*HTTP
	var closeAPI []func() // each once: the first ends before its node
	for _, n := range nodes[:2] {
		h, err := NewHTTP(n, HTTPConfig{})
		if err != nil {
			t.Fatal(err)
		}
		hs, closeAPI = append(hs, h), append(closeAPI, sync.OnceFunc(h.Close))
		t.Cleanup(closeAPI[len(closeAPI)-1])
	}
	if h, err := NewHTTP(nodes[0], HTTPConfig{}); err != nil {
		t.Fatalf("a second HTTP API of a node: %v", err)
	} else {
		h.Close()
	}
	do(hs[0], "PUT", "/v1/kv/k", "v") // a write waits for a leader

	var got clusterAnswer
	getJSON(t, hs[0], "/v1/cluster", &got)
	if got.Group != DefaultGroup || got.Self != 1 || got.Leader == 0 || len(got.Members) != 3 {
		t.Fatalf("cluster %+v, want node 1's view of three members with a leader", got)
	}
	for i, m := range got.Members[:2] {
		if m.ID != uint64(i+1) || !m.Reachable || !m.Voter || m.State == "" || m.Addr != nodes[i].Addr() {
			t.Errorf("member %d: %+v, want it reachable with its own status", i+1, m)
		}
	}
	if m := got.Members[2]; m.Reachable || !strings.Contains(m.Error, "no HTTP API") {
		t.Errorf("member 3, which has no HTTP API: %+v, want unreachable for want of the service", m)
	}

	closeAPI[1]()
	nodes[1].Close()
	nodes[1] = nil
	var after clusterAnswer
	getJSON(t, hs[0], "/v1/cluster", &after)
	if m := after.Members[1]; m.ID != 2 || m.Reachable || m.Error == "" || m.State != "" {
		t.Errorf("member 2, closed: %+v, want unreachable with the reason", m)
	}
}
