package rafttest

import (
	"strings"
	"testing"

	"github.com/bifrost-go/bifrost/raft"
)

// The checker must catch the bugs it claims to. Each case plants one in
// the simulated cluster and expects some random schedule to fail with the
// named invariant.
func TestCheckerCatchesBugs(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(c *Cluster)
		want  string
	}{
		{
			// Every vote granted, whatever the voter's log or earlier vote.
			name: "votes-always-granted",
			setup: func(c *Cluster) {
				c.tamper = func(m *raft.Message) {
					if m.Type == raft.MsgVoteResp || m.Type == raft.MsgPreVoteResp {
						m.Reject = false
					}
				}
			},
			want: "election safety|leader completeness",
		},
		{
			// Followers claim to hold more than they do.
			name: "acks-beyond-log",
			setup: func(c *Cluster) {
				c.tamper = func(m *raft.Message) {
					if m.Type == raft.MsgAppResp && !m.Reject {
						// Within the leader's log: beyond it the core
						// ignores the message.
						m.Index = min(m.Index+3, c.Status(m.To).LastIndex)
					}
				}
			},
			want: "durable on only",
		},
		{
			// A follower accepts entries whose predecessor does not match.
			name: "log-matching-skipped",
			setup: func(c *Cluster) {
				c.tamper = func(m *raft.Message) {
					if m.Type == raft.MsgAppResp && m.Reject {
						m.Reject = false
					}
				}
			},
			want: "",
		},
		{
			// The application snapshots a state it never had.
			name:  "bad-snapshot",
			setup: func(c *Cluster) { c.badSnap = true },
			want:  "restored snapshot",
		},
		{
			// Entry data corrupted on the way to node 2.
			name: "corrupt-entries",
			setup: func(c *Cluster) {
				c.tamper = func(m *raft.Message) {
					if m.Type == raft.MsgApp && m.To == 2 && len(m.Entries) > 0 {
						m.Entries[0].Data = []byte("corrupt")
					}
				}
			},
			want: "log matching",
		},
		{
			// The driver sends votes and acknowledgements before syncing.
			name:  "speaks-before-persisting",
			setup: func(c *Cluster) { c.hasty = true },
			want:  "before persisting",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for seed := uint64(1); seed <= 300; seed++ {
				msg := runSeedWith(seed, 20, tc.setup)
				if msg == "" {
					continue
				}
				if !containsAny(msg, strings.Split(tc.want, "|")) {
					t.Fatalf("seed %d failed, but not with %q:\n%s", seed, tc.want, msg)
				}
				t.Logf("caught at seed %d: %s", seed, strings.SplitN(msg, "\n", 2)[0])
				return
			}
			t.Fatalf("no seed out of 300 caught the planted bug")
		})
	}
}

// A node that forgets its disk lets a stale node lead: the checker sees
// the committed entry missing from the new leader's log.
func TestCheckerCatchesAmnesia(t *testing.T) {
	msg := catch(func(tb TB) {
		c := NewCluster(tb, Options{Nodes: 3, Seed: 1})
		c.amnesia = true
		l := c.WaitLeader(3 * et)
		f := others(c, l)
		c.Isolate(f[1])
		c.One(c.Command(8), 2, 4*et)
		c.Crash(f[0])
		c.Restart(f[0]) // with an empty disk
		c.Crash(l)
		c.HealNetwork()
		c.Run(20 * et)
	})
	if !strings.Contains(msg, "leader completeness") {
		t.Fatalf("got %q, want a leader completeness violation", msg)
	}
}

// catch runs f with a TB whose Fatalf unwinds, and returns the failure.
func catch(f func(tb TB)) (msg string) {
	defer func() {
		switch r := recover().(type) {
		case nil:
		case violation:
			msg = r.msg
		default:
			panic(r)
		}
	}()
	f(seedT{})
	return ""
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
