package bifrost

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"maps"
	"math"
	"net/http"
	"slices"

	"github.com/bifrost-go/bifrost/chash"
	"github.com/bifrost-go/bifrost/membership"
)

// statusPageHTML is the page GET / serves: HTML, CSS and plain JavaScript in
// one file, so the page works on a machine with no way out, and polls
// /v1/cluster, /v1/members and /v1/rings.
//
//go:embed statuspage/index.html
var statusPageHTML []byte

// statusPagePolicy lets the page run its own inline script and style and
// fetch from its own node, and nothing else: no asset from elsewhere can
// load even if one slipped into the page.
const statusPagePolicy = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

func (h *HTTP) statusPage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", statusPagePolicy)
	w.Header().Set("Cache-Control", "no-store")
	w.Write(statusPageHTML)
}

// ringServer is one server of a group as /v1/rings shows it. Arcs are
// the hashes it owns as fractions of the hash space, [start, end), in
// order; Share is their total. An offline member has none.
type ringServer struct {
	Name   string       `json:"name"`
	Addr   string       `json:"addr"`
	Weight uint64       `json:"weight"`
	Online bool         `json:"online"`
	Share  float64      `json:"share"`
	Arcs   [][2]float64 `json:"arcs"`
}

// groupRing is one group's ring as /v1/rings shows it. Version is the
// membership version the ring was built at; Error says why the group
// could not be shown, in part or at all.
type groupRing struct {
	Group       string       `json:"group"`
	Version     uint64       `json:"version"`
	Fingerprint string       `json:"fingerprint,omitempty"` // hex: a uint64 does not fit a JSON number
	Servers     []ringServer `json:"servers"`
	Error       string       `json:"error,omitempty"`
}

// allRings answers GET /v1/rings: the ring of every group in ?group= (which
// may be repeated), or of every group of the cluster if it names none,
// and of those in HTTPConfig.Groups or already followed here. The page
// asks every second and the rings rarely change, so the answer has an
// ETag and a client that names it in If-None-Match gets 304 and no body.
func (h *HTTP) allRings(w http.ResponseWriter, r *http.Request) {
	out := []groupRing{}
	for _, g := range h.ringGroups(r.Context(), r.URL.Query()["group"]) {
		out = append(out, h.groupRing(r.Context(), g))
	}
	body, err := json.Marshal(map[string]any{"groups": out})
	if err != nil {
		fail(w, http.StatusInternalServerError, err)
		return
	}
	sum := fnv.New64a()
	sum.Write(body)
	etag := fmt.Sprintf(`"%016x"`, sum.Sum64())
	w.Header().Set("ETag", etag)
	w.Header().Set("Cache-Control", "no-cache")
	if slices.Contains(r.Header.Values("If-None-Match"), etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(append(body, '\n'))
}

// ringGroups returns the groups /v1/rings shows, sorted, without
// repeats or empty names: those asked for, or all if none, and the
// configured and followed ones. If the cluster's groups cannot be read,
// the rest still show.
func (h *HTTP) ringGroups(ctx context.Context, asked []string) []string {
	h.mu.Lock()
	followed := slices.Collect(maps.Keys(h.rings))
	h.mu.Unlock()
	var all []string
	if len(asked) == 0 {
		ctx, cancel := context.WithTimeout(ctx, h.cfg.Timeout)
		defer cancel()
		all, _ = h.obs.Groups(ctx)
	}
	gs := slices.Concat(asked, h.cfg.Groups, followed, all)
	slices.Sort(gs)
	gs = slices.Compact(gs)
	return slices.DeleteFunc(gs, func(g string) bool { return g == "" })
}

// groupRing returns group's ring with its members' weights and online
// flags. The ring is the one this node follows, which may trail the
// members read by a moment.
func (h *HTTP) groupRing(ctx context.Context, group string) groupRing {
	out := groupRing{Group: group, Servers: []ringServer{}}
	ch, err := h.ringOf(ctx, group)
	if err != nil {
		out.Error = err.Error()
		return out
	}
	ring, version := ch.Ring()
	out.Version = version
	if ring != nil {
		out.Fingerprint = fmt.Sprintf("%016x", ring.Fingerprint())
	}
	ctx, cancel := context.WithTimeout(ctx, h.cfg.Timeout)
	defer cancel()
	members, _, err := h.obs.Members(ctx, group, false)
	if err != nil {
		out.Error = "members: " + err.Error()
	}
	out.Servers = ringServers(h.drawing(group, ring), members)
	return out
}

// drawing returns the drawing of group's ring, computed again only when
// the ring changed: a ring of hundreds of servers has tens of thousands
// of points, and every open page asks every second.
func (h *HTTP) drawing(group string, ring *chash.Ring) ringDrawing {
	h.mu.Lock()
	d, ok := h.drawings[group]
	h.mu.Unlock()
	if ok && d.ring == ring {
		return d
	}
	d = drawRing(ring)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.drawings != nil {
		h.drawings[group] = d
	}
	return d
}

// ringDrawing is what the page draws of a ring: each server's share and
// arcs, by name.
type ringDrawing struct {
	ring    *chash.Ring
	servers []string // the ring's, sorted
	drawn   map[string]ringServer
}

// drawRing returns the drawing of ring, which may be nil (no ring yet).
func drawRing(ring *chash.Ring) ringDrawing {
	d := ringDrawing{ring: ring, drawn: map[string]ringServer{}}
	if ring == nil {
		return d
	}
	d.servers = ring.Servers()
	for _, name := range d.servers {
		var s ringServer
		s.Share, s.Arcs = arcs(ring.Ranges(name))
		d.drawn[name] = s
	}
	return d
}

// ringServers joins the members of a group to their arcs in a ring's
// drawing, by name, in name order. A server in the ring whose member was
// not read still shows, with what the ring knows of it.
func ringServers(d ringDrawing, members []membership.Member) []ringServer {
	byName := map[string]ringServer{}
	for _, m := range members {
		byName[m.Name] = ringServer{Name: m.Name, Addr: m.Addr, Weight: m.Weight, Online: m.Online}
	}
	for _, name := range d.servers {
		s, ok := byName[name]
		if !ok {
			s = ringServer{Name: name, Online: true}
		}
		s.Share, s.Arcs = d.drawn[name].Share, d.drawn[name].Arcs
		byName[name] = s
	}
	out := make([]ringServer, 0, len(byName))
	for _, name := range slices.Sorted(maps.Keys(byName)) {
		s := byName[name]
		if s.Arcs == nil {
			s.Arcs = [][2]float64{}
		}
		out = append(out, s)
	}
	return out
}

// hashSpace is the size of the ring's hash space, 2^64.
const hashSpace = float64(1 << 64)

// arcs returns ranges as [start, end) fractions of the hash space,
// rounded to a millionth, far below what a drawing shows, to keep the
// answer small; and their exact total.
func arcs(ranges []chash.Range) (share float64, out [][2]float64) {
	round := func(x float64) float64 { return math.Round(x*1e6) / 1e6 }
	out = make([][2]float64, 0, len(ranges))
	for _, g := range ranges {
		size := float64(g.End-g.Start) + 1
		share += size
		start := float64(g.Start) / hashSpace
		out = append(out, [2]float64{round(start), round(start + size/hashSpace)})
	}
	return share / hashSpace, out
}
