package bifrost

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/bifrost-go/bifrost/chash"
	"github.com/bifrost-go/bifrost/membership"
	"github.com/bifrost-go/bifrost/raft"
	"github.com/bifrost-go/bifrost/sm"
)

// HTTPConfig configures a node's HTTP API.
type HTTPConfig struct {
	// MaxValueBytes bounds a value's size; a larger one gets 413.
	// Default 64 KiB.
	MaxValueBytes int64
	// Timeout bounds each request: 503 if the group could not answer in
	// time, 504 if a write was sent but its outcome is unknown. Default
	// 5s.
	Timeout time.Duration
	// AllowLeave enables POST /v1/leave, which removes the node from its
	// group for good: anyone who reaches the API can then do it.
	AllowLeave bool
	// Groups are membership groups whose rings the status page always
	// draws, beside those its address names (/?group=), or every group
	// of the cluster if it names none. Default none.
	Groups []string
}

// HTTP is a node's HTTP API. Any node answers any request: writes and
// linearizable reads go to the leader through the node's sm client, in
// its session, so a write forwarded and retried still applies once.
//
//	PUT    /v1/kv/{key}          the body is the value; ?cas=OLD swaps only from OLD (409 otherwise)
//	GET    /v1/kv/{key}          ?consistency=linearizable (default), lease or stale; 404 if absent
//	DELETE /v1/kv/{key}          404 if absent
//	GET    /v1/status            this node's raft status and the group's configuration
//	POST   /v1/leave             this node leaves its group for good (then stops, under bifrost node)
//	GET    /v1/members           the cluster's members
//	GET    /v1/ring/{group}?key= the server the group's ring gives the key
//	GET    /metrics              counters, gauges and latency histograms in the Prometheus text format (metrics.go)
//	GET    /debug/vars           expvar's command line and memory statistics, and the same metrics, as JSON
//	GET    /v1/cluster           every raft member's own status, as it answers this node
//	GET    /v1/rings?group=      the rings of the groups named (default: all) and of HTTPConfig.Groups, with each server's arcs
//	GET    /                     the status page: the cluster, its members and rings, drawn and kept current
//	GET    /v1/watch/{key}       server-sent events of the key's puts and deletes (watch.go)
//	GET    /v1/watch?prefix=P    the same for every key under P: in log order, each once; Last-Event-ID resumes
//
// Errors are JSON, {"error": "..."}; bad input gets a 4xx.
type HTTP struct {
	node *Node
	cfg  HTTPConfig
	mux  *http.ServeMux
	c    *sm.Client
	obs  *membership.Observer
	// stats are the node's metrics and the API's own (metrics.go).
	stats *httpMetrics

	mu       sync.Mutex // protects rings and drawings
	rings    map[string]*chash.ConsistentHashing
	drawings map[string]ringDrawing // the status page's, by group
}

// NewHTTP returns the HTTP API of n. Close it before the node.
func NewHTTP(n *Node, cfg HTTPConfig) (*HTTP, error) {
	if cfg.MaxValueBytes < 0 || cfg.Timeout < 0 {
		return nil, errors.New("bifrost: negative HTTPConfig field")
	}
	cfg.MaxValueBytes = cmp.Or(cfg.MaxValueBytes, 64<<10)
	cfg.Timeout = cmp.Or(cfg.Timeout, 5*time.Second)
	if err := serveRaftStatus(n); err != nil {
		return nil, err
	}
	c, err := n.newClient()
	if err != nil {
		return nil, err
	}
	h := &HTTP{node: n, cfg: cfg, mux: http.NewServeMux(), c: c, obs: membership.NewObserver(c),
		rings: map[string]*chash.ConsistentHashing{}, drawings: map[string]ringDrawing{}, stats: newHTTPMetrics(n)}
	h.mux.HandleFunc("PUT /v1/kv/{key...}", h.put)
	h.mux.HandleFunc("GET /v1/kv/{key...}", h.get)
	h.mux.HandleFunc("DELETE /v1/kv/{key...}", h.delete)
	h.mux.HandleFunc("GET /v1/status", h.status)
	h.mux.HandleFunc("POST /v1/leave", h.leave)
	h.mux.HandleFunc("GET /v1/members", h.members)
	h.mux.HandleFunc("GET /v1/ring/{group}", h.ring)
	h.mux.HandleFunc("GET /metrics", h.metrics)
	h.mux.HandleFunc("GET /debug/vars", h.vars)
	h.mux.HandleFunc("GET /v1/cluster", h.cluster)
	h.mux.HandleFunc("GET /v1/rings", h.allRings)
	h.mux.HandleFunc("GET /v1/watch/{key...}", h.watchKey)
	h.mux.HandleFunc("GET /v1/watch", h.watchPrefix)
	h.mux.HandleFunc("GET /{$}", h.statusPage)
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		for _, p := range []string{"/v1/kv/", "/v1/status", "/v1/leave", "/v1/members", "/v1/ring/", "/v1/cluster", "/v1/rings", "/v1/watch", "/metrics", "/debug/vars"} {
			if strings.HasPrefix(r.URL.Path, p) {
				fail(w, http.StatusMethodNotAllowed, fmt.Errorf("%s does not take %s", r.URL.Path, r.Method))
				return
			}
		}
		fail(w, http.StatusNotFound, fmt.Errorf("no such endpoint: %s %s", r.Method, r.URL.Path))
	})
	return h, nil
}

// ServeHTTP answers a request.
func (h *HTTP) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.stats.serve(w, r, h.mux) }

// Close stops the rings it follows and closes its client.
func (h *HTTP) Close() {
	h.mu.Lock()
	rings := h.rings
	h.rings = nil
	h.mu.Unlock()
	for _, ch := range rings {
		ch.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	h.c.Close(ctx)
}

func fail(w http.ResponseWriter, code int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
}

func reply(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// failCall answers a failed call to the group: 504 when a write may or
// may not have applied, 503 when the group could not answer in time, 400
// for what the group refused.
func failCall(w http.ResponseWriter, err error) {
	var re *sm.RemoteError
	switch {
	case errors.Is(err, sm.ErrOutcomeUnknown):
		fail(w, http.StatusGatewayTimeout, err)
	case errors.Is(err, sm.ErrTooLarge):
		fail(w, http.StatusRequestEntityTooLarge, err)
	case errors.As(err, &re), errors.Is(err, membership.ErrNoGroup), errors.Is(err, membership.ErrBadRequest):
		fail(w, http.StatusBadRequest, err)
	default:
		fail(w, http.StatusServiceUnavailable, err)
	}
}

// key returns the request's key, or answers 400.
func key(w http.ResponseWriter, r *http.Request) (string, bool) {
	k := r.PathValue("key")
	if k == "" {
		fail(w, http.StatusBadRequest, errors.New("empty key"))
		return "", false
	}
	return k, true
}

// single returns the one value of query parameter name, if given; more
// than one answers 400.
func single(w http.ResponseWriter, r *http.Request, name string) (v string, given, ok bool) {
	vs := r.URL.Query()[name]
	if len(vs) > 1 {
		fail(w, http.StatusBadRequest, fmt.Errorf("parameter %s given %d times", name, len(vs)))
		return "", false, false
	}
	if len(vs) == 0 {
		return "", false, true
	}
	return vs[0], true, true
}

func (h *HTTP) put(w http.ResponseWriter, r *http.Request) {
	k, ok := key(w, r)
	if !ok {
		return
	}
	old, cas, ok := single(w, r, "cas")
	if !ok {
		return
	}
	value, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.cfg.MaxValueBytes))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		fail(w, http.StatusRequestEntityTooLarge, fmt.Errorf("value over %d bytes", h.cfg.MaxValueBytes))
		return
	case err != nil:
		fail(w, http.StatusBadRequest, fmt.Errorf("read the value: %w", err))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.Timeout)
	defer cancel()
	if !cas {
		if _, index, err := KV.InsertCommand().DoIndex(ctx, h.c, sm.Pair[string, []byte]{K: k, V: value}); err != nil {
			failCall(w, err)
		} else {
			reply(w, map[string]any{"key": k, "index": index})
		}
		return
	}
	swap := sm.MapSwap[string, []byte]{K: k, Old: []byte(old), New: value}
	swapped, index, err := KV.SwapCommand().DoIndex(ctx, h.c, swap)
	switch {
	case err != nil:
		failCall(w, err)
	case !swapped:
		fail(w, http.StatusConflict, fmt.Errorf("key %q does not hold the value cas names", k))
	default:
		reply(w, map[string]any{"key": k, "index": index})
	}
}

// readModes are the values of the consistency parameter.
var readModes = map[string]sm.ReadMode{"": sm.Linearizable, "linearizable": sm.Linearizable, "lease": sm.Lease, "stale": sm.Follower}

func (h *HTTP) get(w http.ResponseWriter, r *http.Request) {
	k, ok := key(w, r)
	if !ok {
		return
	}
	c, _, ok := single(w, r, "consistency")
	if !ok {
		return
	}
	mode, known := readModes[c]
	if !known {
		fail(w, http.StatusBadRequest, fmt.Errorf("consistency %q: want linearizable, lease or stale", c))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.Timeout)
	defer cancel()
	v, found, err := KV.GetAs(ctx, h.c, mode, k)
	switch {
	case err != nil:
		failCall(w, err)
	case !found:
		fail(w, http.StatusNotFound, fmt.Errorf("no key %q", k))
	default:
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(v)
	}
}

func (h *HTTP) delete(w http.ResponseWriter, r *http.Request) {
	k, ok := key(w, r)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.Timeout)
	defer cancel()
	old, index, err := KV.RemoveCommand().DoIndex(ctx, h.c, k)
	switch {
	case err != nil:
		failCall(w, err)
	case !old.Found:
		fail(w, http.StatusNotFound, fmt.Errorf("no key %q", k))
	default:
		reply(w, map[string]any{"key": k, "index": index})
	}
}

// roles name raft's roles as the API shows them.
var roles = map[raft.Role]string{raft.RoleFollower: "follower", raft.RoleCandidate: "candidate",
	raft.RoleLeader: "leader", raft.RolePreCandidate: "candidate"}

func (h *HTTP) status(w http.ResponseWriter, r *http.Request) {
	st := h.node.Raft().Status()
	state := cmp.Or(roles[st.Role], "follower")
	voters, learners, err := h.node.Raft().Configuration(r.Context())
	if err != nil {
		fail(w, http.StatusServiceUnavailable, err)
		return
	}
	if slices.Contains(learners, h.node.cfg.ID) {
		state = "learner"
	}
	reply(w, map[string]any{"id": h.node.cfg.ID, "state": state, "term": st.Term, "leader": st.Lead,
		"leader_addr": st.LeaderAddr, "commit": st.Commit, "applied": st.Applied, "snapshot": st.Snapshot,
		"voters": voters, "learners": learners, "group": h.node.Group()})
}

// leave removes this node from its group (Node.Leave); whoever runs the
// node closes it once Node.Left is closed.
func (h *HTTP) leave(w http.ResponseWriter, r *http.Request) {
	if !h.cfg.AllowLeave {
		fail(w, http.StatusForbidden, errors.New("leaving is not enabled on this node (HTTPConfig.AllowLeave)"))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.Timeout)
	defer cancel()
	if err := h.node.Leave(ctx); err != nil {
		failCall(w, err)
		return
	}
	reply(w, map[string]any{"id": h.node.cfg.ID, "left": true})
}

func (h *HTTP) members(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.Timeout)
	defer cancel()
	ms, version, err := h.obs.All(ctx)
	if err != nil {
		failCall(w, err)
		return
	}
	type member struct {
		ID          uint64 `json:"id"`
		Name        string `json:"name"`
		Addr        string `json:"addr"`
		Incarnation uint64 `json:"incarnation"`
		Online      bool   `json:"online"`
	}
	out := make([]member, 0, len(ms))
	for _, m := range ms {
		out = append(out, member{uint64(m.ID), m.Name, m.Addr, m.Incarnation, m.Online})
	}
	reply(w, map[string]any{"version": version, "members": out})
}

func (h *HTTP) ring(w http.ResponseWriter, r *http.Request) {
	k, given, ok := single(w, r, "key")
	switch {
	case !ok:
		return
	case !given || k == "":
		fail(w, http.StatusBadRequest, errors.New("parameter key is required"))
		return
	}
	ch, err := h.ringOf(r.Context(), r.PathValue("group"))
	if err != nil {
		failCall(w, err)
		return
	}
	s, err := ch.LookupString(k)
	if err != nil {
		fail(w, http.StatusNotFound, err)
		return
	}
	_, version := ch.Ring()
	reply(w, map[string]any{"key": k, "server": s.Name, "addr": s.Addr, "version": version})
}

// ringOf returns the ring of group, following it from the first request
// on.
func (h *HTTP) ringOf(ctx context.Context, group string) (*chash.ConsistentHashing, error) {
	h.mu.Lock()
	ch, ok := h.rings[group]
	h.mu.Unlock()
	if ok {
		return ch, nil
	}
	ctx, cancel := context.WithTimeout(ctx, h.cfg.Timeout)
	defer cancel()
	ch, err := chash.New(ctx, h.obs, chash.Config{Group: group})
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.rings == nil { // closed meanwhile
		ch.Close()
		return nil, errors.New("bifrost: HTTP API closed")
	}
	if other, ok := h.rings[group]; ok {
		ch.Close()
		return other, nil
	}
	h.rings[group] = ch
	return ch, nil
}

// newClient is NewClient with the pool closed by the client's Close.
func (n *Node) newClient() (*sm.Client, error) {
	c, pool, err := n.NewClient()
	if err != nil {
		return nil, err
	}
	n.closeLater(pool.Close)
	return c, nil
}
