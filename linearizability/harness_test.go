package linearizability

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bifrost-go/bifrost/raft"
	"github.com/bifrost-go/bifrost/rpc"
)

// TestNetworkKeepsOrderAndPartitions checks the test network itself: in
// order on a link unless reordering, nothing across a partition, nothing
// to a crashed server.
func TestNetworkKeepsOrderAndPartitions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := newNetwork(1, faults{minDelay: time.Millisecond, maxDelay: 20 * time.Millisecond})
		var mu sync.Mutex // protects arrived
		var arrived []uint64
		nw.endpoint(2).Receive(func(m raft.Message) {
			mu.Lock()
			defer mu.Unlock()
			arrived = append(arrived, m.Index)
		})
		received := func() []uint64 {
			mu.Lock()
			defer mu.Unlock()
			return slices.Clone(arrived)
		}
		from1 := nw.endpoint(1)
		for i := range uint64(50) {
			from1.Send([]raft.Message{{From: 1, To: 2, Index: i}})
		}
		time.Sleep(time.Second)
		got := received()
		for i, idx := range got {
			if idx != uint64(i) {
				t.Fatalf("message %d arrived as number %d: %v", idx, i, got)
			}
		}
		if len(got) != 50 {
			t.Fatalf("%d of 50 messages arrived", len(got))
		}

		nw.partition([]uint64{1}, []uint64{2})
		from1.Send([]raft.Message{{From: 1, To: 2, Index: 100}})
		nw.heal()
		nw.disconnect(2)
		from1.Send([]raft.Message{{From: 1, To: 2, Index: 101}})
		time.Sleep(time.Second)
		if got = received(); len(got) != 50 {
			t.Errorf("messages across a partition or to a crashed server arrived: %v", got[50:])
		}
		if sent, lost, _ := nw.stats(); sent != 52 || lost != 1 {
			t.Errorf("stats: %d sent, %d lost; want 52, 1", sent, lost)
		}
	})
}

// TestLinksCarryCutAndRefuse checks the client links: a call takes the
// hops' delays and nothing else, a lost request cuts its connection, and
// a client cut off from a server, or a crashed server, loses its
// connections and has its dials refused.
func TestLinksCarryCutAndRefuse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := &cluster{nw: newNetwork(1, faults{minDelay: 2 * time.Millisecond}),
			idOf: map[string]uint64{"s1": 1}, reach: map[int][]uint64{}}
		c.links = newLinks(c, 1)
		echo := serveEcho(t, c.links, 1, "s1")
		from := &clientLinks{l: c.links, client: 0}
		ctx := context.Background()
		dial := func() *rpc.Client {
			t.Helper()
			cl, err := rpc.Dial(ctx, "s1", rpc.ClientConfig{Dial: from.dial})
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			t.Cleanup(func() { cl.Close() })
			return cl
		}
		refused := func(why string) {
			t.Helper()
			if _, err := rpc.Dial(ctx, "s1", rpc.ClientConfig{Dial: from.dial}); !errors.Is(err, errRefused) {
				t.Errorf("dial %s: %v, want errRefused", why, err)
			}
		}

		start := time.Now()
		cl := dial()
		if got, err := echo.Call(ctx, cl, []byte("hi")); err != nil || string(got) != "hi" {
			t.Fatalf("echo: %q, %v", got, err)
		}
		want := traffic{requests: 1, replies: 1, delay: 6 * time.Millisecond} // dial, request, reply
		if got := from.now(); got != want || time.Since(start) != want.delay {
			t.Errorf("traffic %+v in %v, want %+v in its delay", got, time.Since(start), want)
		}

		c.limitClient(0, []uint64{})
		<-cl.Done()
		refused("while cut off")
		c.limitClient(0, nil)

		c.nw.setFaults(faults{drop: 1})
		cl = dial()
		if _, err := echo.Call(ctx, cl, nil); err == nil {
			t.Error("a call whose request was lost returned")
		}
		<-cl.Done()
		if st := c.links.statsNow(); st.lostRequests != 1 || st.cuts != 1 || st.refused != 1 {
			t.Errorf("stats %+v, want 1 lost request, 1 cut, 1 refused", st)
		}
		c.nw.setFaults(faults{})

		cl = dial()
		c.links.down(1)
		<-cl.Done()
		refused("to a crashed server")
	})
}

// serveEcho serves an echo method at addr, as server id on l, until t
// ends.
func serveEcho(t *testing.T, l *links, id uint64, addr string) *rpc.Method[[]byte, []byte] {
	srv, err := rpc.NewServer(rpc.Config{})
	if err != nil {
		t.Fatal(err)
	}
	svc := rpc.NewService("echo")
	echo, err := rpc.Register(svc, "echo", func(_ context.Context, b []byte) ([]byte, error) { return b, nil })
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.AddService(svc); err != nil {
		t.Fatal(err)
	}
	ln := newMemListener(addr)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	l.up(id, ln)
	t.Cleanup(func() {
		srv.Close()
		<-served
	})
	return echo
}
