package sm

import (
	"context"
	"testing"
	"time"

	"github.com/bifrost-go/bifrost/raft/node"
)

// A group's stats count the reads of each mode, the commands applied on
// every member and, on the leader, the lag of a subscriber that had
// events waiting.
func TestStatsCountReadsCommandsAndLag(t *testing.T) {
	g := newGroup(t, 3, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	c := g.client()
	st, err := testMap.Inserted().Open(ctx, c, struct{}{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close(ctx)
	const writes = 3
	for _, k := range []string{"a", "b", "c"} {
		if _, _, err := testMap.Insert(ctx, c, k, "v"); err != nil {
			t.Fatal(err)
		}
	}
	for range writes {
		if _, err := st.Next(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for _, mode := range []ReadMode{Linearizable, Lease, Follower} {
		if _, err := testValue.GetAs(ctx, c, mode); err != nil {
			t.Fatal(err)
		}
	}

	var reads [3]uint64
	var lagged, polls uint64
	for id, m := range g.members {
		s := m.sm.Stats()
		for i := range reads {
			reads[i] += s.Reads[i]
		}
		polls += s.Polls
		h := m.host.Stats()
		lag := h.SubscriptionLag
		lagged += lag.Count - lag.Cumulative[0] // observations over 0
		// Every member applies every command; a follower may lag, so
		// wait for it to have applied the last write.
		if err := m.node.WaitFor(ctx, func(st node.Status) bool { return st.Applied >= c.Seen() }); err != nil {
			t.Fatal(err)
		}
		if got := m.host.Stats().CommandsApplied; got < writes {
			t.Errorf("member %d applied %d commands, want at least %d", id, got, writes)
		}
	}
	for mode, n := range reads {
		if n < 1 {
			t.Errorf("reads of mode %d: got %d, want at least 1", mode, n)
		}
	}
	if polls < 1 || lagged < 1 {
		t.Errorf("got %d polls and %d lag observations over 0, want a poll that found events waiting", polls, lagged)
	}
}
