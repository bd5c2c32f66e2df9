package bifrost

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// newTestHTTP starts a one-node cluster and its HTTP API.
func newTestHTTP(t testing.TB, cfg HTTPConfig) *HTTP {
	t.Helper()
	nodes, _ := startCluster(t, 1)
	h, err := NewHTTP(nodes[0], cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

func do(h http.Handler, method, target, body string) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(method, target, strings.NewReader(body)))
	return w
}

func TestHTTPKV(t *testing.T) {
	h := newTestHTTP(t, HTTPConfig{MaxValueBytes: 16})
	steps := []struct {
		method, target, body string
		code                 int
		want                 string // the body, or a part of the error
	}{
		{"GET", "/v1/kv/k", "", 404, "no key"},
		{"PUT", "/v1/kv/k", "v1", 200, `"key":"k"`},
		{"GET", "/v1/kv/k", "", 200, "v1"},
		{"GET", "/v1/kv/k?consistency=lease", "", 200, "v1"},
		{"GET", "/v1/kv/k?consistency=stale", "", 200, "v1"},
		{"GET", "/v1/kv/k?consistency=eventual", "", 400, "consistency"},
		{"GET", "/v1/kv/k?consistency=lease&consistency=stale", "", 400, "2 times"},
		{"PUT", "/v1/kv/k?cas=nope", "v2", 409, "cas"},
		{"PUT", "/v1/kv/absent?cas=", "v2", 409, "cas"},
		{"PUT", "/v1/kv/k?cas=v1", "v2", 200, `"key":"k"`},
		{"GET", "/v1/kv/k", "", 200, "v2"},
		{"PUT", "/v1/kv/a/b/c", "nested", 200, `"key":"a/b/c"`},
		{"GET", "/v1/kv/a/b/c", "", 200, "nested"},
		{"PUT", "/v1/kv/big", strings.Repeat("x", 17), 413, "over 16 bytes"},
		{"PUT", "/v1/kv/", "v", 400, "empty key"},
		{"DELETE", "/v1/kv/k", "", 200, `"key":"k"`},
		{"DELETE", "/v1/kv/k", "", 404, "no key"},
		{"GET", "/v1/kv/k", "", 404, "no key"},
		{"POST", "/v1/kv/k", "", 405, "does not take POST"},
		{"GET", "/v2/anything", "", 404, "no such endpoint"},
		{"GET", "/v1/ring/cache", "", 400, "key is required"},
		{"GET", "/v1/ring/nogroup?key=x", "", 400, "no such group"},
	}
	for _, s := range steps {
		w := do(h, s.method, s.target, s.body)
		if w.Code != s.code || !strings.Contains(w.Body.String(), s.want) {
			t.Errorf("%s %s: %d %q, want %d and %q", s.method, s.target, w.Code, w.Body.String(), s.code, s.want)
		}
		if w.Code >= 400 && !json.Valid(w.Body.Bytes()) {
			t.Errorf("%s %s: error %q is not JSON", s.method, s.target, w.Body.String())
		}
	}
}

func TestHTTPStatusAndMembers(t *testing.T) {
	h := newTestHTTP(t, HTTPConfig{})
	var st struct {
		ID      uint64 `json:"id"`
		State   string `json:"state"`
		Term    uint64 `json:"term"`
		Leader  uint64 `json:"leader"`
		Commit  uint64 `json:"commit"`
		Applied uint64 `json:"applied"`
	}
	do(h, "PUT", "/v1/kv/k", "v") // a write waits for the node to lead
	if w := do(h, "GET", "/v1/status", ""); w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &st) != nil {
		t.Fatalf("status: %d %s", w.Code, w.Body)
	}
	if st.ID != 1 || st.State != "leader" || st.Leader != 1 || st.Term == 0 || st.Applied == 0 {
		t.Errorf("status %+v: want node 1 leading, with entries applied", st)
	}
	if w := do(h, "GET", "/v1/members", ""); w.Code != 200 || !strings.Contains(w.Body.String(), `"members":[]`) {
		t.Errorf("members: %d %s", w.Code, w.Body)
	}
}

// Nothing a client sends makes the API fail on the server's side.
func FuzzHTTPAPI(f *testing.F) {
	h := newTestHTTP(f, HTTPConfig{MaxValueBytes: 64})
	for _, s := range []struct{ method, target, body string }{
		{"PUT", "/v1/kv/k?cas=x", "v"}, {"GET", "/v1/kv/k?consistency=stale", ""},
		{"DELETE", "/v1/kv/%00", ""}, {"GET", "/v1/ring/g?key=k&key=j", ""}, {"GET", "/v1/status", ""},
		{"GET", "/", ""}, {"GET", "/v1/cluster", ""}, {"GET", "/v1/rings?group=g&group=&group=%00", ""},
		{"GET", "/metrics?x=%00", ""}, {"POST", "/metrics", "x"}, {"GET", "/debug/vars", ""}, {"PUT", "/debug/vars/x", ""},
		{"GET", "/v1/watch/k?after=1-0", ""}, {"GET", "/v1/watch?prefix=p&last_event_id=0", ""}, {"GET", "/v1/watch?after=x", ""},
	} {
		f.Add(s.method, s.target, s.body)
	}
	f.Fuzz(func(t *testing.T, method, target, body string) {
		r, err := http.NewRequest(method, target, strings.NewReader(body))
		if err != nil || r.URL.Path == "" || r.URL.Path[0] != '/' {
			return // no request a server could receive
		}
		r.RequestURI = target
		if strings.HasPrefix(r.URL.Path, "/v1/watch") {
			// A watch streams until its client goes away: this one soon.
			ctx, cancel := context.WithTimeout(r.Context(), 100*time.Millisecond)
			defer cancel()
			r = r.WithContext(ctx)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code >= 500 && r.Context().Err() == nil { // nobody hears a watch that failed as its client left
			t.Fatalf("%q %q: %d %s", method, target, w.Code, w.Body)
		}
	})
}
