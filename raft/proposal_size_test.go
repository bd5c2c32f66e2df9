package raft

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestMaxCommandBytes(t *testing.T) {
	var empty Entry
	overhead := empty.EncodedSize()
	tests := []struct {
		maxMsgBytes, want int
	}{
		{0, DefaultMaxMsgBytes - overhead}, // the default
		{1000, 1000 - overhead},
		{overhead, 0},
		{1, 0},
	}
	for _, tt := range tests {
		if got := MaxCommandBytes(Config{MaxMsgBytes: tt.maxMsgBytes}); got != tt.want {
			t.Errorf("MaxCommandBytes with MaxMsgBytes %d = %d, want %d", tt.maxMsgBytes, got, tt.want)
		}
	}
}

// A command whose entry cannot fit in one MsgApp is refused when proposed,
// on the leader and elsewhere, and leaves the log alone; one of exactly
// the largest size commits, in a MsgApp within MaxMsgBytes.
func TestProposeTooLarge(t *testing.T) {
	const maxMsgBytes = 200
	cl := newCluster(t, 3, func(c *Config) { c.MaxMsgBytes = maxMsgBytes })
	cl.elect(1)
	limit := MaxCommandBytes(Config{MaxMsgBytes: maxMsgBytes})
	for _, id := range cl.ids {
		last := cl.nodes[id].Status().LastIndex
		_, _, err := cl.nodes[id].Propose(bytes.Repeat([]byte("x"), limit+1))
		if !errors.Is(err, ErrProposalTooLarge) {
			t.Fatalf("node %d: Propose of %d bytes: %v, want ErrProposalTooLarge", id, limit+1, err)
		}
		if want := fmt.Sprintf("%d bytes, at most %d", limit+1, limit); !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
		if got := cl.nodes[id].Status().LastIndex; got != last {
			t.Errorf("node %d: refused proposal moved the last index from %d to %d", id, last, got)
		}
	}
	biggest := strings.Repeat("y", limit)
	cl.propose(1, biggest)
	cl.propose(1, "small")
	cl.settle()
	for _, id := range cl.ids {
		if got := cl.applied(id); len(got) != 2 || got[0] != biggest || got[1] != "small" {
			t.Errorf("node %d applied %d commands, want the largest allowed and a small one", id, len(got))
		}
	}
	for _, m := range cl.sent {
		size := 0
		for i := range m.Entries {
			size += m.Entries[i].EncodedSize()
		}
		if size > maxMsgBytes {
			t.Errorf("%v to %d carries %d entry bytes, over MaxMsgBytes %d", m.Type, m.To, size, maxMsgBytes)
		}
	}
}
