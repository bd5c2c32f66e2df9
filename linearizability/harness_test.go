package linearizability

import (
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bifrost-go/bifrost/raft"
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
