package wal

import (
	"errors"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/bifrost-go/bifrost/raft"
	"pgregory.net/rapid"
)

// model is the log as a plain slice: what the WAL must recover.
type model struct {
	hs        raft.HardState
	compacted uint64
	last      uint64
	log       []raft.Entry // indices compacted+1 .. last
}

// op is one record: an entry, a hard state or a compaction point.
type op struct {
	entry   *raft.Entry
	hs      *raft.HardState
	compact uint64
}

func (m *model) apply(o op) {
	switch {
	case o.entry != nil:
		m.log = append(slices.Clone(m.log[:o.entry.Index-1-m.compacted]), *o.entry)
		m.last = o.entry.Index
	case o.hs != nil:
		m.hs = *o.hs
	default:
		if o.compact < m.last {
			m.log = slices.Clone(m.log[o.compact-m.compacted:])
		} else {
			m.log, m.last = nil, o.compact
		}
		m.compacted = o.compact
	}
}

func (m *model) state() State {
	return State{HardState: m.hs, Compacted: m.compacted, Entries: m.log}
}

func sameState(a, b State) bool {
	return a.HardState == b.HardState && a.Compacted == b.Compacted && equalEntries(a.Entries, b.Entries)
}

// walMachine drives a WAL on a crashable file system beside a model.
type walMachine struct {
	cfg     Config
	fs      *memFS
	w       *WAL
	durable model // what a crash must keep
	full    model // durable plus pending
	pending []op  // records appended but not yet known to be synced
}

func (s *walMachine) open(t *rapid.T) {
	w, err := Open(s.cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	s.w = w
	got := w.Recovered()
	// Recovery keeps every synced record and, of the others, a prefix.
	cand := s.durable
	if sameState(got, cand.state()) {
		s.settle(cand)
		return
	}
	for _, o := range s.pending {
		cand.apply(o)
		if sameState(got, cand.state()) {
			s.settle(cand)
			return
		}
	}
	t.Fatalf("recovered %+v compacted %d %s; synced %+v compacted %d %s; %d records pending",
		got.HardState, got.Compacted, describe(got.Entries),
		s.durable.hs, s.durable.compacted, describe(s.durable.log), len(s.pending))
}

func (s *walMachine) settle(m model) {
	s.durable, s.full, s.pending = m, m, nil
}

func (s *walMachine) synced() {
	s.durable, s.pending = s.full, nil
}

// batch draws a valid batch: it may replace a suffix, never leaves a gap.
func (s *walMachine) batch(t *rapid.T) (raft.HardState, []raft.Entry, []op) {
	first := rapid.Uint64Range(s.full.compacted+1, s.full.last+1).Draw(t, "first")
	n := rapid.IntRange(0, 4).Draw(t, "n")
	term := rapid.Uint64Range(1, 4).Draw(t, "term")
	var es []raft.Entry
	for i := range n {
		data := rapid.SliceOfN(rapid.Byte(), 0, 60).Draw(t, "data")
		es = append(es, raft.Entry{Index: first + uint64(i), Term: term, Data: data})
	}
	var hs raft.HardState
	if rapid.Bool().Draw(t, "with hard state") {
		hs = raft.HardState{Term: term, Vote: rapid.Uint64Range(0, 3).Draw(t, "vote"), Commit: rapid.Uint64Range(0, 300).Draw(t, "commit")}
	}
	var ops []op
	for i := range es {
		ops = append(ops, op{entry: &es[i]})
	}
	if !hs.IsZero() && hs != s.full.hs {
		ops = append(ops, op{hs: &hs})
	}
	return hs, es, ops
}

func (s *walMachine) Save(t *rapid.T) {
	hs, es, ops := s.batch(t)
	if err := s.w.Save(hs, es); err != nil {
		t.Fatalf("Save: %v", err)
	}
	for _, o := range ops {
		s.full.apply(o)
	}
	s.synced()
}

func (s *walMachine) Append(t *rapid.T) {
	hs, es, ops := s.batch(t)
	if err := s.w.Append(hs, es); err != nil {
		t.Fatalf("Append: %v", err)
	}
	for _, o := range ops {
		s.full.apply(o)
	}
	s.pending = append(s.pending, ops...)
	if rapid.Bool().Draw(t, "flush") { // written to the file, not synced
		s.w.mu.Lock()
		s.w.flushLocked()
		s.w.mu.Unlock()
	}
}

func (s *walMachine) Sync(t *rapid.T) {
	if err := s.w.Sync(); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	s.synced()
}

func (s *walMachine) SaveGap(t *rapid.T) {
	es := entries(s.full.last+2, s.full.last+2, 1)
	if err := s.w.Save(raft.HardState{}, es); !errors.Is(err, ErrGap) {
		t.Fatalf("Save with a gap = %v, want ErrGap", err)
	}
}

func (s *walMachine) Compact(t *rapid.T) {
	c := rapid.Uint64Range(s.full.compacted, s.full.last+3).Draw(t, "compact")
	if err := s.w.Compact(c); err != nil {
		t.Fatalf("Compact(%d): %v", c, err)
	}
	if c > s.full.compacted { // else nothing happens, not even a sync
		s.full.apply(op{compact: c})
		s.synced()
	}
}

func (s *walMachine) Crash(t *rapid.T) {
	var rng *rand.Rand
	if rapid.Bool().Draw(t, "torn") {
		rng = rand.New(rand.NewPCG(rapid.Uint64().Draw(t, "seed"), 0))
	}
	s.fs = s.fs.crash(rng)
	s.cfg.FS = s.fs
	s.open(t)
}

func (s *walMachine) Reopen(t *rapid.T) {
	if err := s.w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s.synced()
	s.open(t)
}

func TestWALMatchesModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := &walMachine{fs: newMemFS()}
		s.cfg = Config{Dir: memDir, FS: s.fs, SegmentBytes: rapid.Int64Range(64, 1024).Draw(t, "segment bytes")}
		s.open(t)
		t.Repeat(map[string]func(*rapid.T){
			"Save":    s.Save,
			"Append":  s.Append,
			"Sync":    s.Sync,
			"SaveGap": s.SaveGap,
			"Compact": s.Compact,
			"Crash":   s.Crash,
			"Reopen":  s.Reopen,
			"": func(t *rapid.T) {
				if len(s.full.log) != int(s.full.last-s.full.compacted) {
					t.Fatalf("model broke: %d entries for (%d, %d]", len(s.full.log), s.full.compacted, s.full.last)
				}
			},
		})
	})
}
