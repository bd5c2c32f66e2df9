package bifrost

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The end-to-end test runs the bifrost command as a user would: it builds
// the binary, starts three `bifrost node` processes on loopback and talks
// to them over HTTP only.
//
//   - Concurrent clients write distinct keys to any node, and one writer
//     sets the watched key to 0, 1, 2, ... in turn, while a watch streams
//     that key's changes over server-sent events from the leader.
//   - The leader is killed with SIGKILL; the writers keep going on the
//     survivors, the watch reconnects to a survivor with Last-Event-ID,
//     and the killed node restarts from its directory.
//   - Every acknowledged write is then on every node.
//   - A fourth process joins with -join once the log is compacted past
//     what the leader keeps, so it catches up by snapshot; it becomes a
//     voter and serves linearizable reads of the oldest keys.
//   - One of the original three leaves cleanly (POST /v1/leave): its
//     process exits 0, the group no longer counts it and still writes.
//   - The watch saw each acknowledged value of its key once, in order,
//     and nothing that was not written.
//
// A write whose outcome is unknown (the node died under it, 504) may or
// may not be there, and is checked only for not being invented.
func TestEndToEndProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the bifrost binary")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	bin := buildBifrost(t)
	ports := e2ePorts(t, 8)
	e := &e2eCluster{t: t, bin: bin, dir: t.TempDir(), procs: map[int]*e2eProc{}}
	for i := 1; i <= 4; i++ {
		e.rpc = append(e.rpc, fmt.Sprintf("127.0.0.1:%d", ports[2*(i-1)]))
		e.http = append(e.http, fmt.Sprintf("127.0.0.1:%d", ports[2*(i-1)+1]))
	}
	var peers []string
	for i := 1; i <= 3; i++ {
		peers = append(peers, fmt.Sprintf("%d=%s", i, e.rpc[i-1]))
	}
	for i := 1; i <= 3; i++ {
		e.spawn(i, "-peers", strings.Join(peers, ","))
	}
	for i := 1; i <= 3; i++ {
		e.waitAPI(ctx, i)
	}
	lead := e.leader(ctx, 1, 2, 3)

	w := &e2eWriters{e: e, acked: map[string]string{}}
	watch := e.watch(ctx, lead, "watched")
	writing, stopWriting := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() { w.writeKeys(writing, g) })
	}
	wg.Go(func() { w.writeWatched(writing) })

	w.waitAcked(ctx, 400)
	e.kill(lead)
	survivors := slices.DeleteFunc([]int{1, 2, 3}, func(i int) bool { return i == lead })
	watch.reconnect(ctx, survivors[0])
	w.waitAcked(ctx, 800)
	e.start(ctx, lead, "-peers", strings.Join(peers, ","))
	// Past what the leader keeps before its snapshot (the default
	// catch-up of 1000 entries, and -snapshot-entries 100).
	w.waitAcked(ctx, 1600)
	stopWriting()
	wg.Wait()
	if len(w.acked) < 1600 {
		t.Fatalf("%d writes acknowledged", len(w.acked))
	}

	// Every acknowledged write is on every node.
	lead = e.leader(ctx, 1, 2, 3)
	for i := 1; i <= 3; i++ {
		e.waitApplied(ctx, i, w.maxIndex.Load())
		e.checkAll(ctx, i, w.acked, "stale")
	}

	// A fourth node joins once the log is compacted far enough that the
	// oldest entries exist only in snapshots.
	st := e.status(ctx, lead)
	if st.Snapshot < 1100 {
		t.Fatalf("the leader's snapshot is at %d: too early for the log to be compacted past the first writes", st.Snapshot)
	}
	e.start(ctx, 4, "-join", e.rpc[survivors[0]-1])
	e.waitVoter(ctx, lead, 4)
	e.checkAll(ctx, 4, w.acked, "linearizable")

	// One of the original three leaves; the group goes on with the others.
	leaving := survivors[1]
	if leaving == lead {
		leaving = survivors[0]
	}
	e.leave(ctx, leaving)
	rest := slices.DeleteFunc([]int{1, 2, 3, 4}, func(i int) bool { return i == leaving })
	lead = e.leader(ctx, rest...)
	e.waitRemoved(ctx, lead, leaving)
	if code, body := e.do(ctx, rest[0], "PUT", "/v1/kv/after-leave", "y"); code != 200 {
		t.Fatalf("write after the leave: %d %s", code, body)
	}
	for _, i := range rest {
		if code, body := e.do(ctx, i, "GET", "/v1/kv/after-leave", ""); code != 200 || body != "y" {
			t.Errorf("node %d: after-leave: %d %q", i, code, body)
		}
	}

	// The watch, checked up to the last value acknowledged.
	watch.check(ctx, w)
}

// buildBifrost builds cmd/bifrost into a temporary directory.
func buildBifrost(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "bifrost")
	out, err := exec.Command("go", "build", "-o", bin, "./cmd/bifrost").CombinedOutput()
	if err != nil {
		t.Fatalf("go build ./cmd/bifrost: %v\n%s", err, out)
	}
	return bin
}

// e2ePorts returns n loopback ports that were free a moment ago: a node
// is given its addresses on its command line, and they must stay the same
// across its restart.
func e2ePorts(t *testing.T, n int) []int {
	var ports []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// e2eCluster is the processes of the test, nodes 1 to 4.
type e2eCluster struct {
	t         *testing.T
	bin, dir  string
	rpc, http []string // by node id - 1

	mu    sync.Mutex
	procs map[int]*e2eProc
}

type e2eProc struct {
	cmd  *exec.Cmd
	out  *lockedBuffer
	done chan error
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// start runs node id with the flags every node has and extra, and waits
// until its HTTP API listens.
func (e *e2eCluster) start(ctx context.Context, id int, extra ...string) {
	e.t.Helper()
	e.spawn(id, extra...)
	e.waitAPI(ctx, id)
}

// spawn runs node id with the flags every node has and extra. A node
// answers on its HTTP API once it is in its group, which takes a quorum:
// the first three start together.
func (e *e2eCluster) spawn(id int, extra ...string) {
	e.t.Helper()
	args := append([]string{"node", "-id", strconv.Itoa(id), "-dir", filepath.Join(e.dir, strconv.Itoa(id)),
		"-rpc", e.rpc[id-1], "-http", e.http[id-1], "-snapshot-entries", "100",
		"-group", "cache", "-weight", strconv.Itoa(id)}, extra...)
	cmd := exec.Command(e.bin, args...)
	p := &e2eProc{cmd: cmd, out: &lockedBuffer{}, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	go func() { p.done <- cmd.Wait() }()
	e.t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.done
		if e.t.Failed() {
			e.t.Logf("node %d (%s) said:\n%s", id, strings.Join(args, " "), p.out)
		}
	})
	e.mu.Lock()
	e.procs[id] = p
	e.mu.Unlock()
}

// waitAPI waits until node id's HTTP API listens.
func (e *e2eCluster) waitAPI(ctx context.Context, id int) {
	e.t.Helper()
	e.mu.Lock()
	p := e.procs[id]
	e.mu.Unlock()
	e.until(ctx, fmt.Sprintf("node %d's API", id), func() bool {
		select {
		case err := <-p.done:
			e.t.Fatalf("node %d exited: %v\n%s", id, err, p.out)
		default:
		}
		return strings.Contains(p.out.String(), "http on ")
	})
}

// kill ends node id's process with SIGKILL.
func (e *e2eCluster) kill(id int) {
	e.mu.Lock()
	p := e.procs[id]
	e.mu.Unlock()
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	p.done <- nil // for the cleanup's wait
}

// until polls cond every few milliseconds until it holds: the nodes are
// other processes, and their HTTP API is all the test can see of them.
func (e *e2eCluster) until(ctx context.Context, what string, cond func() bool) {
	e.t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			e.t.Fatalf("waiting for %s: %v", what, ctx.Err())
		case <-tick.C:
		}
	}
}

// do makes one request of node id and returns the status and body; 0 if
// the node did not answer.
func (e *e2eCluster) do(ctx context.Context, id int, method, path, body string) (int, string) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, "http://"+e.http[id-1]+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

type e2eStatus struct {
	State             string
	Leader, Commit    uint64
	Applied, Snapshot uint64
	Voters, Learners  []uint64
}

func (e *e2eCluster) status(ctx context.Context, id int) e2eStatus {
	var st e2eStatus
	code, body := e.do(ctx, id, "GET", "/v1/status", "")
	if code == 200 {
		json.Unmarshal([]byte(body), &st)
	}
	return st
}

// leader waits until one of nodes leads and every one of them knows it,
// and returns it.
func (e *e2eCluster) leader(ctx context.Context, nodes ...int) int {
	e.t.Helper()
	var lead int
	e.until(ctx, fmt.Sprintf("a leader among %v", nodes), func() bool {
		lead = 0
		for _, i := range nodes {
			st := e.status(ctx, i)
			if st.Leader == 0 || lead != 0 && int(st.Leader) != lead {
				return false
			}
			lead = int(st.Leader)
		}
		return slices.Contains(nodes, lead) && e.status(ctx, lead).State == "leader"
	})
	return lead
}

func (e *e2eCluster) waitApplied(ctx context.Context, id int, index uint64) {
	e.t.Helper()
	e.until(ctx, fmt.Sprintf("node %d to apply %d", id, index), func() bool { return e.status(ctx, id).Applied >= index })
}

func (e *e2eCluster) waitVoter(ctx context.Context, lead, id int) {
	e.t.Helper()
	e.until(ctx, fmt.Sprintf("node %d to be a voter", id), func() bool {
		return slices.Contains(e.status(ctx, lead).Voters, uint64(id)) && e.status(ctx, id).State != "learner"
	})
}

func (e *e2eCluster) waitRemoved(ctx context.Context, lead, id int) {
	e.t.Helper()
	e.until(ctx, fmt.Sprintf("node %d to be removed", id), func() bool {
		st := e.status(ctx, lead)
		return len(st.Voters) > 0 && !slices.Contains(st.Voters, uint64(id)) && !slices.Contains(st.Learners, uint64(id))
	})
}

// checkAll reads every acknowledged key from node id in mode.
func (e *e2eCluster) checkAll(ctx context.Context, id int, acked map[string]string, mode string) {
	e.t.Helper()
	bad := 0
	for k, v := range acked {
		code, body := e.do(ctx, id, "GET", "/v1/kv/"+k+"?consistency="+mode, "")
		if (code != 200 || body != v) && bad < 5 {
			e.t.Errorf("node %d, %s read of %s: %d %q, want %q", id, mode, k, code, body, v)
			bad++
		}
	}
}

// leave has node id leave the group and waits for its process to exit.
func (e *e2eCluster) leave(ctx context.Context, id int) {
	e.t.Helper()
	if code, body := e.do(ctx, id, "POST", "/v1/leave", ""); code != 200 {
		e.t.Fatalf("leave node %d: %d %s", id, code, body)
	}
	e.mu.Lock()
	p := e.procs[id]
	e.mu.Unlock()
	select {
	case err := <-p.done:
		p.done <- nil
		if err != nil || !strings.Contains(p.out.String(), "left the cluster") {
			e.t.Fatalf("node %d after leaving: %v\n%s", id, err, p.out)
		}
	case <-ctx.Done():
		e.t.Fatalf("node %d did not exit after leaving", id)
	}
}

// e2eWriters are the test's writing clients.
type e2eWriters struct {
	e        *e2eCluster
	maxIndex atomic.Uint64

	mu      sync.Mutex
	acked   map[string]string // key: value, for the distinct keys
	watched []string          // the watched key's values, as set, in order
	wAcked  []bool            // whether each was acknowledged
	changed chan struct{}     // closed and replaced on every ack
}

func (w *e2eWriters) ack(index uint64, f func()) {
	w.mu.Lock()
	f()
	if w.changed != nil {
		close(w.changed)
		w.changed = nil
	}
	w.mu.Unlock()
	for old := w.maxIndex.Load(); index > old && !w.maxIndex.CompareAndSwap(old, index); old = w.maxIndex.Load() {
	}
}

// put writes k=v through the nodes in turn from first until one answers
// 200, and returns the index of the write; 0 when ctx ends first. A node
// that dies under a write leaves its outcome unknown, and the retry on
// another node is the same write again, which is harmless here: each
// key is written with one value only.
func (w *e2eWriters) put(ctx context.Context, first int, k, v string) (uint64, bool) {
	for i := first; ctx.Err() == nil; i++ {
		node := i%4 + 1
		code, body := w.e.do(ctx, node, "PUT", "/v1/kv/"+k, v)
		if code == 200 {
			var ans struct{ Index uint64 }
			json.Unmarshal([]byte(body), &ans)
			return ans.Index, true
		}
	}
	return 0, false
}

func (w *e2eWriters) writeKeys(ctx context.Context, g int) {
	for seq := 0; ctx.Err() == nil; seq++ {
		k, v := fmt.Sprintf("w%d-%d", g, seq), fmt.Sprintf("v%d-%d", g, seq)
		if index, ok := w.put(ctx, g+seq, k, v); ok {
			w.ack(index, func() { w.acked[k] = v })
		}
	}
}

// writeWatched sets the watched key to 0, 1, 2, ... one at a time, each
// until a node acknowledges it: a value may be set twice when its first
// outcome was unknown, but never after the next one.
func (w *e2eWriters) writeWatched(ctx context.Context) {
	for seq := 0; ctx.Err() == nil; seq++ {
		v := strconv.Itoa(seq)
		w.mu.Lock()
		w.watched, w.wAcked = append(w.watched, v), append(w.wAcked, false)
		w.mu.Unlock()
		if index, ok := w.put(ctx, seq, "watched", v); ok {
			w.ack(index, func() { w.wAcked[seq] = true })
		}
	}
}

// waitAcked waits until n distinct keys are acknowledged.
func (w *e2eWriters) waitAcked(ctx context.Context, n int) {
	w.e.t.Helper()
	for {
		w.mu.Lock()
		got := len(w.acked)
		if w.changed == nil {
			w.changed = make(chan struct{})
		}
		changed := w.changed
		w.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-changed:
		case <-ctx.Done():
			w.e.t.Fatalf("%d writes acknowledged, waiting for %d: %v", got, n, ctx.Err())
		}
	}
}

// e2eWatch is a server-sent-event watch of one key, moved between nodes
// with Last-Event-ID.
type e2eWatch struct {
	e   *e2eCluster
	key string

	mu     sync.Mutex
	lastID string
	values []string // the put events' values, in order
	ids    []string
	stop   context.CancelFunc
	done   chan error
}

func (e *e2eCluster) watch(ctx context.Context, id int, key string) *e2eWatch {
	w := &e2eWatch{e: e, key: key}
	w.connect(ctx, id)
	return w
}

// connect opens the stream on node id, after the last id seen, and reads
// it in the background until it breaks or reconnect stops it.
func (w *e2eWatch) connect(ctx context.Context, id int) {
	w.e.t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+w.e.http[id-1]+"/v1/watch/"+w.key, nil)
	if err != nil {
		w.e.t.Fatal(err)
	}
	w.mu.Lock()
	if w.lastID != "" {
		req.Header.Set("Last-Event-ID", w.lastID)
	}
	w.stop, w.done = cancel, make(chan error, 1)
	done := w.done
	w.mu.Unlock()
	// Right after a leader dies the group may need an election before a
	// stream can open: 503 until then.
	var resp *http.Response
	w.e.until(ctx, fmt.Sprintf("a watch on node %d", id), func() bool {
		if resp, err = http.DefaultClient.Do(req); err != nil {
			return false
		}
		if resp.StatusCode != 200 {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusServiceUnavailable {
				w.e.t.Fatalf("watch on node %d: %d %s", id, resp.StatusCode, b)
			}
			return false
		}
		return true
	})
	go func() { done <- w.read(resp.Body) }()
}

// read takes events from body until it ends.
func (w *e2eWatch) read(body io.ReadCloser) error {
	defer body.Close()
	sc := bufio.NewScanner(body)
	var id, event, data string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if event == "put" || event == "delete" {
				if err := w.see(id, event, data); err != nil {
					return err
				}
			} else if event != "" {
				return fmt.Errorf("event %q: %s", event, data)
			}
			id, event, data = "", "", ""
		case strings.HasPrefix(line, "id: "):
			id = line[len("id: "):]
		case strings.HasPrefix(line, "event: "):
			event = line[len("event: "):]
		case strings.HasPrefix(line, "data: "):
			data = line[len("data: "):]
		}
	}
	return sc.Err()
}

func (w *e2eWatch) see(id, event, data string) error {
	var ev struct {
		ID, Key string
		Value   []byte
	}
	if err := json.Unmarshal([]byte(data), &ev); err != nil {
		return fmt.Errorf("event %s: %w", id, err)
	}
	if ev.ID != id || ev.Key != w.key || event != "put" {
		return fmt.Errorf("event %s %s %s on a watch of %s", id, event, data, w.key)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if slices.Contains(w.ids, id) {
		return fmt.Errorf("event %s seen twice", id)
	}
	w.ids, w.values, w.lastID = append(w.ids, id), append(w.values, string(ev.Value)), id
	return nil
}

// reconnect moves the watch to node id, as a client whose node died
// does, once the old stream has broken or is given up on.
func (w *e2eWatch) reconnect(ctx context.Context, id int) {
	w.mu.Lock()
	stop, done := w.stop, w.done
	w.mu.Unlock()
	stop()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) && !isBroken(err) {
		w.e.t.Fatalf("watch before the reconnect: %v", err)
	}
	w.connect(ctx, id)
}

// isBroken reports an error of a stream whose server died.
func isBroken(err error) bool {
	return errors.Is(err, io.ErrUnexpectedEOF) || strings.Contains(err.Error(), "connection reset")
}

// check waits until the watch has seen the last acknowledged value of its
// key, then checks what it saw: the values set, in order, each once, with
// every acknowledged one among them.
func (w *e2eWatch) check(ctx context.Context, writers *e2eWriters) {
	t := w.e.t
	t.Helper()
	writers.mu.Lock()
	set, acked := slices.Clone(writers.watched), slices.Clone(writers.wAcked)
	writers.mu.Unlock()
	last := slices.Index(acked, true)
	for i, a := range acked {
		if a {
			last = i
		}
	}
	if last < 0 {
		t.Fatal("no value of the watched key was acknowledged")
	}
	w.e.until(ctx, "the watch to see value "+set[last], func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return slices.Contains(w.values, set[last])
	})
	w.mu.Lock()
	seen := slices.Clone(w.values)
	w.mu.Unlock()
	// A value whose first write had an unknown outcome was written again,
	// so it may show twice; what counts is where each value first shows.
	first := 0 // values first seen so far, which are set[:first] in order
	for _, v := range seen {
		n, err := strconv.Atoi(v)
		switch {
		case err != nil || n >= len(set):
			t.Fatalf("the watch saw %q, which was never written; saw %v", v, seen)
		case n < first:
			continue // seen before
		}
		for first <= n {
			if acked[first] && first < n {
				t.Fatalf("the watch missed acknowledged value %d; saw %v", first, seen)
			}
			first++
		}
	}
	if first <= last {
		t.Fatalf("the watch saw values up to %d, not the last acknowledged %d", first-1, last)
	}
	t.Logf("the watch saw %d values of %d set (%d acknowledged), across the kill", len(seen), len(set), countTrue(acked))
}

func countTrue(bs []bool) (n int) {
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}
