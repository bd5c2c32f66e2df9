package bifrost

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bifrost-go/bifrost/internal/leakcheck"
	"github.com/bifrost-go/bifrost/raft"
	"github.com/bifrost-go/bifrost/raft/node"
	"github.com/bifrost-go/bifrost/sm"
)

// sseEvent is one block of a server-sent event stream as a browser's
// EventSource reads it: Type is its event field ("message" if none),
// Data its data lines joined by newlines, and ID the stream's last event
// id after it, what a reconnect sends as Last-Event-ID. KeepAlive marks
// a block with no data, which EventSource does not dispatch (a comment,
// or an id alone), though its id still counts.
type sseEvent struct {
	Type, Data, ID string
	KeepAlive      bool
}

// readSSE parses the text/event-stream r as the HTML standard says and
// yields each block, until r ends (a stream cut inside a block drops
// that block, as EventSource does) or fails.
func readSSE(r io.Reader) iter.Seq2[sseEvent, error] {
	return func(yield func(sseEvent, error) bool) {
		sc := bufio.NewScanner(r)
		sc.Buffer(nil, 1<<20)
		var id string
		var cur sseEvent
		var data []string
		seen := false // the block has a line
		for sc.Scan() {
			line := sc.Text()
			if line == "" {
				if !seen {
					continue
				}
				cur.ID, cur.Data, cur.KeepAlive = id, strings.Join(data, "\n"), data == nil
				if cur.Type == "" {
					cur.Type = "message"
				}
				if !yield(cur, nil) {
					return
				}
				cur, data, seen = sseEvent{}, nil, false
				continue
			}
			seen = true
			field, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch field {
			case "event":
				cur.Type = value
			case "data":
				data = append(data, value)
			case "id":
				if !strings.Contains(value, "\x00") {
					id = value
				}
			}
		}
		if err := sc.Err(); err != nil {
			yield(sseEvent{}, err)
		}
	}
}

// watchNode is one node of a test cluster with its HTTP API served.
type watchNode struct {
	n     *Node
	h     *HTTP
	srv   *httptest.Server
	close func() // the API, then the node
}

// startWatchCluster starts size nodes, each serving its HTTP API.
func startWatchCluster(t *testing.T, size int, change func(*Config)) []*watchNode {
	t.Helper()
	nodes, _ := startClusterWith(t, size, change)
	var out []*watchNode
	for i, n := range nodes {
		h, err := NewHTTP(n, HTTPConfig{Timeout: 30 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(h)
		wn := &watchNode{n: n, h: h, srv: srv}
		var once sync.Once
		// The API goes first: it ends the streams the server waits for.
		wn.close = func() {
			once.Do(func() {
				h.Close()
				srv.Close()
				n.Close()
				nodes[i] = nil // closed: startCluster's cleanup skips it
			})
		}
		t.Cleanup(func() { once.Do(func() { h.Close(); srv.Close() }) })
		out = append(out, wn)
	}
	return out
}

// leaderOf returns the index of the node leading, once one does.
func leaderOf(ctx context.Context, t *testing.T, ns []*watchNode) int {
	t.Helper()
	for {
		for i, wn := range ns {
			if wn.n.Raft().Status().Role == raft.RoleLeader {
				return i
			}
		}
		sub, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
		ns[0].n.Raft().WaitFor(sub, func(st node.Status) bool { return st.Role == raft.RoleLeader })
		cancel()
		if ctx.Err() != nil {
			t.Fatal("no leader")
		}
	}
}

// watchStream is an open watch: its blocks, until it ends.
type watchStream struct {
	events <-chan sseEvent
	stop   context.CancelFunc // the client goes away
	done   <-chan struct{}    // the body ended
}

// openWatch opens a watch at url with the Last-Event-ID header, if not
// empty, and fails the test unless it answers 200.
func openWatch(ctx context.Context, t *testing.T, target, lastID string) *watchStream {
	t.Helper()
	ctx, stop := context.WithCancel(ctx)
	req, err := http.NewRequestWithContext(ctx, "GET", target, nil)
	if err != nil {
		t.Fatal(err)
	}
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		stop()
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		stop()
		t.Fatalf("GET %s: %d %s %s", target, resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	events, done := make(chan sseEvent), make(chan struct{})
	go func() {
		defer close(done)
		defer resp.Body.Close()
		for ev, err := range readSSE(resp.Body) {
			if err != nil {
				return
			}
			select {
			case events <- ev:
			case <-ctx.Done():
				return
			}
		}
	}()
	return &watchStream{events: events, stop: stop, done: done}
}

// close ends the stream from the client's side and waits for its reader.
func (w *watchStream) close() {
	w.stop()
	<-w.done
}

// change is one change as a watch shows it.
type change struct {
	ID    sm.EventID
	Kind  string // put or delete
	Key   string
	Value string
}

func (c change) String() string {
	if c.Kind == "delete" {
		return "-" + c.Key
	}
	return c.Key + "=" + c.Value
}

// next reads the stream's next change, skipping keep-alives.
func (w *watchStream) next(ctx context.Context, t *testing.T) (change, sseEvent) {
	t.Helper()
	for {
		select {
		case ev := <-w.events:
			if ev.KeepAlive {
				continue
			}
			return decodeChange(t, ev), ev
		case <-w.done:
			t.Fatal("the stream ended")
		case <-ctx.Done():
			t.Fatal("no change in time")
		}
	}
}

func decodeChange(t *testing.T, ev sseEvent) change {
	t.Helper()
	var d struct {
		ID    string  `json:"id"`
		Key   string  `json:"key"`
		Value *[]byte `json:"value"`
	}
	if err := json.Unmarshal([]byte(ev.Data), &d); err != nil {
		t.Fatalf("event %+v: %v", ev, err)
	}
	id, err := parseEventID(d.ID)
	if err != nil || d.ID != ev.ID {
		t.Fatalf("event %+v: data id %q, %v", ev, d.ID, err)
	}
	c := change{ID: id, Kind: ev.Type, Key: d.Key}
	switch {
	case ev.Type == "put" && d.Value != nil:
		c.Value = string(*d.Value)
	case ev.Type == "delete" && d.Value == nil:
	default:
		t.Fatalf("event %+v: want a put with a value or a delete without", ev)
	}
	return c
}

// writeOp is one write a test made and when: clock readings of a
// counter shared by the writers, so "a was acknowledged before b was
// sent" is acked(a) < sent(b).
type writeOp struct {
	change
	sent, acked int64
	n           int // for a delete, which delete of its key it is
}

// writer writes through one node's API.
type writer struct {
	t     *testing.T
	url   string
	clock *atomic.Int64
	mu    sync.Mutex // protects ops
	ops   []writeOp
	dels  map[string]int
}

func newWriter(t *testing.T, url string, clock *atomic.Int64) *writer {
	return &writer{t: t, url: url, clock: clock, dels: map[string]int{}}
}

// put sets k to v and records it; the test fails unless it applied.
func (w *writer) put(ctx context.Context, k, v string) {
	w.do(ctx, "PUT", k, v)
}

// del removes k; it reports whether k was there.
func (w *writer) del(ctx context.Context, k string) bool {
	return w.do(ctx, "DELETE", k, "")
}

func (w *writer) do(ctx context.Context, method, k, v string) bool {
	req, err := http.NewRequestWithContext(ctx, method, w.url+"/v1/kv/"+k, strings.NewReader(v))
	if err != nil {
		w.t.Error(err)
		return false
	}
	op := writeOp{change: change{Kind: "put", Key: k, Value: v}, sent: w.clock.Add(1)}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		w.t.Errorf("%s %s: %v", method, k, err)
		return false
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	op.acked = w.clock.Add(1)
	if method == "DELETE" && resp.StatusCode == 404 {
		return false
	}
	if resp.StatusCode != 200 {
		w.t.Errorf("%s %s: %d", method, k, resp.StatusCode)
		return false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if method == "DELETE" {
		op.Kind, op.Value = "delete", ""
		w.dels[k]++
		op.n = w.dels[k]
	}
	w.ops = append(w.ops, op)
	return true
}

// checkWatch checks that got, what a watch showed, is exactly the ops
// that match, each once, in an order that agrees with the log's ids and
// with real time: an op acknowledged before another was sent shows
// before it.
func checkWatch(t *testing.T, name string, got []change, ops []writeOp, match func(string) bool) {
	t.Helper()
	at := map[string]int{} // an op's identity -> its place in got
	dels := map[string]int{}
	for i, c := range got {
		if i > 0 && c.ID.Compare(got[i-1].ID) <= 0 {
			t.Errorf("%s: id %v after %v", name, c.ID, got[i-1].ID)
		}
		id := c.String()
		if c.Kind == "delete" {
			dels[c.Key]++
			id = fmt.Sprint(id, "#", dels[c.Key])
		}
		if _, dup := at[id]; dup {
			t.Errorf("%s: %s twice", name, id)
		}
		at[id] = i
	}
	var want []writeOp
	for _, op := range ops {
		if match(op.Key) {
			want = append(want, op)
		}
	}
	if len(want) != len(got) {
		t.Errorf("%s: %d changes, want %d:\n got %v", name, len(got), len(want), got)
	}
	place := func(op writeOp) (int, bool) {
		id := op.String()
		if op.Kind == "delete" {
			id = fmt.Sprint(id, "#", op.n)
		}
		i, ok := at[id]
		return i, ok
	}
	for _, a := range want {
		i, ok := place(a)
		if !ok {
			t.Errorf("%s: %v acknowledged, not shown", name, a.change)
			continue
		}
		for _, b := range want {
			if j, ok := place(b); ok && a.acked < b.sent && i > j {
				t.Errorf("%s: %v shown after %v, which was sent after it was acknowledged", name, a.change, b.change)
			}
		}
	}
}

// readUntil reads changes until one sets key to value, and returns them
// without it.
func (w *watchStream) readUntil(ctx context.Context, t *testing.T, key, value string) []change {
	t.Helper()
	var got []change
	for {
		c, _ := w.next(ctx, t)
		if c.Kind == "put" && c.Key == key && c.Value == value {
			return got
		}
		got = append(got, c)
	}
}

// A key watch and a prefix watch show exactly the puts and deletes made,
// by writers on every node at once, in log order, each once.
func TestWatchShowsEveryChangeInOrder(t *testing.T) {
	ns := startWatchCluster(t, 3, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	keyW := openWatch(ctx, t, ns[0].srv.URL+"/v1/watch/hot", "")
	defer keyW.close()
	prefixW := openWatch(ctx, t, ns[1].srv.URL+"/v1/watch?prefix=p/", "")
	defer prefixW.close()
	allW := openWatch(ctx, t, ns[2].srv.URL+"/v1/watch", "")
	defer allW.close()

	var clock atomic.Int64
	var writers []*writer
	var wg sync.WaitGroup
	for i, wn := range ns {
		w := newWriter(t, wn.srv.URL, &clock)
		writers = append(writers, w)
		wg.Go(func() {
			own := fmt.Sprint("p/", i)
			for j := range 12 {
				v := fmt.Sprint(i, ".", j)
				w.put(ctx, "hot", v)
				w.put(ctx, own, v)
				w.put(ctx, fmt.Sprint("other/", i), v)
				if j%3 == 2 {
					w.del(ctx, own)
					if i == 0 {
						w.del(ctx, "hot") // one deleter: its deletes are told apart by count
					}
				}
			}
		})
	}
	wg.Wait()
	end := newWriter(t, ns[0].srv.URL, &clock)
	end.put(ctx, "hot", "end")
	end.put(ctx, "p/end", "end")
	var ops []writeOp
	for _, w := range writers {
		ops = append(ops, w.ops...)
	}
	checkWatch(t, "key watch", keyW.readUntil(ctx, t, "hot", "end"), ops,
		func(k string) bool { return k == "hot" })
	checkWatch(t, "prefix watch", prefixW.readUntil(ctx, t, "p/end", "end"), ops,
		func(k string) bool { return strings.HasPrefix(k, "p/") })
	all := allW.readUntil(ctx, t, "p/end", "end")
	if len(all) > 0 && all[len(all)-1].String() == "hot=end" {
		all = all[:len(all)-1]
	}
	checkWatch(t, "watch of every key", all, ops, func(string) bool { return true })
}

// A watch cut mid-stream and resumed with Last-Event-ID on another node
// shows every change once, with writes going on all along; and across
// a leader change, with the leader closed while the watch was away.
func TestWatchResumesOnAnotherNode(t *testing.T) {
	for _, tt := range []struct {
		name        string
		closeLeader bool
	}{{"same leader", false}, {"leader closed", true}} {
		t.Run(tt.name, func(t *testing.T) { testWatchResume(t, tt.closeLeader) })
	}
}

func testWatchResume(t *testing.T, closeLeader bool) {
	ns := startWatchCluster(t, 3, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	lead := leaderOf(ctx, t, ns)
	// The watch starts on a follower, writes go through the other
	// follower, and the watch comes back there.
	first, second := ns[(lead+1)%3], ns[(lead+2)%3]
	var clock atomic.Int64
	w := newWriter(t, second.srv.URL, &clock)
	w.put(ctx, "r/start", "0") // the group has a leader and the API answers
	st := openWatch(ctx, t, first.srv.URL+"/v1/watch?prefix=r/", "")

	writing := make(chan struct{})
	go func() {
		defer close(writing)
		for i := range 30 {
			w.put(ctx, fmt.Sprint("r/", i%4), fmt.Sprint(i))
			if i%5 == 4 {
				w.del(ctx, fmt.Sprint("r/", i%4))
			}
		}
	}()
	var got []change
	var last string
	for range 6 {
		c, ev := st.next(ctx, t)
		got, last = append(got, c), ev.ID
	}
	st.close()
	if closeLeader {
		ns[lead].close()
	}
	w.put(ctx, "r/gap", "while away") // at least one change the watch missed
	<-writing
	resumed := openWatch(ctx, t, second.srv.URL+"/v1/watch?prefix=r/", last)
	defer resumed.close()
	w.put(ctx, "r/end", "end")
	got = append(got, resumed.readUntil(ctx, t, "r/end", "end")...)
	ops := w.ops[1 : len(w.ops)-1] // not r/start, before the watch, nor r/end
	checkWatch(t, "resumed watch", got, ops, func(k string) bool { return strings.HasPrefix(k, "r/") })
}

// The query parameters resume as the header does; the header wins, as a
// browser reconnects with it to the URL it started with; a bare index
// resumes after that whole entry.
func TestWatchResumeParameters(t *testing.T) {
	ns := startWatchCluster(t, 1, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	var clock atomic.Int64
	w := newWriter(t, ns[0].srv.URL, &clock)
	w.put(ctx, "k", "1")
	w.put(ctx, "k", "2")
	w.put(ctx, "k", "3")
	st := openWatch(ctx, t, ns[0].srv.URL+"/v1/watch/k?after=0", "")
	var ids []sm.EventID
	for range 3 {
		c, _ := st.next(ctx, t)
		ids = append(ids, c.ID)
	}
	st.close()
	for _, tt := range []struct {
		query, header, want string
	}{
		{"?after=" + formatEventID(ids[0]), "", "2"},
		{"?last_event_id=" + formatEventID(ids[1]), "", "3"},
		{"?after=" + fmt.Sprint(ids[0].Index), "", "2"},
		{"?after=" + formatEventID(ids[0]), formatEventID(ids[1]), "3"},
	} {
		st := openWatch(ctx, t, ns[0].srv.URL+"/v1/watch/k"+tt.query, tt.header)
		if c, _ := st.next(ctx, t); c.Value != tt.want {
			t.Errorf("%s with Last-Event-ID %q: first %v, want k=%s", tt.query, tt.header, c, tt.want)
		}
		st.close()
	}
}

// A resume from an id the window dropped ends with the compacted event,
// naming an index to read again from.
func TestWatchCompacted(t *testing.T) {
	ns := startWatchCluster(t, 1, func(c *Config) { c.Host.RetainEvents = 4 })
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	var clock atomic.Int64
	w := newWriter(t, ns[0].srv.URL, &clock)
	for i := range 20 {
		w.put(ctx, "k", fmt.Sprint(i))
	}
	st := openWatch(ctx, t, ns[0].srv.URL+"/v1/watch/k", "1-0")
	defer st.close()
	var ev sseEvent
	select {
	case ev = <-st.events:
	case <-ctx.Done():
		t.Fatal("no event")
	}
	var d struct{ Index uint64 }
	if ev.Type != "compacted" || json.Unmarshal([]byte(ev.Data), &d) != nil || d.Index == 0 {
		t.Fatalf("first event %+v, want compacted with an index", ev)
	}
	select {
	case <-st.done:
	case ev := <-st.events:
		t.Errorf("after compacted: %+v, want the end", ev)
	case <-ctx.Done():
		t.Error("the stream did not end after compacted")
	}
	// Resuming at the index named loses nothing after it.
	again := openWatch(ctx, t, ns[0].srv.URL+fmt.Sprint("/v1/watch/k?after=", d.Index), "")
	defer again.close()
	w.put(ctx, "k", "next")
	if c, _ := again.next(ctx, t); c.Value != "next" {
		t.Errorf("after the resync: %v, want k=next", c)
	}
}

// A write's answer names the index it took effect at, even while other
// writes through the same node commit beside it: the index of its own
// event, so a watch opened after that index starts past the write.
func TestWriteAnswersItsOwnIndex(t *testing.T) {
	ns := startWatchCluster(t, 1, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	url := ns[0].srv.URL
	write := func(method, k, v string) uint64 {
		req, err := http.NewRequestWithContext(ctx, method, url+"/v1/kv/"+k, strings.NewReader(v))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var answer struct{ Index uint64 }
		if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s %s: %d %v", method, k, resp.StatusCode, err)
		}
		return answer.Index
	}
	var others sync.WaitGroup
	stop := make(chan struct{})
	for g := range 4 {
		others.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				write("PUT", fmt.Sprint("other", g), fmt.Sprint(i))
			}
		})
	}
	var want []sm.EventID
	for i := range 30 {
		method, v := "PUT", fmt.Sprint(i)
		if i%3 == 2 {
			method, v = "DELETE", ""
		}
		want = append(want, sm.EventID{Index: write(method, "k", v)})
	}
	close(stop)
	others.Wait()
	st := openWatch(ctx, t, url+"/v1/watch/k?after=0", "")
	defer st.close()
	for i, w := range want {
		if c, _ := st.next(ctx, t); c.ID.Index != w.Index {
			t.Fatalf("write %d answered index %d; its event is %v", i, w.Index, c)
		}
	}
	after := openWatch(ctx, t, url+fmt.Sprint("/v1/watch/k?after=", want[len(want)-1].Index), "")
	defer after.close()
	write("PUT", "k", "last")
	if c, _ := after.next(ctx, t); c.Value != "last" {
		t.Errorf("watch after the last write's index: first %v, want k=last", c)
	}
}

// Bad watch requests get a 4xx and no stream.
func TestWatchRefusesBadRequests(t *testing.T) {
	ns := startWatchCluster(t, 1, nil)
	h := ns[0].h
	do(h, "PUT", "/v1/kv/k", "v") // the node leads
	for _, tt := range []struct {
		target string
		header []string
		code   int
		want   string
	}{
		{"/v1/watch/k", []string{"x"}, 400, "Last-Event-ID"},
		{"/v1/watch/k", []string{"1-"}, 400, "INDEX-SUB"},
		{"/v1/watch/k", []string{"-1"}, 400, "INDEX-SUB"},
		{"/v1/watch/k", []string{"1-2-3"}, 400, "INDEX-SUB"},
		{"/v1/watch/k", []string{"+1"}, 400, "INDEX-SUB"},
		{"/v1/watch/k", []string{"18446744073709551616"}, 400, "INDEX-SUB"},
		{"/v1/watch/k", []string{"1", "2"}, 400, "2 times"},
		{"/v1/watch?after=abc", nil, 400, "after"},
		{"/v1/watch?after=1&last_event_id=2", nil, 400, "2 times"},
		{"/v1/watch?prefix=a&prefix=b", nil, 400, "2 times"},
		{"/v1/watch/", nil, 400, "empty key"},
		{"/v1/watch?after=999999999", nil, 400, "not in the log yet"},
		{"/v1/watch/k", []string{"999999999-0"}, 400, "not in the log yet"},
	} {
		r := httptest.NewRequest("GET", tt.target, nil)
		for _, v := range tt.header {
			r.Header.Add("Last-Event-ID", v)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tt.code || !strings.Contains(w.Body.String(), tt.want) || !json.Valid(w.Body.Bytes()) {
			t.Errorf("GET %s %q: %d %q, want %d and %q", tt.target, tt.header, w.Code, w.Body, tt.code, tt.want)
		}
	}
	if w := do(h, "POST", "/v1/watch", ""); w.Code != 405 {
		t.Errorf("POST /v1/watch: %d, want 405", w.Code)
	}
}

// watchGoroutines counts what still serves or feeds a watch.
func watchGoroutines() int {
	n := 0
	for _, g := range leakcheck.Goroutines("github.com/bifrost-go/bifrost") {
		if strings.Contains(g, "bifrost.(*HTTP).watch") || strings.Contains(g, "sm.(*listener).run") {
			n++
		}
	}
	return n
}

// waitFor waits for cond, checking it whenever the scheduler runs this
// goroutine again, until ctx ends.
func waitFor(ctx context.Context, cond func() bool) bool {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return false
		}
	}
	return true
}

// A client that goes away frees its stream: the handler returns and the
// API's client stops listening. Closing the API ends the streams open.
func TestWatchEndsWithItsClientAndTheAPI(t *testing.T) {
	ns := startWatchCluster(t, 1, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	do(ns[0].h, "PUT", "/v1/kv/k", "v")
	before := watchGoroutines()
	st := openWatch(ctx, t, ns[0].srv.URL+"/v1/watch/k", "")
	if watchGoroutines() <= before {
		t.Fatal("no goroutine serves the open watch")
	}
	st.close()
	if !waitFor(ctx, func() bool { return watchGoroutines() <= before }) {
		t.Errorf("the watch outlived its client: %d goroutines", watchGoroutines())
	}

	st = openWatch(ctx, t, ns[0].srv.URL+"/v1/watch?prefix=", "")
	defer st.close()
	ns[0].h.Close()
	select {
	case <-st.done:
	case <-ctx.Done():
		t.Error("the stream outlived the API")
	}
}

// syncRecorder is a ResponseWriter a test reads while a handler writes.
type syncRecorder struct {
	mu     sync.Mutex // protects b
	b      bytes.Buffer
	header http.Header
}

func (r *syncRecorder) Header() http.Header { return r.header }
func (r *syncRecorder) WriteHeader(int)     {}
func (r *syncRecorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.b.Write(p)
}
func (r *syncRecorder) take() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.b.String()
	r.b.Reset()
	return s
}

// fakeChanges hands a watch changes from a test.
type fakeChanges chan sm.Event[sm.MapChange[string, []byte]]

func (f fakeChanges) Next(ctx context.Context) (sm.Event[sm.MapChange[string, []byte]], error) {
	select {
	case ev, ok := <-f:
		if !ok {
			return ev, &sm.CompactedError{Index: 99}
		}
		return ev, nil
	case <-ctx.Done():
		return sm.Event[sm.MapChange[string, []byte]]{}, ctx.Err()
	}
}

// A quiet stream sends a keep-alive every period; one whose changes are
// all filtered out sends them too, with the id of the last it skipped;
// a shown change resets the period; compacted ends the stream.
func TestStreamChangesKeepAlive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const every = 15 * time.Second
		rec := &syncRecorder{header: http.Header{}}
		src := make(fakeChanges)
		done := make(chan struct{})
		go func() {
			defer close(done)
			streamChanges(t.Context(), &sseWriter{w: rec, rc: http.NewResponseController(rec), timeout: time.Second},
				src, func(k string) bool { return k == "mine" }, every)
		}()
		ev := func(index uint64, k string, removed bool) sm.Event[sm.MapChange[string, []byte]] {
			return sm.Event[sm.MapChange[string, []byte]]{ID: sm.EventID{Index: index},
				Value: sm.MapChange[string, []byte]{K: k, V: []byte("v"), Removed: removed}}
		}
		time.Sleep(every)
		synctest.Wait()
		if got := rec.take(); got != ": keep-alive\n\n" {
			t.Errorf("quiet for a period: %q, want a keep-alive", got)
		}
		time.Sleep(time.Second / 2) // changes come between the periods' ends
		for i := range uint64(16) { // a skipped change every second, 10 at 16.5s to 25 at 31.5s
			time.Sleep(time.Second)
			src <- ev(10+i, "other", false)
		}
		synctest.Wait()
		if got := rec.take(); got != ": keep-alive\nid: 23-0\n\n" { // at 30s
			t.Errorf("skipping changes for a period: %q, want a keep-alive naming the last skipped", got)
		}
		src <- ev(30, "mine", false)
		src <- ev(31, "mine", true)
		synctest.Wait()
		want := "id: 30-0\nevent: put\ndata: {\"id\":\"30-0\",\"key\":\"mine\",\"value\":\"dg==\"}\n\n" +
			"id: 31-0\nevent: delete\ndata: {\"id\":\"31-0\",\"key\":\"mine\"}\n\n"
		if got := rec.take(); got != want {
			t.Errorf("changes shown:\n%q\nwant\n%q", got, want)
		}
		time.Sleep(every - time.Second)
		synctest.Wait()
		if got := rec.take(); got != "" {
			t.Errorf("within a period of a change: %q, want nothing", got)
		}
		close(src)
		<-done
		if got := rec.take(); got != "event: compacted\ndata: {\"index\":99}\n\n" {
			t.Errorf("compacted: %q", got)
		}
	})
}

// The resume id parses from the header or the query, never panics, and
// what parses is what formats back.
func FuzzWatchParams(f *testing.F) {
	for _, s := range []struct{ header, query string }{
		{"12-3", ""}, {"", "after=7"}, {"", "last_event_id=1-0&after=2"}, {"x", "after=1"},
		{"18446744073709551615-18446744073709551615", ""}, {"", "after=%zz"}, {"-", ""}, {"", "after="},
	} {
		f.Add(s.header, s.query)
	}
	f.Fuzz(func(t *testing.T, header, query string) {
		q, _ := url.ParseQuery(query)
		var hs []string
		if header != "" {
			hs = []string{header}
		}
		after, resume, err := watchParams(hs, q)
		if err != nil {
			if resume {
				t.Errorf("%q %q: resume with %v", header, query, err)
			}
			return
		}
		if !resume {
			return
		}
		again, err := parseEventID(formatEventID(after))
		if err != nil || again != after {
			t.Errorf("%q %q: %v formats as %q, parses back as %v, %v", header, query, after, formatEventID(after), again, err)
		}
	})
}
