package raft

import (
	"fmt"
	"testing"
)

func TestIsUpToDate(t *testing.T) {
	l := raftLog{entries: entriesOf(logOf(1, 1, 3))}
	tests := []struct {
		index, term uint64
		want        bool
	}{
		{0, 0, false}, {2, 3, false}, {3, 3, true}, {4, 3, true},
		{1, 4, true}, {100, 2, false},
	}
	for _, tt := range tests {
		if got := l.isUpToDate(tt.index, tt.term); got != tt.want {
			t.Errorf("isUpToDate(index %d, term %d) = %v, want %v", tt.index, tt.term, got, tt.want)
		}
	}
}

func TestFindConflictByTerm(t *testing.T) {
	l := raftLog{entries: entriesOf(logOf(1, 1, 2, 2, 5, 5))}
	tests := []struct{ index, term, wantIndex, wantTerm uint64 }{
		{6, 5, 6, 5}, {6, 4, 4, 2}, {6, 1, 2, 1}, {6, 0, 0, 0},
		{10, 3, 4, 2}, {3, 2, 3, 2}, {0, 7, 0, 0},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d,%d", tt.index, tt.term), func(t *testing.T) {
			i, term := l.findConflictByTerm(tt.index, tt.term)
			if i != tt.wantIndex || term != tt.wantTerm {
				t.Errorf("got (%d, %d), want (%d, %d)", i, term, tt.wantIndex, tt.wantTerm)
			}
		})
	}
}

func TestBatchLimitsBytes(t *testing.T) {
	big := make([]byte, 100)
	l := raftLog{}
	for i := range 10 {
		l.append(Entry{Index: uint64(i + 1), Term: 1, Data: big})
	}
	size := l.entries.at(0).EncodedSize()
	tests := []struct {
		last                       uint64
		maxEntries, maxBytes, want int
	}{
		{10, 100, 3 * size, 3}, {10, 2, 3 * size, 2}, {10, 100, 1, 1}, {10, 100, 1 << 20, 10},
		{4, 100, 1 << 20, 4}, {99, 100, 1 << 20, 10}, {0, 100, 1 << 20, 0},
	}
	for _, tt := range tests {
		if got := len(l.batch(1, tt.last, tt.maxEntries, tt.maxBytes)); got != tt.want {
			t.Errorf("batch(up to %d, entries %d, bytes %d) has %d entries, want %d", tt.last, tt.maxEntries, tt.maxBytes, got, tt.want)
		}
	}
}

func TestStableToIgnoresReplacedEntry(t *testing.T) {
	// The driver holds a Ready with entries 1-2 of term 1 while the core
	// replaces entry 2; the durable copy of the old entry 2 must not make
	// the new one count as durable.
	c := newFollower(t, 1, HardState{Term: 1})
	c.Step(Message{Type: MsgApp, From: 2, To: 1, Term: 1, Entries: logOf(1, 1)})
	rd := c.Ready()
	c.Step(Message{Type: MsgApp, From: 3, To: 1, Term: 2, Index: 1, LogTerm: 1,
		Entries: []Entry{{Index: 2, Term: 2}}})
	c.Advance(rd)
	if c.log.stable != 1 {
		t.Errorf("stable = %d, want 1", c.log.stable)
	}
	rd = c.Ready()
	if len(rd.Entries) != 1 || rd.Entries[0].Index != 2 || rd.Entries[0].Term != 2 {
		t.Errorf("next Ready entries = %+v, want the new entry 2", rd.Entries)
	}
	if rd.Entries[0].Term == 2 && rd.Entries[0].Index == 2 && len(rd.AfterPersist) != 1 {
		t.Errorf("the answer to the new leader should wait for this Ready: %+v", rd.AfterPersist)
	}
}

func TestHandedOutSlicesAreNeverRewritten(t *testing.T) {
	c := newFollower(t, 1, HardState{Term: 1})
	c.Step(Message{Type: MsgApp, From: 2, To: 1, Term: 1, Entries: logOf(1, 1, 1)})
	rd := c.Ready()
	c.Advance(rd)
	c.Step(Message{Type: MsgApp, From: 3, To: 1, Term: 2, Index: 1, LogTerm: 1,
		Entries: []Entry{{Index: 2, Term: 2}, {Index: 3, Term: 2}}})
	for i, e := range rd.Entries {
		if e.Term != 1 {
			t.Errorf("entry %d of an earlier Ready changed to term %d", i+1, e.Term)
		}
	}
}
