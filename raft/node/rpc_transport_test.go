package node

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/bifrost-go/bifrost/raft"
	"github.com/bifrost-go/bifrost/raft/wal"
	"github.com/bifrost-go/bifrost/rpc"
)

// loopbackMember is one member of a group on real loopback TCP.
type loopbackMember struct {
	id        uint64
	addr      string
	server    *rpc.Server
	pool      *rpc.Pool
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
		Server: m.server, Pool: m.pool}); err != nil {
		t.Fatal(err)
	}
	if m.wal, err = wal.Open(wal.Config{Dir: g.dirs[id]}); err != nil {
		t.Fatal(err)
	}
	go func() { m.served <- m.server.Serve(ln) }()
	cfg := Config{ID: id, Voters: g.voters, Storage: WALStorage(m.wal),
		Transport: m.transport, StateMachine: m.sm, TickInterval: 10 * time.Millisecond}
	if !slices.Contains(g.voters, id) {
		cfg.Learners = []uint64{id} // joins the running group
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
	for _, err := range []error{m.node.Stop(), m.transport.Close(), m.server.Close(), m.pool.Close(), m.wal.Close()} {
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
// others follow it, and returns it.
func (g *loopbackGroup) waitLeader(ctx context.Context) *loopbackMember {
	g.t.Helper()
	for _, m := range g.members {
		err := m.node.WaitFor(ctx, func(st raft.Status) bool {
			if st.Lead == 0 {
				return false
			}
			_, ok := g.members[st.Lead]
			return ok
		})
		if err != nil {
			g.t.Fatalf("member %d found no leader: %v", m.id, err)
		}
	}
	var lead uint64
	for _, m := range g.members {
		if lead == 0 {
			lead = m.node.Status().Lead
		} else if l := m.node.Status().Lead; l != lead {
			g.t.Fatalf("members disagree on the leader: %d and %d", lead, l)
		}
	}
	return g.members[lead]
}

func TestRPCGroupCommitsFailsOverAndRecovers(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	g := newLoopbackGroup(t, 3)
	lead := g.waitLeader(ctx)
	for i := range 20 {
		cmd := fmt.Sprintf("a%d", i)
		if _, value, err := lead.node.Propose(ctx, []byte(cmd)); err != nil || string(value) != "ok:"+cmd {
			t.Fatalf("propose %s: value %q, err %v", cmd, value, err)
		}
	}
	old := lead.id
	g.stop(old)
	lead = g.waitLeader(ctx)
	if _, _, err := lead.node.Propose(ctx, []byte("after failover")); err != nil {
		t.Fatalf("propose after failover: %v", err)
	}
	// The old leader restarts from its WAL, replays into a fresh state
	// machine and catches up with the new entry.
	g.start(old, nil)
	want := lead.sm.snapshot()
	applied := lead.node.Status().Applied
	err := g.members[old].node.WaitFor(ctx, func(st raft.Status) bool { return st.Applied >= applied })
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
