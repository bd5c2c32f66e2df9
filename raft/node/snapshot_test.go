package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bifrost-go/bifrost/raft"
	"github.com/bifrost-go/bifrost/raft/wal"
)

// snapSM is a Snapshotter: the commands applied, in order, and the index
// of the last one. It fails the test if its applied index ever goes back.
type snapSM struct {
	t        *testing.T
	mu       sync.Mutex // protects the following
	applied  uint64
	cmds     []string
	restores int
}

func (s *snapSM) Apply(e raft.Entry) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e.Index != s.applied+1 {
		s.t.Errorf("applied %d after %d", e.Index, s.applied)
	}
	s.applied = e.Index
	if e.Type != raft.EntryNormal {
		return nil
	}
	s.cmds = append(s.cmds, string(e.Data))
	return e.Data
}

func (s *snapSM) Snapshot() ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return []byte(strconv.FormatUint(s.applied, 10) + "\n" + strings.Join(s.cmds, "\n")), nil
}

func (s *snapSM) Restore(meta raft.SnapshotMeta, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	head, rest, _ := strings.Cut(string(data), "\n")
	index, err := strconv.ParseUint(head, 10, 64)
	if err != nil {
		return err
	}
	if index < s.applied {
		s.t.Errorf("restore of %d after applying %d", index, s.applied)
	}
	if index != meta.Index || meta.Term == 0 {
		s.t.Errorf("restore of the state at %d with meta index %d term %d", index, meta.Index, meta.Term)
	}
	s.applied, s.cmds, s.restores = index, nil, s.restores+1
	if rest != "" {
		s.cmds = strings.Split(rest, "\n")
	}
	return nil
}

func (s *snapSM) state() (uint64, []string, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.applied, slices.Clone(s.cmds), s.restores
}

// snapCluster is a testCluster whose nodes run snapSMs and snapshot every
// `every` entries, in chunks of 16 bytes.
type snapCluster struct {
	*testCluster
	sms map[uint64]*snapSM
}

func newSnapCluster(t *testing.T, size, every int) *snapCluster {
	sc := &snapCluster{sms: map[uint64]*snapSM{}}
	sc.testCluster = newTestClusterWith(t, size, func(cfg *Config) {
		sc.sms[cfg.Raft.ID] = &snapSM{t: t}
		cfg.StateMachine = sc.sms[cfg.Raft.ID]
		cfg.SnapshotEntries = every
		cfg.SnapshotChunkBytes = 16
		cfg.Raft.SnapshotCatchUpEntries = -1
	})
	return sc
}

// proposeN proposes n commands on lead, one at a time.
func (sc *snapCluster) proposeN(lead uint64, prefix string, n int) {
	sc.t.Helper()
	for i := range n {
		if _, _, err := sc.nodes[lead].Propose(sc.t.Context(), fmt.Appendf(nil, "%s%d", prefix, i)); err != nil {
			sc.t.Fatalf("propose: %v", err)
		}
	}
}

// waitSame advances fake time until every running node applied what
// lead applied, and fails after limit.
func (sc *snapCluster) waitSame(lead uint64, limit time.Duration) {
	sc.t.Helper()
	for start := time.Now(); time.Since(start) <= limit; time.Sleep(testTick) {
		synctest.Wait()
		want, wantCmds, _ := sc.sms[lead].state()
		same := true
		for id := range sc.nodes {
			got, cmds, _ := sc.sms[id].state()
			same = same && got == want && slices.Equal(cmds, wantCmds)
		}
		if same {
			return
		}
	}
	for id := range sc.nodes {
		a, cmds, _ := sc.sms[id].state()
		sc.t.Logf("node %d applied %d, %d commands", id, a, len(cmds))
	}
	sc.t.Fatalf("nodes did not converge in %v", limit)
}

func TestNodeFollowerCatchesUpBySnapshot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sc := newSnapCluster(t, 3, 10)
		lead := sc.waitLeader(time.Second)
		behind := lead%3 + 1
		sc.stop(behind)
		sc.proposeN(lead, "x", 35)
		// Snapshots are written beside the driver: wait for the one at 30.
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		if err := sc.nodes[lead].WaitFor(ctx, func(st Status) bool { return st.Snapshot >= 30 }); err != nil {
			t.Fatalf("leader compacted through %d, want at least 30: %v", sc.nodes[lead].Status().Snapshot, err)
		}
		sc.start(behind)
		sc.waitSame(lead, 2*time.Second)
		if _, _, restores := sc.sms[behind].state(); restores != 1 {
			t.Errorf("restarted follower restored %d snapshots, want 1", restores)
		}
		if n := sc.nw.count(raft.MsgSnap); n < 2 {
			t.Errorf("%d MsgSnap sent, want the snapshot in several chunks", n)
		}
		sc.proposeN(lead, "y", 3)
		sc.waitSame(lead, time.Second)
	})
}

func TestNodeRestartFromSnapshotAndLog(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sc := newSnapCluster(t, 3, 10)
		lead := sc.waitLeader(time.Second)
		sc.proposeN(lead, "x", 25)
		sc.waitSame(lead, time.Second)
		_, want, _ := sc.sms[lead].state()
		for _, id := range sc.voters {
			sc.stop(id)
		}
		for _, id := range sc.voters {
			if c := sc.storage[id].(Compacter).Compacted(); c < 10 {
				t.Errorf("node %d storage compacted through %d, want at least 10", id, c)
			}
			sc.start(id)
			if applied, _, restores := sc.sms[id].state(); restores != 1 || applied < 10 {
				t.Errorf("node %d restarted with %d restores at %d", id, restores, applied)
			}
		}
		lead = sc.waitLeader(2 * time.Second)
		sc.proposeN(lead, "y", 1)
		sc.waitSame(lead, time.Second)
		if _, got, _ := sc.sms[lead].state(); !slices.Equal(got[:len(want)], want) || len(got) != len(want)+1 {
			t.Errorf("after restart the state is %v, want %v and one more", got, want)
		}
	})
}

func TestNodeLogBoundedUnderLoad(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const every = 20
		sc := newSnapCluster(t, 3, every)
		lead := sc.waitLeader(time.Second)
		for i := range 300 {
			if _, _, err := sc.nodes[lead].Propose(t.Context(), []byte("c"+strconv.Itoa(i))); err != nil {
				t.Fatal(err)
			}
			if i%10 != 0 {
				continue
			}
			synctest.Wait() // every driver idle: status and storage agree
			for id, n := range sc.nodes {
				st := n.Status()
				if live := st.LastIndex - st.Snapshot; live > 2*every+5 {
					t.Fatalf("node %d holds %d entries (%+v), want at most about %d", id, live, st, every)
				}
				ms := sc.storage[id].(*MemoryStorage)
				ms.mu.Lock()
				stored := int(ms.last - ms.offset)
				ms.mu.Unlock()
				if stored > 2*every+5 {
					t.Fatalf("node %d storage holds %d entries", id, stored)
				}
			}
		}
		sc.waitSame(lead, time.Second)
	})
}

func TestNodeRestartFromSnapshotOnWAL(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		open := func() (*wal.WAL, *snapSM, *Node) {
			w, err := wal.Open(wal.Config{Dir: filepath.Join(dir, "wal")})
			if err != nil {
				t.Fatal(err)
			}
			sm := &snapSM{t: t}
			n, err := Start(Config{Raft: raft.Config{ID: 1, Voters: []uint64{1}}, Storage: NewWALStorage(w),
				Transport: newMemNetwork().transport(1), StateMachine: sm, TickInterval: testTick,
				SnapshotDir: filepath.Join(dir, "snap"), SnapshotEntries: 10})
			if err != nil {
				t.Fatal(err)
			}
			return w, sm, n
		}
		w, sm, n := open()
		if err := n.WaitFor(t.Context(), func(st Status) bool { return st.Role == raft.RoleLeader }); err != nil {
			t.Fatal(err)
		}
		for i := range 45 {
			if _, _, err := n.Propose(t.Context(), []byte("c"+strconv.Itoa(i))); err != nil {
				t.Fatal(err)
			}
		}
		// Snapshots are written in the background, one at a time, and a
		// due one is taken when the write before it ends, so where they
		// fall drifts; but once the writes are done, the last one lies
		// fewer than 10 entries behind the 46 applied, and compacted the
		// WAL.
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		if err := n.WaitFor(ctx, func(st Status) bool { return st.Snapshot >= 37 }); err != nil {
			t.Fatalf("waiting for a snapshot at 37 or later: %v (status %+v)", err, n.Status())
		}
		snap := n.Status().Snapshot
		applied, want, _ := sm.state()
		if err := n.Stop(); err != nil {
			t.Fatal(err)
		}
		w.Close()
		w, sm, n = open()
		defer w.Close()
		defer n.Stop()
		if w.Recovered().Compacted < snap {
			t.Errorf("WAL compacted through %d, want at least the snapshot at %d", w.Recovered().Compacted, snap)
		}
		if err := n.WaitFor(t.Context(), func(st Status) bool { return st.Applied >= applied }); err != nil {
			t.Fatal(err)
		}
		if got, cmds, restores := sm.state(); got != applied || !slices.Equal(cmds, want) || restores != 1 {
			t.Errorf("after restart: applied %d with %d restores, state %v; want %d, %v", got, restores, cmds, applied, want)
		}
		names, _ := os.ReadDir(filepath.Join(dir, "snap"))
		if len(names) != 1 {
			t.Errorf("snapshot dir holds %d files, want the newest snapshot only", len(names))
		}
	})
}

func TestSnapshotNeedsAStore(t *testing.T) {
	dir := t.TempDir()
	w, err := wal.Open(wal.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	_, err = Start(Config{Raft: raft.Config{ID: 1, Voters: []uint64{1}}, Storage: NewWALStorage(w),
		Transport: newMemNetwork().transport(1), StateMachine: &snapSM{t: t}})
	if !errors.Is(err, ErrBadConfig) {
		t.Errorf("Start with a Snapshotter on a WAL and no SnapshotDir: %v, want ErrBadConfig", err)
	}
}

func TestCompactedLogWithoutSnapshotRefused(t *testing.T) {
	st := NewMemoryStorage()
	st.Save(raft.HardState{Term: 1, Commit: 5}, []raft.Entry{{Index: 1, Term: 1}, {Index: 2, Term: 1}, {Index: 3, Term: 1}})
	st.Compact(2)
	_, err := Start(Config{Raft: raft.Config{ID: 1, Voters: []uint64{1}}, Storage: st,
		Transport: newMemNetwork().transport(1), StateMachine: &recorder{}})
	if err == nil || !strings.Contains(err.Error(), "snapshot") {
		t.Errorf("Start on a compacted log without its snapshot: %v, want an error", err)
	}
}

func TestFileSnapshotStore(t *testing.T) {
	dir := t.TempDir()
	s, err := newFileSnapshotStore(nil, dir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if meta, data, err := s.LoadSnapshot(); err != nil || !meta.IsZero() || data != nil {
		t.Fatalf("empty store: %v %q %v", meta, data, err)
	}
	for i := uint64(1); i <= 3; i++ {
		if err := s.SaveSnapshot(raft.SnapshotMeta{Index: 10 * i, Term: i}, []byte(strings.Repeat("s", int(i)))); err != nil {
			t.Fatal(err)
		}
	}
	// A torn temporary file from a crash is ignored.
	os.WriteFile(filepath.Join(dir, snapshotName(raft.SnapshotMeta{Index: 99, Term: 9})+snapTempSuffix), []byte("torn"), 0o644)
	meta, data, err := s.LoadSnapshot()
	if err != nil || !meta.Same(raft.SnapshotMeta{Index: 30, Term: 3}) || string(data) != "sss" {
		t.Fatalf("LoadSnapshot = %v %q %v, want the newest", meta, data, err)
	}
	if names, _ := s.names(); len(names) != 2 {
		t.Errorf("files %v, want the newest snapshot and the torn temporary", names)
	}
	// A corrupt newest file is skipped for an older good one.
	good := filepath.Join(dir, snapshotName(meta))
	b, _ := os.ReadFile(good)
	os.WriteFile(filepath.Join(dir, snapshotName(raft.SnapshotMeta{Index: 40, Term: 3})), append(b[:len(b)-1:len(b)-1], 'x'), 0o644)
	if meta, _, _ := s.LoadSnapshot(); meta.Index != 30 {
		t.Errorf("LoadSnapshot with a corrupt newest file = %v, want 30", meta)
	}
}

func TestDecodeSnapshotFileRejects(t *testing.T) {
	meta := raft.SnapshotMeta{Index: 7, Term: 2}
	good := append(encodeSnapshotHeader(meta, []byte("state")), "state"...)
	if m, d, err := decodeSnapshotFile(good); err != nil || !m.Same(meta) || string(d) != "state" {
		t.Fatalf("good file: %v %q %v", m, d, err)
	}
	for name, b := range map[string][]byte{
		"empty":      nil,
		"short":      good[:snapHeaderSize-1],
		"magic":      flipByte(good, 0),
		"header crc": flipByte(good, 10),
		"data crc":   flipByte(good, snapHeaderSize+1),
		"truncated":  good[:len(good)-1],
		"longer":     append(bytes.Clone(good), 0),
		"index 0":    encodeSnapshotHeader(raft.SnapshotMeta{}, nil),
	} {
		if _, _, err := decodeSnapshotFile(b); !errors.Is(err, ErrBadSnapshotFile) {
			t.Errorf("%s: %v, want ErrBadSnapshotFile", name, err)
		}
	}
}

func flipByte(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 0x40
	return c
}

func FuzzDecodeSnapshotFile(f *testing.F) {
	f.Add(append(encodeSnapshotHeader(raft.SnapshotMeta{Index: 7, Term: 2}, []byte("state")), "state"...))
	f.Add(encodeSnapshotHeader(raft.SnapshotMeta{Index: 1, Term: 1}, nil))
	f.Add(append(encodeSnapshotHeader(raft.SnapshotMeta{Index: 9, Term: 3, Voters: []uint64{1, 2, 4}, Learners: []uint64{5},
		Addrs: map[uint64]string{4: "10.0.0.4:7000", 5: "n5:1"}}, []byte("s")), 's'))
	f.Add([]byte(snapMagic))
	f.Fuzz(func(t *testing.T, b []byte) {
		meta, data, err := decodeSnapshotFile(b)
		if err != nil {
			return
		}
		again := append(encodeSnapshotHeader(meta, data), data...)
		if !bytes.Equal(again, b) {
			t.Fatalf("%x decodes to %v, %q, which encodes as %x", b, meta, data, again)
		}
	})
}

// TestRPCRestartNeedsSnapshot runs a group on loopback TCP with WALs and
// snapshot directories: a member stopped while the others compact their
// logs past what it holds restarts, catches up by the snapshot, and
// restarts once more from its own snapshot.
func TestRPCRestartNeedsSnapshot(t *testing.T) {
	g, sm := newSnapshottingGroup(t, func(cfg *Config) {
		cfg.SnapshotEntries = 20
		cfg.SnapshotChunkBytes = 64
		cfg.Raft.SnapshotCatchUpEntries = 5
	})
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	lead := g.waitLeader(ctx)
	behind := lead.id%3 + 1
	g.stop(behind)
	for i := range 50 {
		g.proposeOnLeader(ctx, []byte("c"+strconv.Itoa(i)))
	}
	// Snapshots are written beside the driver: wait for the one at 40.
	lead = g.waitLeader(ctx) // leadership may have moved on a busy machine
	if err := lead.node.WaitFor(ctx, func(st Status) bool { return st.Snapshot >= 40 }); err != nil {
		t.Fatalf("leader compacted through %d, want at least 40: %v", lead.node.Status().Snapshot, err)
	}
	applied := lead.node.Status().Applied
	for round := range 2 {
		g.start(behind, nil)
		m := g.members[behind]
		if err := m.node.WaitFor(ctx, func(st Status) bool { return st.Applied >= applied }); err != nil {
			t.Fatalf("round %d: restarted member reached %+v, want applied %d: %v", round, m.node.Status(), applied, err)
		}
		sm := sm(behind)
		// A leader change during the install may bring a second,
		// newer snapshot; the state must come out the same.
		// A retry after a leader change may have committed a command
		// twice, so at least 50.
		if _, cmds, restores := sm.state(); restores < 1 || len(cmds) < 50 {
			t.Errorf("round %d: %d restores, %d commands; want at least 1 and 50", round, restores, len(cmds))
		} else if restores > 1 {
			t.Logf("round %d: %d restores", round, restores)
		}
		g.stop(behind)
	}
}

// newSnapshottingGroup starts a 3-member loopback group whose members
// snapshot into their own directories, tweaked by tweak; sm returns the
// state machine member id runs now.
func newSnapshottingGroup(t *testing.T, tweak func(*Config)) (g *loopbackGroup, sm func(id uint64) *snapSM) {
	base := t.TempDir()
	var mu sync.Mutex // protects sms
	sms := map[uint64]*snapSM{}
	g = newLoopbackGroupWith(t, 3, func(cfg *Config) {
		mu.Lock()
		defer mu.Unlock()
		sms[cfg.Raft.ID] = &snapSM{t: t}
		cfg.StateMachine = sms[cfg.Raft.ID]
		cfg.SnapshotDir = filepath.Join(base, strconv.FormatUint(cfg.Raft.ID, 10))
		tweak(cfg)
	})
	return g, func(id uint64) *snapSM {
		mu.Lock()
		defer mu.Unlock()
		return sms[id]
	}
}

// A member added at run time is known to the others by the address its
// ConfAddLearner entry carried. Once every log is compacted past that
// entry, a member restarted with its static peer list learns the address
// from its snapshot, or it could never reach the new member as leader.
//
// On a busy machine leadership may move at any step (a heartbeat late by
// an election timeout is enough), so the test does not count on the
// leader it started with: each step waits for, or retries on, whoever
// leads, until the restarted member leads and reaches the learner.
func TestRPCRestartLearnsAddressesFromSnapshot(t *testing.T) {
	g, _ := newSnapshottingGroup(t, func(cfg *Config) {
		cfg.SnapshotEntries = 10
		cfg.Raft.PromoteLag = -1 // node 4 stays a learner: the voters' quorum does not need it
	})
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	g.addLearnerOnLeader(ctx, 4)
	added := g.waitLeader(ctx).node.Status().Applied
	for i := range 30 {
		g.proposeOnLeader(ctx, []byte("c"+strconv.Itoa(i)))
	}
	// Restart a voter once its own log is compacted past the change.
	f := g.members[1]
	if err := f.node.WaitFor(ctx, func(st Status) bool { return st.Snapshot > added+5 }); err != nil {
		t.Fatalf("member %d did not compact past the change at %d: %+v", f.id, added, f.node.Status())
	}
	g.stop(f.id)
	g.start(f.id, nil)
	f = g.members[f.id]
	if addr := f.transport.peerAddr(4); addr != g.addrs[4] {
		t.Fatalf("restarted member knows learner 4 at %q, want %q from its snapshot", addr, g.addrs[4])
	}
	for {
		g.transferTo(ctx, f.id)
		index, _, err := f.node.Propose(ctx, []byte("from the restarted leader"))
		if leadershipMoved(err) {
			continue // leadership moved on before the command committed: again
		}
		if err != nil {
			t.Fatalf("propose on the restarted member: %v", err)
		}
		if err := g.members[4].node.WaitFor(ctx, func(st Status) bool { return st.Applied >= index }); err != nil {
			t.Fatalf("learner 4 never got index %d from leader %d: %+v", index, f.id, g.members[4].node.Status())
		}
		return
	}
}

// leadershipMoved reports whether err says only that leadership moved
// under the call, which a caller may retry on the new leader.
func leadershipMoved(err error) bool {
	return errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrProposalDropped) ||
		errors.Is(err, ErrLeadershipLost) || errors.Is(err, ErrTransferFailed)
}

// proposeOnLeader proposes cmd on whoever leads until one commits it,
// and returns its index. A retry after ErrLeadershipLost may commit cmd
// twice: callers propose commands that may repeat.
func (g *loopbackGroup) proposeOnLeader(ctx context.Context, cmd []byte) uint64 {
	g.t.Helper()
	for {
		index, _, err := g.waitLeader(ctx).node.Propose(ctx, cmd)
		if err == nil {
			return index
		}
		if !leadershipMoved(err) {
			g.t.Fatalf("propose %q: %v", cmd, err)
		}
	}
}

// addLearnerOnLeader starts member id and has whoever leads add it as a
// learner, retrying while leadership moves or a new leader has not yet
// committed an entry of its term (ErrConfChangeInProgress).
func (g *loopbackGroup) addLearnerOnLeader(ctx context.Context, id uint64) {
	g.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		g.t.Fatal(err)
	}
	g.addrs[id], g.dirs[id] = ln.Addr().String(), g.t.TempDir()
	g.start(id, ln)
	for {
		lead := g.waitLeaderOf(ctx, g.voters) // id knows of none until added
		if _, learners, err := lead.node.Configuration(ctx); err == nil && slices.Contains(learners, id) {
			return // an earlier try reached the log
		}
		err := lead.node.AddLearner(ctx, id, g.addrs[id])
		if err == nil {
			return
		}
		if !leadershipMoved(err) && !errors.Is(err, raft.ErrConfChangeInProgress) {
			g.t.Fatalf("AddLearner(%d): %v", id, err)
		}
		// What is in progress is in the leader's log by now: it ends
		// once the leader applied that far (waiting for the applied
		// index to move instead could wait forever on an idle group).
		last := lead.node.Status().LastIndex
		err = lead.node.WaitFor(ctx, func(st Status) bool { return st.Applied >= last || st.Role != raft.RoleLeader })
		if err != nil {
			g.t.Fatalf("AddLearner(%d): %v", id, err)
		}
	}
}

// transferTo hands leadership to member id, through whoever leads, and
// returns once all members follow it.
func (g *loopbackGroup) transferTo(ctx context.Context, id uint64) {
	g.t.Helper()
	for {
		lead := g.waitLeader(ctx)
		if lead.id == id {
			return
		}
		if err := lead.node.TransferLeadership(ctx, id); err != nil && !leadershipMoved(err) {
			g.t.Fatalf("transfer from %d to %d: %v", lead.id, id, err)
		}
	}
}

func TestLogAfterSnapshot(t *testing.T) {
	snap := raft.SnapshotMeta{Index: 5, Term: 3}
	ents := func(first uint64, terms ...uint64) []raft.Entry {
		var out []raft.Entry
		for i, term := range terms {
			out = append(out, raft.Entry{Index: first + uint64(i), Term: term})
		}
		return out
	}
	tests := []struct {
		name      string
		entries   []raft.Entry
		compacted uint64
		want      int // entries kept; -1 for an error
	}{
		{"none", nil, 0, 0},
		{"after", ents(6, 3, 4), 5, 2},
		{"covered prefix left by a crash", ents(1, 1, 1, 2, 3, 3, 3, 4), 0, 2},
		{"other history at the index", ents(4, 2, 2, 2, 2), 3, 0},
		{"other history after it", ents(6, 2, 2), 5, 0},
		{"gap", ents(8, 3), 7, -1},
		{"compacted past the snapshot", nil, 9, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &snapshots{meta: snap}
			got, err := s.logAfter(tt.entries, tt.compacted)
			if tt.want < 0 {
				if err == nil {
					t.Fatalf("got %v, want an error", got)
				}
				return
			}
			if err != nil || len(got) != tt.want || len(got) > 0 && got[0].Index != snap.Index+1 {
				t.Fatalf("got %v, %v; want %d entries from %d", got, err, tt.want, snap.Index+1)
			}
		})
	}
}

// slowSnapshotStore is a MemoryStorage whose snapshot writes wait until
// release is closed, like a large state written to a slow disk.
type slowSnapshotStore struct {
	*MemoryStorage
	release chan struct{}
}

// newSlowSnapshotCluster starts n nodes that take a snapshot every 5
// entries on a slowSnapshotStore; their writes wait until releaseAll.
func newSlowSnapshotCluster(t *testing.T, n int) (c *testCluster, releaseAll func()) {
	release := make(chan struct{})
	var once sync.Once
	releaseAll = func() { once.Do(func() { close(release) }) }
	c = newTestClusterWith(t, n, func(cfg *Config) {
		cfg.Storage = slowSnapshotStore{cfg.Storage.(*MemoryStorage), release}
		cfg.StateMachine = &snapSM{t: t}
		cfg.SnapshotEntries = 5
	})
	t.Cleanup(releaseAll) // before the cluster stops, should the test fail early
	return c, releaseAll
}

func (s slowSnapshotStore) SaveSnapshot(meta raft.SnapshotMeta, data []byte) error {
	<-s.release
	return s.MemoryStorage.SaveSnapshot(meta, data)
}

// While the leader writes a snapshot, which for a large state takes
// longer than an election timeout, it goes on heartbeating and
// committing: the write runs beside the driver, and the log is compacted
// once it is durable. Written on the driver goroutine, the snapshot cost
// the group its leader.
func TestSnapshotWrittenBesideTheDriver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, releaseAll := newSlowSnapshotCluster(t, 3)
		lead := c.waitLeader(time.Second)
		term := c.nodes[lead].Status().Term
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		for i := range 20 {
			if _, _, err := c.nodes[lead].Propose(ctx, fmt.Appendf(nil, "c%d", i)); err != nil {
				t.Fatalf("propose %d while a snapshot is being written: %v", i, err)
			}
		}
		time.Sleep(20 * time.Duration(raft.DefaultElectionTicks) * testTick)
		synctest.Wait()
		if st := c.nodes[lead].Status(); st.Role != raft.RoleLeader || st.Term != term || st.Snapshot != 0 {
			t.Fatalf("leader %d while its snapshot is written: %+v, want it leading term %d, nothing compacted yet", lead, st, term)
		}
		releaseAll()
		time.Sleep(5 * testTick)
		synctest.Wait()
		if st := c.nodes[lead].Status(); st.Snapshot < 5 {
			t.Fatalf("leader compacted through %d once the write finished, want at least 5", st.Snapshot)
		}
	})
}

// A lone voter has no heartbeats to wake its driver: the commands applied
// while a snapshot was written make the next one due, and it must be taken
// when the write finishes, not at a later command that may never come.
func TestDueSnapshotTakenWhenTheWriteFinishes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, releaseAll := newSlowSnapshotCluster(t, 1)
		lead := c.waitLeader(time.Second)
		for i := range 20 {
			if _, _, err := c.nodes[lead].Propose(t.Context(), fmt.Appendf(nil, "c%d", i)); err != nil {
				t.Fatal(err)
			}
		}
		releaseAll()
		time.Sleep(5 * testTick)
		synctest.Wait()
		if st := c.nodes[lead].Status(); st.Snapshot != st.Applied {
			t.Fatalf("once the write finished the node compacted through %d of %d applied, want all", st.Snapshot, st.Applied)
		}
	})
}
