package bifrost

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Where Debian's chromium and chromium-driver put the browser and its
// driver; scripts/install-chromium installs them.
const (
	chromiumPath     = "/usr/bin/chromium"
	chromedriverPath = "/usr/bin/chromedriver"
)

// The status page, in a real browser, shows every member and the ring of
// its group, and follows the cluster when a node dies: the member goes
// unreachable and offline, and the ring closes over its arcs. Screenshots
// of both go to $BIFROST_SCREENSHOTS, or a directory the log names.
func TestStatusPageBrowser(t *testing.T) {
	if os.Getenv("BIFROST_BROWSER") != "1" {
		t.Skip("set BIFROST_BROWSER=1 to drive chromium (make browser-test)")
	}
	for _, p := range []string{chromiumPath, chromedriverPath} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("BIFROST_BROWSER=1 but %v: run scripts/install-chromium", err)
		}
	}
	shots := screenshotDir(t)
	nodes, _ := startCluster(t, 3)
	var kills []func()
	var urls []string
	var stop []func() // each node's HTTP server and API, once: before the node
	for i, n := range nodes {
		kills = append(kills, joinRing(t, n, fmt.Sprintf("node-%d", i+1), "cache", uint64(i+1)))
		api, err := NewHTTP(n, HTTPConfig{Groups: []string{"cache"}})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(api)
		urls = append(urls, srv.URL)
		stop = append(stop, sync.OnceFunc(func() { srv.Close(); api.Close() }))
		t.Cleanup(stop[i])
	}

	wd := startWebDriver(t)
	wd.navigate(t, urls[0]+"/")
	before := wd.waitFor(t, "every member and the ring", func(p pageState) bool {
		return len(p.Raft) == 3 && len(p.Members) == 3 && len(p.Arcs) == 3 && p.leaders() == 1 &&
			p.Members["node-1"] && p.Members["node-2"] && p.Members["node-3"] && p.RingWidth > 100
	})
	checkArcsMatchAPI(t, before, urls[0])
	wd.screenshot(t, filepath.Join(shots, "statuspage-before.png"))

	// node 3 dies: its member stops heartbeating, as its process would.
	kills[2]()
	stop[2]()
	nodes[2].Close()
	nodes[2] = nil
	after := wd.waitFor(t, "node 3 unreachable, its member offline, the ring without it", func(p pageState) bool {
		_, arcs := p.Arcs["node-3"]
		online, listed := p.Members["node-3"]
		offlineInLegend := slices.ContainsFunc(p.Legend, func(row string) bool {
			return strings.HasPrefix(row, "node-3") && strings.Contains(row, "offline")
		})
		return p.Raft["3"] == "unreachable" && listed && !online && p.Members["node-1"] && p.Members["node-2"] &&
			!arcs && len(p.Arcs) == 2 && offlineInLegend && p.leaders() == 1 && p.Polls > before.Polls
	})
	checkArcsMatchAPI(t, after, urls[0])
	wd.screenshot(t, filepath.Join(shots, "statuspage-after.png"))
}

// screenshotDir returns $BIFROST_SCREENSHOTS, made if need be, or a new
// directory that outlives the test, so the pictures can be looked at.
func screenshotDir(t *testing.T) string {
	dir := os.Getenv("BIFROST_SCREENSHOTS")
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "bifrost-statuspage-"); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// pageState is what the page shows, read in one script so that no
// refresh falls between two reads.
type pageState struct {
	Polls     int               `json:"polls"`     // refreshes so far
	Raft      map[string]string `json:"raft"`      // raft member id: role badge
	Members   map[string]bool   `json:"members"`   // member name: online
	Arcs      map[string]int    `json:"arcs"`      // server: arcs drawn in the cache ring
	Legend    []string          `json:"legend"`    // the cache ring's legend rows
	RingWidth float64           `json:"ringWidth"` // of the cache ring's SVG, on screen
	Banner    string            `json:"banner"`
}

func (p pageState) leaders() int {
	n := 0
	for _, role := range p.Raft {
		if role == "leader" {
			n++
		}
	}
	return n
}

const pageStateScript = `
const q = s => [...document.querySelectorAll(s)];
const ring = document.querySelector('.ring[data-group="cache"]');
return {
  polls: +(document.body.dataset.polls || 0),
  raft: Object.fromEntries(q("#raft tr[data-id]").map(r => [r.dataset.id, r.dataset.state])),
  members: Object.fromEntries(q("#members tr[data-name]").map(r => [r.dataset.name, r.dataset.online === "true"])),
  arcs: Object.fromEntries(ring ? [...ring.querySelectorAll("path.arc")].map(p =>
    [p.dataset.server, p.getAttribute("d").split("M").length - 1]) : []),
  legend: ring ? [...ring.querySelectorAll(".legend tr[data-server]")].map(r => r.textContent) : [],
  ringWidth: ring ? ring.querySelector("svg").getBoundingClientRect().width : 0,
  banner: document.getElementById("banner").textContent,
};`

// checkArcsMatchAPI checks that the page drew the arcs /v1/rings gives,
// server by server; a whole-circle arc is drawn as two halves.
func checkArcsMatchAPI(t *testing.T, p pageState, base string) {
	t.Helper()
	resp, err := http.Get(base + "/v1/rings")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got ringsAnswer
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || len(got.Groups) != 1 {
		t.Fatalf("/v1/rings: %v, %+v", err, got)
	}
	for _, s := range got.Groups[0].Servers {
		if n := len(s.Arcs); n > 0 && p.Arcs[s.Name] != n && !(n == 1 && p.Arcs[s.Name] == 2) {
			t.Errorf("server %s: the page draws %d arcs, /v1/rings has %d", s.Name, p.Arcs[s.Name], n)
		}
		if !slices.ContainsFunc(p.Legend, func(row string) bool { return strings.HasPrefix(row, s.Name) }) {
			t.Errorf("legend %q lacks server %s", p.Legend, s.Name)
		}
	}
}

// webDriver is a client of one chromedriver session, in the W3C WebDriver
// protocol: JSON over HTTP, all the test needs without a dependency.
type webDriver struct {
	session string // chromedriver's URL and the session's path
}

// startWebDriver starts chromedriver on a port of its choosing and a
// headless chromium session in it; both end with the test.
func startWebDriver(t *testing.T) *webDriver {
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, chromedriverPath, "--port=0")
	found := make(chan string, 1)
	cmd.Stdout, cmd.Stderr = &portWatcher{port: found}, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait() })
	var base string
	select {
	case p := <-found:
		base = "http://127.0.0.1:" + p
	case <-time.After(30 * time.Second):
		t.Fatal("chromedriver did not say which port it listens on")
	}

	caps := map[string]any{"capabilities": map[string]any{"alwaysMatch": map[string]any{
		"browserName": "chrome",
		"goog:chromeOptions": map[string]any{"binary": chromiumPath, "args": []string{"--headless=new",
			"--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1200",
			"--hide-scrollbars", "--force-device-scale-factor=1"}},
	}}}
	var created struct {
		SessionID string `json:"sessionId"`
	}
	d := &webDriver{session: base}
	if err := d.call(t.Context(), "POST", "/session", caps, &created); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	d.session = base + "/session/" + created.SessionID
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		d.call(ctx, "DELETE", "", nil, nil)
	})
	return d
}

// portWatcher is chromedriver's output: it hands on the port the line
// "... started successfully on port N." names, and drops the rest. exec
// writes to it from one goroutine.
type portWatcher struct {
	port chan string // size one; nil once sent
	seen []byte
}

var startedOnPort = regexp.MustCompile(`started successfully on port (\d+)`)

func (w *portWatcher) Write(p []byte) (int, error) {
	if w.port == nil {
		return len(p), nil
	}
	w.seen = append(w.seen, p...)
	if m := startedOnPort.FindSubmatch(w.seen); m != nil {
		w.port <- string(m[1])
		w.port, w.seen = nil, nil
	}
	return len(p), nil
}

// call sends a WebDriver command and decodes its value into out, if not
// nil. A WebDriver error becomes an error naming it.
func (d *webDriver) call(ctx context.Context, method, path string, in, out any) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, d.session+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var answer struct {
		Value json.RawMessage `json:"value"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil {
		return fmt.Errorf("webdriver %s %s: %d, %v", method, path, resp.StatusCode, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error, Message string }
		json.Unmarshal(answer.Value, &e)
		return fmt.Errorf("webdriver %s %s: %s: %s", method, path, e.Error, e.Message)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(answer.Value, out)
}

func (d *webDriver) navigate(t *testing.T, url string) {
	t.Helper()
	if err := d.call(t.Context(), "POST", "/url", map[string]string{"url": url}, nil); err != nil {
		t.Fatal(err)
	}
}

// state runs pageStateScript in the page.
func (d *webDriver) state(ctx context.Context) (pageState, error) {
	var p pageState
	err := d.call(ctx, "POST", "/execute/sync", map[string]any{"script": pageStateScript, "args": []any{}}, &p)
	return p, err
}

// waitFor reads the page until cond holds of it, for up to a minute:
// failure detection takes seconds, more on a busy machine or when the
// raft leader is the node that died.
func (d *webDriver) waitFor(t *testing.T, what string, cond func(pageState) bool) pageState {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last pageState
	var err error
	for {
		if last, err = d.state(ctx); err == nil && cond(last) {
			return last
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the page never showed %s: last %+v, %v", what, last, err)
		case <-tick.C:
		}
	}
}

// screenshot writes what the browser shows to path, as PNG.
func (d *webDriver) screenshot(t *testing.T, path string) {
	t.Helper()
	var b64 string
	if err := d.call(t.Context(), "GET", "/screenshot", nil, &b64); err != nil {
		t.Fatal(err)
	}
	png, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}
