package raft

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

// This file tests compaction and InstallSnapshot with a small driver that
// keeps snapshots: each node's application is the list of commands it
// applied, and its snapshot is that list joined by newlines.

// snapNode is one node with its durable state and its application.
type snapNode struct {
	core     *Core
	hs       HardState
	snap     SnapshotMeta
	snapData []byte
	kept     map[uint64][]byte // every snapshot taken or received, by index
	ents     []Entry           // durable entries after snap.Index
	state    []string          // the application: commands applied, in order
	applied  uint64
	recv     []byte // chunks of an incoming snapshot
	pending  *Ready // a Ready taken but not yet persisted (slowRestore)
	restores int
}

type snapCluster struct {
	t     *testing.T
	ids   []uint64
	nodes map[uint64]*snapNode
	down  map[uint64]bool
	queue []Message
	drop  func(Message) bool // nil drops nothing
	dup   func(Message) bool // nil duplicates nothing
	sent  []Message          // every MsgSnap and MsgSnapResp sent, filled
	chunk int                // snapshot chunk size in bytes
	// catchUp is every node's Config.SnapshotCatchUpEntries.
	catchUp int
	// slowRestore holds node id's Readies that install a snapshot after
	// their AfterPersist went out, as if the restore took long.
	slowRestore uint64
}

func newSnapCluster(t *testing.T, n int) *snapCluster { return newSnapClusterWith(t, n, 0) }

// keepOrNone is n, or -1 (keep none) for zero.
func keepOrNone(n int) int {
	if n == 0 {
		return -1
	}
	return n
}

func newSnapClusterWith(t *testing.T, n, catchUp int) *snapCluster {
	sc := &snapCluster{t: t, nodes: map[uint64]*snapNode{}, down: map[uint64]bool{}, chunk: 8, catchUp: catchUp}
	for i := uint64(1); i <= uint64(n); i++ {
		sc.ids = append(sc.ids, i)
		sc.nodes[i] = &snapNode{}
	}
	for _, id := range sc.ids {
		sc.start(id)
	}
	return sc
}

// start (re)starts node id from its durable state; the application comes
// back from the snapshot only, as after a process restart.
func (sc *snapCluster) start(id uint64) {
	sc.t.Helper()
	n := sc.nodes[id]
	n.state, n.applied, n.recv, n.pending = decodeState(n.snapData), n.snap.Index, nil, nil
	c, err := New(Config{ID: id, Voters: sc.ids, ElectionTicks: 10, Seed: 7, SnapshotCatchUpEntries: keepOrNone(sc.catchUp),
		HardState: n.hs, Snapshot: n.snap, Entries: slices.Clone(n.ents), Applied: n.applied})
	if err != nil {
		sc.t.Fatalf("New(%d): %v", id, err)
	}
	n.core = c
	sc.down[id] = false
}

func (sc *snapCluster) crash(id uint64) { sc.down[id] = true }

func encodeState(state []string) []byte { return []byte(strings.Join(state, "\n")) }

func decodeState(b []byte) []string {
	if len(b) == 0 {
		return nil
	}
	return strings.Split(string(b), "\n")
}

// compact takes a snapshot of node id's application at its applied index.
func (sc *snapCluster) compact(id uint64) {
	sc.t.Helper()
	n := sc.nodes[id]
	term, ok := n.core.log.term(n.applied)
	if !ok {
		sc.t.Fatalf("node %d: no term for applied %d", id, n.applied)
	}
	n.snap, n.snapData = SnapshotMeta{Index: n.applied, Term: term}, encodeState(n.state)
	n.keep()
	if err := n.core.Compact(n.applied); err != nil {
		sc.t.Fatalf("Compact(%d) on %d: %v", n.applied, id, err)
	}
	n.ents = slices.DeleteFunc(n.ents, func(e Entry) bool { return e.Index <= n.applied })
}

// process runs one Ready of node id through the driver loop.
func (sc *snapCluster) process(id uint64) bool {
	n := sc.nodes[id]
	if sc.down[id] {
		return false
	}
	if n.pending != nil {
		rd := *n.pending
		n.pending = nil
		sc.finish(id, rd)
		return true
	}
	if !n.core.HasReady() {
		return false
	}
	rd := n.core.Ready()
	sc.send(rd.Messages)
	sc.send(sc.fill(n, rd.SnapshotRequests))
	sc.store(n, rd)
	sc.send(rd.AfterPersist)
	if !rd.Snapshot.IsZero() && sc.slowRestore == id {
		n.pending = &rd
		return true
	}
	sc.finish(id, rd)
	return true
}

// keep remembers the node's newest snapshot, which a transfer may go on
// sending after a newer one.
func (n *snapNode) keep() {
	if n.kept == nil {
		n.kept = map[uint64][]byte{}
	}
	n.kept[n.snap.Index] = n.snapData
}

// fill completes the leader's MsgSnap requests from its snapshots.
func (sc *snapCluster) fill(n *snapNode, reqs []Message) []Message {
	var out []Message
	for _, m := range reqs {
		data, ok := n.kept[m.Index]
		if !ok || m.SnapOffset > uint64(len(data)) {
			sc.t.Fatalf("node %d asked for snapshot %d at %d, which it does not hold", n.core.id, m.Index, m.SnapOffset)
		}
		end := min(m.SnapOffset+uint64(sc.chunk), uint64(len(data)))
		m.SnapData = data[m.SnapOffset:end]
		m.SnapTotal, m.SnapChecksum = uint64(len(data)), SnapshotChecksum(data)
		m.SnapDone = end == m.SnapTotal
		out = append(out, m)
	}
	return out
}

// store makes the snapshot chunks, snapshot, hard state and entries of rd
// durable, in that order.
func (sc *snapCluster) store(n *snapNode, rd Ready) {
	for _, ch := range rd.SnapshotChunks {
		if ch.Offset == 0 {
			n.recv = nil
		}
		if ch.Offset != uint64(len(n.recv)) {
			sc.t.Fatalf("chunk at %d, holding %d bytes", ch.Offset, len(n.recv))
		}
		n.recv = append(n.recv, ch.Data...)
	}
	if m := rd.Snapshot; !m.IsZero() {
		if SnapshotChecksum(n.recv) != rd.SnapshotChunks[len(rd.SnapshotChunks)-1].Checksum {
			sc.t.Fatal("installed snapshot with a bad checksum")
		}
		keep := slices.ContainsFunc(n.ents, func(e Entry) bool { return e.Index == m.Index && e.Term == m.Term })
		n.ents = slices.DeleteFunc(n.ents, func(e Entry) bool { return !keep || e.Index <= m.Index })
		n.snap, n.snapData, n.recv = m, n.recv, nil
		n.keep()
	}
	if rd.HardStateChanged {
		n.hs = rd.HardState
	}
	if len(rd.Entries) > 0 {
		first := rd.Entries[0].Index
		n.ents = append(slices.DeleteFunc(n.ents, func(e Entry) bool { return e.Index >= first }), rd.Entries...)
	}
}

// finish restores rd's snapshot, applies its entries and advances.
func (sc *snapCluster) finish(id uint64, rd Ready) {
	n := sc.nodes[id]
	if m := rd.Snapshot; !m.IsZero() {
		if m.Index < n.applied {
			sc.t.Fatalf("node %d: snapshot %d would take applied %d back", id, m.Index, n.applied)
		}
		n.state, n.applied = decodeState(n.snapData), m.Index
		n.restores++
	}
	for _, e := range rd.Committed {
		if e.Index != n.applied+1 {
			sc.t.Fatalf("node %d applied index %d after %d", id, e.Index, n.applied)
		}
		if e.Type == EntryNormal {
			n.state = append(n.state, string(e.Data))
		}
		n.applied = e.Index
	}
	n.core.Advance(rd)
}

func (sc *snapCluster) send(ms []Message) {
	for _, m := range ms {
		if m.Type == MsgSnap || m.Type == MsgSnapResp {
			sc.sent = append(sc.sent, m)
		}
		if sc.drop == nil || !sc.drop(m) {
			sc.queue = append(sc.queue, m)
		}
		if sc.dup != nil && sc.dup(m) {
			sc.queue = append(sc.queue, m)
		}
	}
}

// settle processes and delivers until nothing moves.
func (sc *snapCluster) settle() {
	sc.t.Helper()
	for steps := 0; ; steps++ {
		if steps > 100000 {
			sc.t.Fatal("cluster does not settle")
		}
		moved := false
		for _, id := range sc.ids {
			moved = sc.process(id) || moved
		}
		if len(sc.queue) == 0 && !moved {
			return
		}
		sc.deliverOne()
	}
}

func (sc *snapCluster) deliverOne() {
	if len(sc.queue) == 0 {
		return
	}
	m := sc.queue[0]
	sc.queue = sc.queue[1:]
	if sc.down[m.To] {
		return
	}
	if err := sc.nodes[m.To].core.Step(m); err != nil {
		sc.t.Fatalf("Step(%+v): %v", m, err)
	}
}

func (sc *snapCluster) tick(n int) {
	for range n {
		for _, id := range sc.ids {
			if !sc.down[id] {
				sc.nodes[id].core.Tick()
			}
		}
		sc.settle()
	}
}

func (sc *snapCluster) elect(id uint64) {
	sc.t.Helper()
	sc.nodes[id].core.campaign(true)
	sc.settle()
	if st := sc.nodes[id].core.Status(); st.Role != RoleLeader {
		sc.t.Fatalf("node %d did not become leader: %+v", id, st)
	}
}

// proposeN proposes n commands named prefix0, prefix1, ... on id.
func (sc *snapCluster) proposeN(id uint64, prefix string, n int) {
	sc.t.Helper()
	for i := range n {
		if _, _, err := sc.nodes[id].core.Propose(fmt.Appendf(nil, "%s%d", prefix, i)); err != nil {
			sc.t.Fatal(err)
		}
		sc.settle()
	}
}

// checkSame fails unless the live nodes' applications agree with id's.
func (sc *snapCluster) checkSame(id uint64) {
	sc.t.Helper()
	want := sc.nodes[id]
	for _, o := range sc.ids {
		if got := sc.nodes[o]; !sc.down[o] && (got.applied != want.applied || !slices.Equal(got.state, want.state)) {
			sc.t.Fatalf("node %d applied %d %q, node %d applied %d %q", o, got.applied, got.state, id, want.applied, want.state)
		}
	}
}

// snapOffsets returns the offsets of the MsgSnap sent to id.
func (sc *snapCluster) snapOffsets(to uint64) []uint64 {
	var out []uint64
	for _, m := range sc.sent {
		if m.Type == MsgSnap && m.To == to {
			out = append(out, m.SnapOffset)
		}
	}
	return out
}

// behind elects 1, replicates to everyone, then lets node 3 miss n
// commands that nodes 1 and 2 compact away.
func behind(t *testing.T, n int) *snapCluster {
	sc := newSnapCluster(t, 3)
	sc.elect(1)
	sc.proposeN(1, "a", 3)
	sc.crash(3)
	sc.proposeN(1, "b", n)
	sc.tick(1) // node 2 learns the last commit
	sc.compact(1)
	sc.compact(2)
	return sc
}

func count(s []uint64, v uint64) int {
	n := 0
	for _, x := range s {
		if x == v {
			n++
		}
	}
	return n
}

func TestCompactDropsLogPrefix(t *testing.T) {
	sc := newSnapCluster(t, 3)
	sc.elect(1)
	sc.proposeN(1, "x", 10)
	c := sc.nodes[1].core
	applied := sc.nodes[1].applied
	if err := c.Compact(applied + 1); !errors.Is(err, ErrUnapplied) {
		t.Fatalf("Compact past applied: %v, want ErrUnapplied", err)
	}
	sc.compact(1)
	if err := c.Compact(applied); !errors.Is(err, ErrCompacted) {
		t.Fatalf("Compact again: %v, want ErrCompacted", err)
	}
	st := c.Status()
	if st.Snapshot != applied || c.log.entries.len() != 0 || st.LastIndex != applied {
		t.Fatalf("after Compact(%d): status %+v, %d entries in memory", applied, st, c.log.entries.len())
	}
	sc.proposeN(1, "y", 5) // the log goes on after the snapshot
	sc.checkSame(1)
	if got := c.log.entries.len(); got != 5 {
		t.Fatalf("%d entries in memory after 5 more, want 5", got)
	}
	if offs := sc.snapOffsets(2); len(offs) != 0 {
		t.Fatalf("snapshot sent to an up-to-date follower: %v", offs)
	}
}

func TestSnapshotSentToFollowerBehindCompactedLog(t *testing.T) {
	sc := behind(t, 20)
	sc.start(3)
	sc.tick(3)
	sc.checkSame(1)
	n3 := sc.nodes[3]
	if n3.restores != 1 || !n3.snap.Same(sc.nodes[1].snap) || n3.core.Status().Snapshot != n3.snap.Index {
		t.Fatalf("node 3: %d restores, snapshot %+v, want 1 restore of %+v", n3.restores, n3.snap, sc.nodes[1].snap)
	}
	offs := sc.snapOffsets(3)
	if want := (len(sc.nodes[1].snapData) + sc.chunk - 1) / sc.chunk; len(offs) != want {
		t.Fatalf("%d chunks sent (%v), want %d", len(offs), offs, want)
	}
	sc.proposeN(1, "c", 3) // replication goes on after the snapshot
	sc.checkSame(1)
	if pr := sc.nodes[1].core.progress[3]; pr.state != stateReplicate {
		t.Fatalf("follower 3 in state %d after the install, want replicate", pr.state)
	}
}

func TestSnapshotResumesAfterDroppedChunk(t *testing.T) {
	sc := behind(t, 20)
	dropped := false
	sc.drop = func(m Message) bool {
		if m.Type == MsgSnap && m.SnapOffset == 2*uint64(sc.chunk) && !dropped {
			dropped = true
			return true
		}
		return false
	}
	sc.start(3)
	sc.tick(12)
	sc.checkSame(1)
	offs := sc.snapOffsets(3)
	if !dropped || count(offs, 0) != 1 || count(offs, 2*uint64(sc.chunk)) != 2 {
		t.Fatalf("dropped %v; offsets sent %v: want one start and one resend of the dropped chunk", dropped, offs)
	}
}

// Every answer to a chunk arrives twice: the leader still sends each
// chunk once. It sent the next chunk for every answer, so that the
// duplicates of the answers multiplied the chunks in flight without end
// (a seed of the random schedules ran out of memory).
func TestSnapshotDuplicateAnswersSendNoExtraChunks(t *testing.T) {
	sc := behind(t, 20)
	sc.dup = func(m Message) bool { return m.Type == MsgSnapResp }
	sc.start(3)
	sc.tick(12)
	sc.checkSame(1)
	offs := sc.snapOffsets(3)
	for _, off := range offs {
		if count(offs, off) != 1 {
			t.Fatalf("offsets sent %v: chunk %d went %d times", offs, off, count(offs, off))
		}
	}
}

func TestSnapshotResumesAcrossLeaderChange(t *testing.T) {
	sc := behind(t, 20)
	// Node 3 gets three chunks from leader 1; then 1 is gone.
	got := 0
	sc.drop = func(m Message) bool {
		if m.Type == MsgSnap && m.From == 1 {
			got++
			return got > 3
		}
		return false
	}
	sc.start(3)
	sc.tick(2)
	if got < 3 {
		t.Fatalf("leader 1 sent %d chunks, want at least 3", got)
	}
	sc.crash(1)
	sc.sent = nil
	for i := 0; sc.nodes[2].core.Status().Role != RoleLeader; i++ {
		if i > 50 {
			t.Fatal("node 2 did not take over")
		}
		sc.tick(1)
	}
	sc.tick(3)
	sc.checkSame(2)
	offs := sc.snapOffsets(3)
	resume := 3 * uint64(sc.chunk)
	if len(offs) < 2 || offs[0] != 0 || offs[1] != resume {
		t.Fatalf("leader 2 sent offsets %v, want 0 then a resume at %d", offs, resume)
	}
}

func TestSnapshotAckedBeforeRestore(t *testing.T) {
	sc := behind(t, 20)
	sc.slowRestore = 3
	sc.start(3)
	// Step until node 3 holds a Ready whose snapshot is durable but not
	// restored.
	for i := 0; sc.nodes[3].pending == nil; i++ {
		if i > 10000 {
			t.Fatal("node 3 never installed the snapshot")
		}
		for _, id := range sc.ids {
			sc.process(id)
		}
		switch {
		case sc.nodes[3].pending != nil:
		case len(sc.queue) > 0:
			sc.deliverOne()
		default:
			sc.nodes[1].core.Tick()
		}
	}
	acked := slices.ContainsFunc(sc.sent, func(m Message) bool { return m.Type == MsgSnapResp && m.SnapDone })
	if !acked || sc.nodes[3].restores != 0 {
		t.Fatalf("acked %v with %d restores: the ack must leave before the restore", acked, sc.nodes[3].restores)
	}
	// The leader moves on while node 3 still restores.
	for len(sc.queue) > 0 {
		sc.deliverOne()
		sc.process(1)
	}
	if pr := sc.nodes[1].core.progress[3]; pr.state != stateReplicate || pr.match != sc.nodes[1].snap.Index {
		t.Fatalf("leader's progress of 3: %+v, want replicating from the snapshot", pr)
	}
	sc.slowRestore = 0
	sc.proposeN(1, "c", 2)
	sc.checkSame(1)
}

func TestSnapshotBadChecksumStartsOver(t *testing.T) {
	sc := behind(t, 5)
	corrupted := false
	sc.drop = func(m Message) bool {
		if m.Type == MsgSnap && m.SnapOffset == 0 && !corrupted {
			corrupted = true
			m.SnapData = bytes.Clone(m.SnapData)
			m.SnapData[0] ^= 1
			sc.queue = append(sc.queue, m)
			return true
		}
		return false
	}
	sc.start(3)
	sc.tick(12)
	sc.checkSame(1)
	if n := sc.nodes[3].restores; n != 1 {
		t.Fatalf("%d restores, want 1", n)
	}
	if offs := sc.snapOffsets(3); count(offs, 0) < 2 {
		t.Fatalf("offsets %v: a corrupt snapshot must be sent again from 0", offs)
	}
}

func TestSnapshotReplacesDivergentLog(t *testing.T) {
	l := raftLog{entries: entriesOf(logOf(1, 1, 2, 2, 2)), stable: 5, committed: 2, applying: 2, applied: 2}
	l.restore(SnapshotMeta{Index: 4, Term: 3})
	if l.lastIndex() != 4 || l.lastTerm() != 3 || l.entries.len() != 0 || l.committed != 4 || l.stable != 4 {
		t.Fatalf("divergent log after restore: %+v", l)
	}
	l = raftLog{entries: entriesOf(logOf(1, 1, 2, 2, 2)), stable: 5, committed: 2, applying: 2, applied: 2}
	l.restore(SnapshotMeta{Index: 3, Term: 2})
	if l.lastIndex() != 5 || l.entries.len() != 2 || l.entries.at(0).Index != 4 || l.committed != 3 {
		t.Fatalf("matching log after restore: %+v", l)
	}
}

func TestRestartFromSnapshot(t *testing.T) {
	sc := behind(t, 10)
	sc.start(3)
	sc.tick(3)
	sc.proposeN(1, "c", 4)
	for _, id := range sc.ids {
		sc.crash(id)
	}
	for _, id := range sc.ids {
		before := sc.nodes[id].applied
		sc.start(id)
		if got := sc.nodes[id].core.Status(); got.Snapshot != sc.nodes[id].snap.Index || got.Applied > before {
			t.Fatalf("node %d restarted as %+v (applied %d before)", id, got, before)
		}
	}
	sc.tick(40)
	lead := uint64(0)
	for _, id := range sc.ids {
		if sc.nodes[id].core.Status().Role == RoleLeader {
			lead = id
		}
	}
	if lead == 0 {
		t.Fatal("no leader after restart")
	}
	sc.proposeN(lead, "d", 2)
	sc.checkSame(lead)
	if want := 3 + 10 + 4 + 2; len(sc.nodes[lead].state) != want {
		t.Fatalf("state has %d commands, want %d", len(sc.nodes[lead].state), want)
	}
}

func TestRestartRejectsLogNotAfterSnapshot(t *testing.T) {
	_, err := New(Config{ID: 1, Voters: []uint64{1}, Snapshot: SnapshotMeta{Index: 5, Term: 2}, Entries: logOf(1, 2)})
	if err == nil {
		t.Fatal("New accepted entries from 1 after a snapshot at 5")
	}
	ents := []Entry{{Index: 6, Term: 1}}
	if _, err := New(Config{ID: 1, Voters: []uint64{1}, Snapshot: SnapshotMeta{Index: 5, Term: 2}, Entries: ents}); err == nil {
		t.Fatal("New accepted an entry whose term is below the snapshot's")
	}
}

func TestSnapMessageRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		m := genMessage().Draw(t, "m")
		m.SnapOffset = rapid.Uint64().Draw(t, "off")
		m.SnapTotal = rapid.Uint64().Draw(t, "total")
		m.SnapChecksum = rapid.Uint32().Draw(t, "sum")
		m.SnapDone = rapid.Bool().Draw(t, "done")
		if d := rapid.SliceOfN(rapid.Byte(), 0, 64).Draw(t, "data"); len(d) > 0 {
			m.SnapData = d
		}
		b, _ := m.AppendBinary(nil)
		var got Message
		if err := got.UnmarshalBinary(b); err != nil {
			t.Fatalf("UnmarshalBinary: %v", err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Fatalf("round trip\n got %+v\nwant %+v", got, m)
		}
	})
}

func TestSnapMessageDecodeRejects(t *testing.T) {
	m := Message{Type: MsgSnap, From: 1, To: 2, Term: 3, Index: 9, LogTerm: 2, SnapTotal: 4, SnapData: []byte("abcd"), SnapDone: true}
	b, _ := m.AppendBinary(nil)
	for name, bad := range map[string][]byte{
		"truncated":       b[:len(b)-2],
		"flag, no fields": append([]byte{byte(MsgSnap), 1, 2, 3, 2, 9, 0, 0, flagSnap}, 0, 0, 0, 0, 0, 0),
		"done byte 2":     {byte(MsgSnap), 1, 2, 3, 2, 9, 0, 0, flagSnap, 0, 4, 0, 2, 4, 'a', 'b', 'c', 'd', 0},
		"checksum > 32b":  {byte(MsgSnap), 1, 2, 3, 2, 9, 0, 0, flagSnap, 0, 0, 0x80, 0x80, 0x80, 0x80, 0x10, 0, 0, 0},
	} {
		var got Message
		if err := got.UnmarshalBinary(bad); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", name, err)
		}
	}
}

func FuzzSnapMessageDecode(f *testing.F) {
	for _, m := range []Message{
		{Type: MsgSnap, From: 1, To: 2, Term: 3, Index: 9, LogTerm: 2, SnapOffset: 8, SnapTotal: 12, SnapChecksum: 0xdeadbeef, SnapData: []byte("abcd"), SnapDone: true},
		{Type: MsgSnapResp, From: 2, To: 1, Term: 3, Index: 9, LogTerm: 2, SnapOffset: 12, SnapDone: true},
		{Type: MsgSnapResp, From: 2, To: 1, Term: 3, Index: 9, LogTerm: 2, SnapOffset: 4},
	} {
		b, _ := m.AppendBinary(nil)
		f.Add(b)
	}
	f.Fuzz(checkMessageReencodes)
}

// TestSnapshotRandomFaults mixes proposals, compactions, crashes and lost
// messages, and checks that every node's application is a prefix of the
// longest one (state-machine safety) and that all converge once the
// faults stop.
func TestSnapshotRandomFaults(t *testing.T) {
	for seed := range uint64(200) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 99))
			sc := newSnapClusterWith(t, 3, rng.IntN(4))
			sc.chunk = 1 + rng.IntN(16)
			sc.drop = func(Message) bool { return rng.IntN(10) == 0 }
			for step := range 400 {
				id := sc.ids[rng.IntN(len(sc.ids))]
				switch r := rng.IntN(20); {
				case r < 8:
					if lead := sc.leader(); lead != 0 {
						sc.nodes[lead].core.Propose(fmt.Appendf(nil, "s%d", step))
						sc.settle()
					}
				case r < 10:
					if !sc.down[id] && sc.nodes[id].applied > sc.nodes[id].snap.Index {
						sc.compact(id)
					}
				case r == 10 && !sc.down[id]:
					sc.crash(id)
				case r == 11 && sc.down[id]:
					sc.start(id)
				default:
					sc.tick(1)
				}
				sc.checkPrefixes()
			}
			sc.drop = nil
			for _, id := range sc.ids {
				if sc.down[id] {
					sc.start(id)
				}
			}
			sc.tick(60)
			lead := sc.leader()
			if lead == 0 {
				t.Fatal("no leader after healing")
			}
			sc.proposeN(lead, "end", 1)
			sc.tick(5)
			sc.checkSame(lead)
			restores := 0
			for _, id := range sc.ids {
				restores += sc.nodes[id].restores
			}
			t.Logf("%d commands, %d snapshot installs", len(sc.nodes[lead].state), restores)
		})
	}
}

// leader returns the live leader of the highest term, or 0.
func (sc *snapCluster) leader() uint64 {
	var lead, term uint64
	for _, id := range sc.ids {
		st := sc.nodes[id].core.Status()
		if !sc.down[id] && st.Role == RoleLeader && st.Term >= term {
			lead, term = id, st.Term
		}
	}
	return lead
}

// checkPrefixes fails unless every application is a prefix of the
// longest.
func (sc *snapCluster) checkPrefixes() {
	sc.t.Helper()
	var longest []string
	for _, id := range sc.ids {
		if s := sc.nodes[id].state; len(s) > len(longest) {
			longest = s
		}
	}
	for _, id := range sc.ids {
		if s := sc.nodes[id].state; !slices.Equal(s, longest[:len(s)]) {
			sc.t.Fatalf("node %d applied %q, not a prefix of %q", id, s, longest)
		}
	}
}

func TestSnapMessageTypesKeepWireOrder(t *testing.T) {
	if MsgSnap != 11 || MsgSnapResp != 12 {
		t.Errorf("MsgSnap = %d, MsgSnapResp = %d; the wire says 11 and 12", MsgSnap, MsgSnapResp)
	}
}

func TestCompactKeepsCatchUpEntries(t *testing.T) {
	sc := newSnapClusterWith(t, 3, 5)
	sc.elect(1)
	sc.proposeN(1, "a", 3)
	sc.crash(3)
	sc.proposeN(1, "b", 4)
	sc.tick(1)
	sc.compact(1)
	sc.compact(2)
	c := sc.nodes[1].core
	if st := c.Status(); st.Snapshot != sc.nodes[1].snap.Index || c.log.offset != st.Snapshot-5 {
		t.Fatalf("status %+v, log from %d: want the snapshot and 5 entries before it", st, c.log.offset+1)
	}
	sc.start(3)
	sc.tick(3)
	sc.checkSame(1)
	if offs := sc.snapOffsets(3); len(offs) != 0 || sc.nodes[3].restores != 0 {
		t.Fatalf("follower 4 entries behind got a snapshot (%v), want the entries", offs)
	}
}

func TestSnapshotTransferSurvivesNewerSnapshot(t *testing.T) {
	sc := newSnapClusterWith(t, 3, 2)
	sc.elect(1)
	sc.proposeN(1, "a", 3)
	sc.crash(3)
	sc.proposeN(1, "b", 20)
	sc.tick(1)
	sc.compact(1)
	first := sc.nodes[1].snap
	// Node 3 takes three chunks; then the leader snapshots again.
	got := 0
	sc.drop = func(m Message) bool {
		if m.Type == MsgSnap {
			got++
			return got > 3
		}
		return false
	}
	sc.start(3)
	sc.tick(2)
	sc.drop = nil
	sc.proposeN(1, "c", 1)
	sc.compact(1)
	if sc.nodes[1].snap.Same(first) {
		t.Fatal("no newer snapshot")
	}
	sc.tick(12)
	sc.checkSame(1)
	var resumed []uint64
	for _, m := range sc.sent {
		if m.Type == MsgSnap && m.To == 3 && m.Index == first.Index {
			resumed = append(resumed, m.SnapOffset)
		}
	}
	if count(resumed, 0) != 1 || sc.nodes[3].restores != 1 || !sc.nodes[3].snap.Same(first) {
		t.Fatalf("offsets of snapshot %d sent %v, %d restores of %+v: want the first transfer finished once",
			first.Index, resumed, sc.nodes[3].restores, sc.nodes[3].snap)
	}
}

func TestUnstartedTransferTakesNewestSnapshot(t *testing.T) {
	sc := newSnapCluster(t, 3)
	sc.crash(3)
	sc.elect(1)
	sc.proposeN(1, "b", 10)
	sc.tick(1)
	sc.compact(1)
	sc.tick(2) // the leader asks node 3, which is down, for a snapshot
	if pr := sc.nodes[1].core.progress[3]; pr.state != stateSnapshot {
		t.Fatalf("progress of 3: %+v, want a transfer started", pr)
	}
	sc.proposeN(1, "c", 5)
	sc.tick(1)
	sc.compact(1)
	sc.start(3)
	sc.tick(3)
	sc.checkSame(1)
	if n3 := sc.nodes[3]; n3.restores != 1 || !n3.snap.Same(sc.nodes[1].snap) {
		t.Fatalf("node 3: %d restores, last of %+v; want one of the newest %+v", n3.restores, n3.snap, sc.nodes[1].snap)
	}
}
