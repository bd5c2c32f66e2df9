package bifrost

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bifrost-go/bifrost/raft/node"
)

func TestParseMemberFile(t *testing.T) {
	good := `{"group":"g","id":4,"voters":[1,2,3],"learners":[4],"addrs":{"1":"a:1","4":"d:4"},"joining":true}`
	m, err := parseMemberFile([]byte(good))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	if m.ID != 4 || !slices.Equal(m.Voters, []uint64{1, 2, 3}) || m.Addrs[4] != "d:4" || !m.Joining {
		t.Errorf("parsed %+v", m)
	}
	for _, bad := range []string{
		``, `{`, `[]`, `{"group":"g","id":4,"voters":[1],"addrs":{"4":"d:4"}}`, // 4 is no member
		`{"group":"g","id":1,"voters":[],"addrs":{"1":"a:1"}}`,
		`{"group":"g","id":1,"voters":[1,1],"addrs":{"1":"a:1"}}`,
		`{"group":"g","id":1,"voters":[1],"learners":[0],"addrs":{"1":"a:1"}}`,
		`{"group":"g","id":0,"voters":[1],"addrs":{"1":"a:1"}}`,
		`{"group":"g","id":1,"voters":[1],"addrs":{}}`,
		`{"group":"g","id":1,"voters":[1],"addrs":{"1":"a:1"},"colour":"red"}`,
		`{"group":"g","id":1,"voters":[1],"addrs":{"1":"a:1"}} {}`,
		`{"group":"g","id":1,"voters":[1],"addrs":{"x":"a:1"}}`,
	} {
		if m, err := parseMemberFile([]byte(bad)); err == nil {
			t.Errorf("parse %q = %+v, want an error", bad, m)
		}
	}
}

// FuzzMemberFile: whatever a member file holds, parsing it gives a clear
// error or a file that checks out and writes back the same.
func FuzzMemberFile(f *testing.F) {
	f.Add([]byte(`{"group":"g","id":4,"voters":[1,2,3],"learners":[4],"addrs":{"1":"a:1","4":"d:4"},"joining":true}`))
	f.Add([]byte(`{"group":"g","id":1,"voters":[1],"addrs":{"1":"a:1"},"left":true}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseMemberFile(b)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "member file: ") {
				t.Fatalf("error %q does not say what it was reading", err)
			}
			return
		}
		dir := t.TempDir()
		if err := writeMemberFile(node.OSFS(), dir, m); err != nil {
			t.Fatal(err)
		}
		again, err := readMemberFile(node.OSFS(), dir)
		if err != nil {
			t.Fatalf("a file that parsed does not parse once written: %v", err)
		}
		if fmt.Sprint(again) != fmt.Sprint(m) {
			t.Fatalf("written %+v, read back %+v", m, again)
		}
	})
}

// waitVoter waits until n counts id among the voters (or, if not voter,
// among no members at all).
func waitVoter(ctx context.Context, t *testing.T, n *Node, id uint64, voter bool) {
	t.Helper()
	err := n.Raft().WaitFor(ctx, func(node.Status) bool {
		voters, learners, err := n.Raft().Configuration(ctx)
		if err != nil {
			return false
		}
		if voter {
			return slices.Contains(voters, id)
		}
		return !slices.Contains(voters, id) && !slices.Contains(learners, id)
	})
	if err != nil {
		voters, learners, _ := n.Raft().Configuration(context.Background())
		t.Fatalf("node %d: voters %v, learners %v; waiting for %d voter=%v: %v", n.cfg.ID, voters, learners, id, voter, err)
	}
}

// A node that joins a running group through a follower catches up by
// snapshot (the leader keeps no log before its snapshot), becomes a voter
// and serves linearizable reads; restarted from its directory with no
// Join and no Peers it is the same member. A member that leaves is no
// longer counted, the group goes on without it, and its directory will
// not start again.
func TestJoinCatchesUpBySnapshotAndLeave(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	nodes, _ := startClusterWith(t, 3, func(cfg *Config) {
		cfg.SnapshotEntries = 20
		cfg.Raft.SnapshotCatchUpEntries = -1
	})
	c, pool, err := nodes[0].NewClient()
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	defer c.Close(ctx)
	const keys = 60
	for i := range keys {
		if _, _, err := KV.Insert(ctx, c, fmt.Sprint("k", i), []byte(fmt.Sprint("v", i))); err != nil {
			t.Fatal(err)
		}
	}
	lead := nodes[0].Raft().Status().Lead
	leader := nodes[lead-1]
	if err := leader.Raft().WaitFor(ctx, func(st node.Status) bool { return st.Snapshot >= keys }); err != nil {
		t.Fatalf("the leader took no snapshot: %v", err)
	}
	follower := nodes[lead%3]

	dir := t.TempDir()
	cfg4 := Config{ID: 4, Listen: "127.0.0.1:0", Dir: dir, Join: follower.Addr(), TickInterval: 10 * time.Millisecond}
	n4, err := Start(ctx, cfg4)
	if err != nil {
		t.Fatalf("join: %v", err)
	}
	defer func() { n4.Close() }()
	waitVoter(ctx, t, leader, 4, true)
	if st := n4.Raft().Status(); st.Snapshot == 0 {
		t.Errorf("node 4 holds no snapshot: %+v", st)
	}
	c4, pool4, err := n4.NewClient()
	if err != nil {
		t.Fatal(err)
	}
	defer pool4.Close()
	defer c4.Close(ctx)
	// The first key's entry is long compacted: node 4 has it from the
	// snapshot.
	if err := n4.Raft().WaitFor(ctx, func(st node.Status) bool { return st.Applied >= leader.Raft().Status().Snapshot }); err != nil {
		t.Fatal(err)
	}
	if v, ok, err := KV.Get(ctx, c4, "k0"); err != nil || !ok || string(v) != "v0" {
		t.Errorf("k0 through node 4: %q %v %v", v, ok, err)
	}

	// Restart node 4 from its directory alone, at the address the group
	// knows it by.
	cfg4.Join, cfg4.Listen = "", n4.Addr()
	n4.Close()
	if n4, err = Start(ctx, cfg4); err != nil {
		t.Fatalf("restart the joined node: %v", err)
	}
	if _, _, err := KV.Insert(ctx, c, "after-restart", []byte("x")); err != nil {
		t.Fatal(err)
	}
	want := leader.Raft().Status().Commit
	if err := n4.Raft().WaitFor(ctx, func(st node.Status) bool { return st.Applied >= want }); err != nil {
		t.Fatalf("restarted node 4 does not follow: %v", err)
	}

	// One of the three leaves: the leader, which hands over first.
	if err := leader.Leave(ctx); err != nil {
		t.Fatalf("leave: %v", err)
	}
	select {
	case <-leader.Left():
	default:
		t.Error("Left not closed after Leave")
	}
	rest := slices.DeleteFunc(slices.Clone(nodes), func(n *Node) bool { return n == leader })
	waitVoter(ctx, t, rest[0], lead, false)
	leader.Close()
	if _, _, err := KV.Insert(ctx, c4, "after-leave", []byte("y")); err != nil {
		t.Fatalf("write after one left: %v", err)
	}
	if v, ok, err := KV.Get(ctx, c4, "after-leave"); err != nil || !ok || string(v) != "y" {
		t.Errorf("read after one left: %q %v %v", v, ok, err)
	}
	if voters, _, err := n4.Raft().Configuration(ctx); err != nil || len(voters) != 3 || !slices.Contains(voters, 4) {
		t.Errorf("voters after the leave: %v %v", voters, err)
	}
	again := Config{ID: lead, Listen: "127.0.0.1:0", Dir: leader.cfg.Dir, TickInterval: 10 * time.Millisecond}
	if n, err := Start(ctx, again); !errors.Is(err, ErrLeft) {
		t.Errorf("start a member that left: %v, want ErrLeft", err)
		if n != nil {
			n.Close()
		}
	}
}

// A join names what is wrong: an id the group has, a group the member
// asked does not serve.
func TestJoinRefusals(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	nodes, _ := startCluster(t, 3)
	if err := nodes[0].Raft().WaitFor(ctx, func(st node.Status) bool { return st.Lead != 0 }); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		cfg  Config
		want string
	}{
		{Config{ID: 2, Listen: "127.0.0.1:0", Join: nodes[0].Addr()}, "member of group"},
		{Config{ID: 9, Listen: "127.0.0.1:0", Join: nodes[0].Addr(), Group: "other"}, `no group "other"`},
		{Config{ID: 9, Listen: "127.0.0.1:0", Join: nodes[0].Addr(), Peers: map[uint64]string{9: ""}}, "give one"},
	} {
		n, err := Start(ctx, tt.cfg)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Start(%+v) = %v, want an error naming %q", tt.cfg, err, tt.want)
		}
		if n != nil {
			n.Close()
		}
	}
	// A directory's member file belongs to its member.
	dir := nodes[0].cfg.Dir
	cfg := Config{ID: 7, Listen: "127.0.0.1:0", Dir: dir}
	if n, err := Start(ctx, cfg); err == nil || !strings.Contains(err.Error(), "belongs to member 1") {
		t.Errorf("start member 7 on member 1's directory: %v", err)
		if n != nil {
			n.Close()
		}
	}
	// And a directory with none needs Peers or Join.
	empty := t.TempDir()
	if n, err := Start(ctx, Config{ID: 1, Listen: "127.0.0.1:0", Dir: empty}); err == nil || !strings.Contains(err.Error(), "Peers") {
		t.Errorf("start on an empty directory with no Peers: %v", err)
		if n != nil {
			n.Close()
		}
	}
	if _, err := os.Stat(filepath.Join(empty, memberFileName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a start that failed left a member file: %v", err)
	}
}
