package node

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bifrost-go/bifrost/raft"
	"github.com/bifrost-go/bifrost/raft/wal"
	"github.com/bifrost-go/bifrost/rpc"
	"pgregory.net/rapid"
)

// loopbackMember is one member of a group on real loopback TCP.
type loopbackMember struct {
	id        uint64
	addr      string
	server    *rpc.Server
	pool      *rpc.Pool
	ctlPool   *rpc.Pool // the transport's ControlPool
	transport *RPCTransport
	wal       *wal.WAL
	sm        *recorder
	node      *Node
	served    chan error
}

// loopbackGroup runs a raft group over rpc on 127.0.0.1 with WAL storage.
type loopbackGroup struct {
	t       testing.TB
	tweak   func(*Config) // applied to every member's config; nil for none
	voters  []uint64
	addrs   map[uint64]string
	dirs    map[uint64]string
	members map[uint64]*loopbackMember
}

func newLoopbackGroup(t testing.TB, size int) *loopbackGroup {
	return newLoopbackGroupWith(t, size, nil)
}

// newLoopbackGroupWith starts a group whose configs tweak changes.
func newLoopbackGroupWith(t testing.TB, size int, tweak func(*Config)) *loopbackGroup {
	g := &loopbackGroup{t: t, tweak: tweak, addrs: map[uint64]string{}, dirs: map[uint64]string{},
		members: map[uint64]*loopbackMember{}}
	listeners := map[uint64]net.Listener{}
	for id := uint64(1); id <= uint64(size); id++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		g.voters = append(g.voters, id)
		g.addrs[id] = ln.Addr().String()
		g.dirs[id] = t.TempDir()
		listeners[id] = ln
	}
	for id, ln := range listeners {
		g.start(id, ln)
	}
	t.Cleanup(g.stopAll)
	return g
}

// start runs member id on ln, or on a new listener at its old address.
func (g *loopbackGroup) start(id uint64, ln net.Listener) {
	t := g.t
	t.Helper()
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", g.addrs[id]); err != nil {
			t.Fatalf("listen again on %s: %v", g.addrs[id], err)
		}
	}
	m := &loopbackMember{id: id, addr: g.addrs[id], sm: &recorder{}, served: make(chan error, 1)}
	var err error
	if m.server, err = rpc.NewServer(rpc.Config{}); err != nil {
		t.Fatal(err)
	}
	if m.pool, err = rpc.NewPool(rpc.ClientConfig{}); err != nil {
		t.Fatal(err)
	}
	if m.ctlPool, err = rpc.NewPool(rpc.ClientConfig{}); err != nil {
		t.Fatal(err)
	}
	// Like a deployment with a static peer list, a member is configured
	// with the first voters' addresses only: those of members added later
	// it learns from the log or a snapshot.
	peers := map[uint64]string{}
	for _, pid := range g.voters {
		if pid != id {
			peers[pid] = g.addrs[pid]
		}
	}
	if m.transport, err = NewRPCTransport(RPCTransportConfig{Group: "test", Peers: peers,
		Server: m.server, Pool: m.pool, ControlPool: m.ctlPool}); err != nil {
		t.Fatal(err)
	}
	if m.wal, err = wal.Open(wal.Config{Dir: g.dirs[id]}); err != nil {
		t.Fatal(err)
	}
	go func() { m.served <- m.server.Serve(ln) }()
	cfg := Config{Raft: raft.Config{ID: id, Voters: g.voters}, Storage: NewWALStorage(m.wal),
		Transport: m.transport, StateMachine: m.sm, TickInterval: 10 * time.Millisecond}
	if !slices.Contains(g.voters, id) {
		cfg.Raft.Learners = []uint64{id} // joins the running group
	}
	if g.tweak != nil {
		g.tweak(&cfg)
	}
	if m.node, err = Start(cfg); err != nil {
		t.Fatal(err)
	}
	g.members[id] = m
}

func (g *loopbackGroup) stop(id uint64) {
	m := g.members[id]
	delete(g.members, id)
	for _, err := range []error{m.node.Stop(), m.transport.Close(), m.server.Close(), m.pool.Close(), m.ctlPool.Close(), m.wal.Close()} {
		if err != nil {
			g.t.Errorf("stop member %d: %v", id, err)
		}
	}
	<-m.served
}

func (g *loopbackGroup) stopAll() {
	for id := range g.members {
		g.stop(id)
	}
}

// waitLeader waits, bounded by ctx, until a running member leads and the
// others follow it, and returns it. Members may disagree for a moment
// while leadership moves; it waits that out.
func (g *loopbackGroup) waitLeader(ctx context.Context) *loopbackMember {
	g.t.Helper()
	return g.waitLeaderOf(ctx, slices.Collect(maps.Keys(g.members)))
}

// waitLeaderOf is waitLeader for the running members among ids.
func (g *loopbackGroup) waitLeaderOf(ctx context.Context, ids []uint64) *loopbackMember {
	g.t.Helper()
	var members []*loopbackMember
	for _, id := range ids {
		if m := g.members[id]; m != nil {
			members = append(members, m)
		}
	}
	for {
		lead := g.anyLeader(ctx, members)
		var other *loopbackMember
		for _, m := range members {
			if m.node.Status().Lead != lead {
				other = m
			}
		}
		if other == nil && g.members[lead].node.Status().Role == raft.RoleLeader {
			return g.members[lead]
		}
		if other == nil {
			other = g.members[lead]
		}
		// Wait for the dissenter's view to change, then look again.
		seen := other.node.Status()
		if err := other.node.WaitFor(ctx, func(st Status) bool { return st != seen }); err != nil {
			g.t.Fatalf("members disagree on the leader (%d sees %d, others %d): %v", other.id, seen.Lead, lead, err)
		}
	}
}

// anyLeader waits until each of members knows of a leader among the
// running members, and returns the one the last of them names.
func (g *loopbackGroup) anyLeader(ctx context.Context, members []*loopbackMember) uint64 {
	g.t.Helper()
	var lead uint64
	for _, m := range members {
		err := m.node.WaitFor(ctx, func(st Status) bool {
			_, ok := g.members[st.Lead]
			return st.Lead != 0 && ok
		})
		if err != nil {
			g.t.Fatalf("member %d found no leader: %v", m.id, err)
		}
		lead = m.node.Status().Lead
	}
	return lead
}

func TestRPCGroupCommitsFailsOverAndRecovers(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	g := newLoopbackGroup(t, 3)
	for i := range 20 {
		g.proposeOnLeader(ctx, fmt.Appendf(nil, "a%d", i))
	}
	old := g.waitLeader(ctx).id
	g.stop(old)
	g.proposeOnLeader(ctx, []byte("after failover"))
	lead := g.waitLeader(ctx)
	// The old leader restarts from its WAL, replays into a fresh state
	// machine and catches up with the new entry.
	g.start(old, nil)
	want := lead.sm.snapshot()
	applied := lead.node.Status().Applied
	err := g.members[old].node.WaitFor(ctx, func(st Status) bool { return st.Applied >= applied })
	if err != nil {
		t.Fatalf("restarted member did not catch up: %v", err)
	}
	if got := g.members[old].sm.snapshot(); !slices.Equal(got[:len(want)], want) {
		t.Errorf("restarted member applied %v, want %v", got, want)
	}
}

func TestBatchRoundTrip(t *testing.T) {
	in := batch{
		{Type: raft.MsgApp, From: 1, To: 2, Term: 3, Index: 4, LogTerm: 3, Commit: 2,
			Entries: []raft.Entry{{Index: 5, Term: 3, Data: []byte("x")}}},
		{Type: raft.MsgHeartbeat, From: 1, To: 2, Term: 3, Context: 7},
		{Type: raft.MsgVote, From: 2, To: 3, Term: 4, Index: 5, LogTerm: 3, Transfer: true},
		{Type: raft.MsgReadIndexResp, From: 1, To: 2, Term: 3, Index: 9, Context: 1 << 60},
	}
	b, _ := in.AppendBinary(nil)
	var out batch
	if err := out.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(out) != fmt.Sprint(in) {
		t.Errorf("round trip = %v, want %v", out, in)
	}
	// The decoded entries share a copy of the payload, not the payload,
	// which the rpc layer may reuse.
	clear(b)
	if got := string(out[0].Entries[0].Data); got != "x" {
		t.Errorf("entry data after the payload was overwritten = %q, want %q", got, "x")
	}
}

// TestBatchWireForm checks the in-place encoder against the wire form
// spelled out: the count, then each message's length and bytes, for
// lengths that take one, two and three bytes.
func TestBatchWireForm(t *testing.T) {
	in := batch{
		{Type: raft.MsgAppResp, From: 2, To: 1, Term: 3, Index: 9},
		{Type: raft.MsgApp, From: 1, To: 2, Term: 3, Entries: []raft.Entry{{Index: 1, Term: 3, Data: make([]byte, 200)}}},
		{Type: raft.MsgApp, From: 1, To: 2, Term: 3, Entries: []raft.Entry{{Index: 2, Term: 3, Data: make([]byte, 20000)}}},
		{Type: raft.MsgHeartbeat, From: 1, To: 2, Term: 3, Context: 7},
	}
	want := binary.AppendUvarint(nil, uint64(len(in)))
	for i := range in {
		m, _ := in[i].AppendBinary(nil)
		want = binary.AppendUvarint(want, uint64(len(m)))
		want = append(want, m...)
	}
	got, _ := in.AppendBinary([]byte("prefix"))
	if string(got[:6]) != "prefix" || !bytes.Equal(got[6:], want) {
		t.Fatalf("wire form differs from count, then length and bytes of each message")
	}
	var out batch
	if err := out.UnmarshalBinary(got[6:]); err != nil || fmt.Sprint(out) != fmt.Sprint(in) {
		t.Errorf("round trip = %v (%v), want %v", out, err, in)
	}
}

func FuzzBatchDecode(f *testing.F) {
	good := batch{{Type: raft.MsgApp, From: 1, To: 2, Entries: []raft.Entry{{Index: 1, Term: 1, Data: []byte("d")}}}}
	b, _ := good.AppendBinary(nil)
	f.Add(b)
	reads := batch{{Type: raft.MsgReadIndex, From: 2, To: 1, Term: 3, Context: 42},
		{Type: raft.MsgTimeoutNow, From: 1, To: 2, Term: 3}}
	b, _ = reads.AppendBinary(nil)
	f.Add(b)
	f.Add([]byte{0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, p []byte) {
		var got batch
		if err := got.UnmarshalBinary(p); err != nil {
			return
		}
		again, _ := got.AppendBinary(nil)
		var back batch
		if err := back.UnmarshalBinary(again); err != nil {
			t.Fatalf("re-encoded batch does not decode: %v", err)
		}
		if fmt.Sprint(back) != fmt.Sprint(got) {
			t.Fatalf("re-encoding changed the batch: %v != %v", back, got)
		}
	})
}

// genMessage draws a message with every optional part, any numbers.
func genMessage(t *rapid.T) raft.Message {
	u := func(name string) uint64 { return rapid.Uint64().Draw(t, name) }
	m := raft.Message{Type: raft.MessageType(rapid.IntRange(0, int(raft.MsgSnapResp)).Draw(t, "type")),
		From: u("from"), To: u("to"), Term: u("term"), LogTerm: u("logTerm"), Index: u("index"),
		Commit: u("commit"), RejectHint: u("hint"), Context: u("context"),
		Reject: rapid.Bool().Draw(t, "reject"), Transfer: rapid.Bool().Draw(t, "transfer")}
	for i := range rapid.IntRange(0, 4).Draw(t, "entries") {
		m.Entries = append(m.Entries, raft.Entry{Index: u("entry index"), Term: u("entry term"),
			Type: raft.EntryType(i % 3), Data: rapid.SliceOfN(rapid.Byte(), 0, 300).Draw(t, "data")})
	}
	if rapid.Bool().Draw(t, "snap") {
		m.SnapOffset, m.SnapTotal, m.SnapChecksum = u("offset"), u("total"), rapid.Uint32().Draw(t, "sum")
		m.SnapDone = rapid.Bool().Draw(t, "done")
		m.SnapData = rapid.SliceOfN(rapid.Byte(), 1, 300).Draw(t, "snap data")
		m.SnapVoters = rapid.SliceOfN(rapid.Uint64Min(1), 1, 5).Draw(t, "voters")
		m.SnapLearners = rapid.SliceOfN(rapid.Uint64Min(1), 0, 5).Draw(t, "learners")
		m.SnapAddrs = rapid.MapOfN(rapid.Uint64Min(1), rapid.StringN(0, 40, -1), 0, 5).Draw(t, "addrs")
	}
	return m
}

// wireSize bounds what a message really takes in a batch, so batches cut
// by it fit their frame.
func TestWireSizeBoundsTheEncoding(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		b := batch(rapid.SliceOfN(rapid.Custom(genMessage), 1, 5).Draw(t, "batch"))
		wire, _ := b.AppendBinary(nil)
		bound := binary.MaxVarintLen64
		for i := range b {
			bound += wireSize(&b[i])
		}
		if len(wire) > bound {
			t.Fatalf("batch of %d messages encodes in %d bytes, over its bound %d", len(b), len(wire), bound)
		}
	})
}

// newTestLane returns the bulk lane of a peer of a transport that is
// never started, its batches at most maxBatch bytes.
func newTestLane(maxBatch, maxQueue, maxQueueBytes int, log *slog.Logger) (*RPCTransport, *lane) {
	t := &RPCTransport{maxBatch: maxBatch, cfg: RPCTransportConfig{MaxQueue: maxQueue,
		MaxQueueBytes: maxQueueBytes, Logger: log}}
	return t, newLane(t, &peerSender{id: 2, addr: "nowhere"}, laneBulk)
}

func TestLaneCutsBatchesByBytes(t *testing.T) {
	const maxBatch = 10000
	_, l := newTestLane(maxBatch, 1<<20, 1<<30, slog.New(slog.DiscardHandler))
	var want []uint64
	for i := range 3000 {
		size := []int{0, 10, 3000, 9000, maxBatch - wireFixed - 31}[i%5]
		m := raft.Message{Type: raft.MsgApp, To: 2, Index: uint64(i),
			Entries: []raft.Entry{{Index: uint64(i + 1), Data: make([]byte, size)}}}
		l.enqueue(m)
		want = append(want, m.Index)
	}
	var got []uint64
	for batches := 0; ; batches++ {
		b := l.take(nil)
		if len(b) == 0 {
			break
		}
		size := 0
		for i := range b {
			size += wireSize(&b[i])
			got = append(got, b[i].Index)
		}
		wire, _ := b.AppendBinary(nil)
		if size > maxBatch || len(wire) > maxBatch || len(b) > maxBatchMessages {
			t.Fatalf("batch %d: %d messages, %d bytes on the wire, bound %d; want at most %d messages and %d bytes",
				batches, len(b), len(wire), size, maxBatchMessages, maxBatch)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("batches carried %d messages, want the %d queued, in order", len(got), len(want))
	}
	if l.bytes != 0 {
		t.Errorf("empty queue counts %d bytes", l.bytes)
	}
}

// logRecords is a slog.Handler that keeps the messages it is handed.
type logRecords struct {
	mu   sync.Mutex // protects msgs
	msgs []string
}

func (h *logRecords) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRecords) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *logRecords) WithGroup(string) slog.Handler            { return h }
func (h *logRecords) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.msgs = append(h.msgs, r.Level.String()+" "+r.Message)
	return nil
}

func (h *logRecords) take() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	msgs := h.msgs
	h.msgs = nil
	return msgs
}

func TestLaneDropsWhenFullAndSaysSoOnce(t *testing.T) {
	logs := &logRecords{}
	tr, l := newTestLane(1<<20, 3, 3000, slog.New(logs))
	small := raft.Message{Type: raft.MsgApp, To: 2}
	big := raft.Message{Type: raft.MsgApp, To: 2, Entries: []raft.Entry{{Data: make([]byte, 2000)}}}
	huge := raft.Message{Type: raft.MsgApp, To: 2, Entries: []raft.Entry{{Data: make([]byte, 2<<20)}}}
	for _, m := range []raft.Message{big, big, small, small, small} {
		l.enqueue(m) // the second big one passes MaxQueueBytes, the last small one MaxQueue
	}
	if st := tr.Stats().Bulk; st.Dropped != 2 || len(l.queue) != 3 {
		t.Fatalf("after 5 messages into a queue of 3 messages or 3000 bytes: %d queued, %+v; want 3 queued, 2 dropped", len(l.queue), st)
	}
	if got := logs.take(); len(got) != 1 || !strings.HasPrefix(got[0], "WARN") {
		t.Errorf("drops logged %q, want one warning", got)
	}
	l.take(nil)
	if got := logs.take(); len(got) != 1 || !strings.Contains(got[0], "again") {
		t.Errorf("queue drained logged %q, want one line", got)
	}
	l.enqueue(huge)
	if st := tr.Stats().Bulk; st.Oversized != 1 || len(l.queue) != 0 {
		t.Errorf("a message larger than a frame: %d queued, %+v; want it dropped as oversized", len(l.queue), st)
	}
	if got := logs.take(); len(got) != 1 || !strings.HasPrefix(got[0], "WARN") {
		t.Errorf("oversized message logged %q, want one warning", got)
	}
}

// transportEnd is one end of a pair of transports on loopback TCP.
type transportEnd struct {
	t         *RPCTransport
	server    *rpc.Server
	pool, ctl *rpc.Pool
	got       chan raft.Message // what arrives, in order of delivery
}

// newTransportEnd starts a transport for node id listening on ln (nil:
// none, it only sends), with peers and frame limit maxFrame on both the
// transport and rpc. Its messages arrive on got, or in receive if set.
func newTransportEnd(t *testing.T, id uint64, ln net.Listener, peers map[uint64]string, maxFrame int,
	receive func(raft.Message), log *slog.Logger) *transportEnd {
	e := &transportEnd{got: make(chan raft.Message, 1024)}
	var err error
	if e.server, err = rpc.NewServer(rpc.Config{MaxFrameSize: maxFrame}); err != nil {
		t.Fatal(err)
	}
	if e.pool, err = rpc.NewPool(rpc.ClientConfig{MaxFrameSize: maxFrame}); err != nil {
		t.Fatal(err)
	}
	if e.ctl, err = rpc.NewPool(rpc.ClientConfig{MaxFrameSize: maxFrame}); err != nil {
		t.Fatal(err)
	}
	if e.t, err = NewRPCTransport(RPCTransportConfig{Group: "pair", Peers: peers, Server: e.server,
		Pool: e.pool, ControlPool: e.ctl, MaxFrameBytes: maxFrame, Logger: log}); err != nil {
		t.Fatal(err)
	}
	if receive == nil {
		receive = func(m raft.Message) { e.got <- m }
	}
	e.t.Receive(receive)
	served := make(chan error, 1)
	if ln != nil {
		go func() { served <- e.server.Serve(ln) }()
	}
	t.Cleanup(func() {
		e.t.Close()
		e.server.Close()
		e.pool.Close()
		e.ctl.Close()
		if ln != nil {
			<-served
		}
	})
	return e
}

func listen(t *testing.T) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// receiveN waits for n messages on e.got, failing the test after a bound
// that only a broken transport reaches.
func (e *transportEnd) receiveN(t *testing.T, n int) []raft.Message {
	t.Helper()
	timeout := time.After(20 * time.Second)
	var out []raft.Message
	for len(out) < n {
		select {
		case m := <-e.got:
			out = append(out, m)
		case <-timeout:
			t.Fatalf("%d of %d messages arrived; stats %+v", len(out), n, e.t.Stats())
		}
	}
	return out
}

// A message of MaxMessageBytes goes through rpc with the same frame
// limit, back to back with others of its size, each batch under the
// limit; a larger one is refused before it is queued.
func TestRPCTransportCarriesTheLargestMessage(t *testing.T) {
	const maxFrame = 256 << 10
	ln := listen(t)
	recv := newTransportEnd(t, 2, ln, nil, maxFrame, nil, nil)
	send := newTransportEnd(t, 1, nil, map[uint64]string{2: ln.Addr().String()}, maxFrame, nil, nil)
	max := send.t.MaxMessageBytes()
	if want := maxFrame - frameReserve - messageReserve; max != want {
		t.Fatalf("MaxMessageBytes = %d, want %d", max, want)
	}
	var want []raft.Message
	for i := range 6 {
		m := raft.Message{Type: raft.MsgApp, From: 1, To: 2, Term: 1, Index: uint64(i),
			Entries: []raft.Entry{{Index: uint64(i + 1), Term: 1, Data: bytes.Repeat([]byte{byte(i)}, max-31)}}}
		if size := m.Entries[0].EncodedSize(); size != max {
			t.Fatalf("test entry counts %d bytes, want %d", size, max)
		}
		want = append(want, m)
	}
	addrs := map[uint64]string{1: strings.Repeat("a", 200), 2: "b", 3: "c"}
	want = append(want, raft.Message{Type: raft.MsgSnap, From: 1, To: 2, Term: 1, Index: 9, LogTerm: 1,
		SnapData: make([]byte, max), SnapTotal: uint64(max), SnapVoters: []uint64{1, 2, 3}, SnapAddrs: addrs})
	send.t.Send(want)
	got := recv.receiveN(t, len(want))
	for i := range want {
		if got[i].Index != want[i].Index || got[i].Type != want[i].Type {
			t.Fatalf("message %d arrived as %v at %d, want %v at %d", i, got[i].Type, got[i].Index, want[i].Type, want[i].Index)
		}
	}
	tooLarge := raft.Message{Type: raft.MsgApp, From: 1, To: 2, Entries: []raft.Entry{{Data: make([]byte, maxFrame)}}}
	send.t.Send([]raft.Message{tooLarge})
	waitUntil(t, "the last batch to count", func() bool { return send.t.Stats().Bulk.Sent == uint64(len(want)) })
	if st := send.t.Stats().Bulk; st.Sent != uint64(len(want)) || st.Failed != 0 || st.Oversized != 1 || st.Batches < 4 {
		t.Errorf("stats %+v: want %d sent in several batches, none failed, one oversized", st, len(want))
	}
}

// Heartbeats and votes go on their own queue and connection: a follower
// whose reader is stuck on an append (as one busy with megabytes of them
// is) still hears them at once, and the appends arrive afterwards, in
// order. The control messages are sent once an append is stuck in the
// follower's reader and another is in the bulk connection behind it,
// where over a shared connection they would wait too.
func TestRPCControlLaneBypassesStalledBulk(t *testing.T) {
	const maxFrame = 1 << 20
	ln := listen(t)
	stalled, release := make(chan struct{}), make(chan struct{})
	released := sync.OnceFunc(func() { close(release) })
	var recv *transportEnd
	recv = newTransportEnd(t, 2, ln, nil, maxFrame, func(m raft.Message) {
		if m.Type == raft.MsgApp && m.Index == 0 {
			close(stalled)
			<-release // the reader of the bulk connection stalls here
		}
		recv.got <- m
	}, nil)
	t.Cleanup(released) // before the transports close, should the test fail early
	send := newTransportEnd(t, 1, nil, map[uint64]string{2: ln.Addr().String()}, maxFrame, nil, nil)
	var apps []raft.Message
	for i := range 16 {
		apps = append(apps, raft.Message{Type: raft.MsgApp, From: 1, To: 2, Term: 1, Index: uint64(i),
			Entries: []raft.Entry{{Index: uint64(i + 1), Term: 1, Data: make([]byte, 256<<10)}}})
	}
	send.t.Send(apps)
	<-stalled
	waitUntil(t, "a second batch of appends in the connection", func() bool { return send.t.Stats().Bulk.Batches >= 2 })
	control := []raft.Message{
		{Type: raft.MsgHeartbeat, From: 1, To: 2, Term: 1, Context: 1},
		{Type: raft.MsgVote, From: 1, To: 2, Term: 2, Index: 16, LogTerm: 1},
		{Type: raft.MsgHeartbeat, From: 1, To: 2, Term: 2, Context: 2},
	}
	send.t.Send(control)
	got := recv.receiveN(t, len(control))
	for i := range control {
		if got[i].Type != control[i].Type || got[i].Context != control[i].Context {
			t.Fatalf("control message %d arrived as %+v, want %+v", i, got[i], control[i])
		}
	}
	released()
	got = recv.receiveN(t, len(apps))
	for i := range apps {
		if got[i].Type != raft.MsgApp || got[i].Index != uint64(i) {
			t.Fatalf("append %d arrived as %v at %d, want the appends in order", i, got[i].Type, got[i].Index)
		}
	}
}

// waitUntil waits for cond, checking each millisecond, and fails the
// test after a bound that only a broken transport reaches.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	timeout := time.After(20 * time.Second)
	for !cond() {
		select {
		case <-tick.C:
		case <-timeout:
			t.Fatalf("waiting for %s", what)
		}
	}
}

// Sends to a peer that is down are counted, logged once when they start
// failing and once when they work again.
func TestRPCSendFailuresCountedAndLoggedOnce(t *testing.T) {
	ln := listen(t)
	addr := ln.Addr().String()
	ln.Close() // nobody listens there yet: dials are refused
	logs := &logRecords{}
	send := newTransportEnd(t, 1, nil, map[uint64]string{2: addr}, 0, nil, slog.New(logs))
	for i := range 5 {
		send.t.Send([]raft.Message{{Type: raft.MsgHeartbeat, From: 1, To: 2, Term: 1, Context: uint64(i + 1)}})
		waitUntil(t, fmt.Sprintf("heartbeat %d to fail", i+1), func() bool { return send.t.Stats().Control.Failed == uint64(i+1) })
	}
	if got := logs.take(); len(got) != 1 || !strings.HasPrefix(got[0], "WARN raft transport: sends to peer failing") {
		t.Errorf("5 failed sends logged %q, want one warning", got)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s again: %v", addr, err)
	}
	recv := newTransportEnd(t, 2, ln, nil, 0, nil, nil)
	send.t.Send([]raft.Message{{Type: raft.MsgHeartbeat, From: 1, To: 2, Term: 1, Context: 9}})
	if m := recv.receiveN(t, 1)[0]; m.Context != 9 {
		t.Errorf("received %+v, want the heartbeat of round 9", m)
	}
	waitUntil(t, "the send to count", func() bool { return send.t.Stats().Control.Sent == 1 })
	if got := logs.take(); len(got) != 1 || !strings.HasPrefix(got[0], "INFO raft transport: sends to peer work again") {
		t.Errorf("recovery logged %q, want one line", got)
	}
	if st := send.t.Stats(); st.Control.Failed != 5 || st.Bulk != (LaneStats{}) {
		t.Errorf("stats %+v, want 5 control messages failed, 1 sent, nothing in the bulk lane", st)
	}
}

// peerAddr returns the address the transport sends to node id at, or ""
// if it knows none.
func (t *RPCTransport) peerAddr(id uint64) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if p := t.peers[id]; p != nil {
		return p.addr
	}
	return ""
}

// A follower's status names the leader's rpc address, from the
// transport's peers.
func TestRPCStatusNamesTheLeaderAddress(t *testing.T) {
	g := newLoopbackGroup(t, 3)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	lead := g.waitLeader(ctx)
	for id, m := range g.members {
		want := g.addrs[lead.id]
		if id == lead.id {
			want = ""
		}
		err := m.node.WaitFor(ctx, func(st Status) bool { return st.Lead == lead.id && st.LeaderAddr == want })
		if err != nil {
			t.Errorf("member %d: LeaderAddr %q, want %q (leader %d)", id, m.node.Status().LeaderAddr, want, lead.id)
		}
	}
}
