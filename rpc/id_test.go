package rpc

import (
	"hash/fnv"
	"testing"
)

// TestIDVectors pins the ids: they are part of the wire format, so a
// change here breaks every deployed peer.
func TestIDVectors(t *testing.T) {
	tests := []struct {
		name string
		want uint64
	}{
		{"", 0xcbf29ce484222325},
		{"a", 0xaf63dc4c8601ec8c},
		{"foobar", 0x85944171f73967e8},
		{"echo", 0x3000e56026044164},
		{"Echo", 0x5a8ee66c2774b544},
	}
	for _, tt := range tests {
		if got := ServiceID(tt.name); got != tt.want {
			t.Errorf("ServiceID(%q) = %#x, want %#x", tt.name, got, tt.want)
		}
		if got := MethodID(tt.name); got != tt.want {
			t.Errorf("MethodID(%q) = %#x, want %#x", tt.name, got, tt.want)
		}
	}
}

// TestIDMatchesHashFNV checks the allocation-free hash against the
// standard library's.
func TestIDMatchesHashFNV(t *testing.T) {
	for _, s := range []string{"", "raft", "membership.heartbeat", "日本語", "\x00\xff"} {
		h := fnv.New64a()
		h.Write([]byte(s))
		if got, want := ServiceID(s), h.Sum64(); got != want {
			t.Errorf("ServiceID(%q) = %#x, hash/fnv says %#x", s, got, want)
		}
	}
}

// TestIDAllocs checks that computing an id does not allocate.
func TestIDAllocs(t *testing.T) {
	name := "membership"
	var id uint64
	if n := testing.AllocsPerRun(100, func() { id += ServiceID(name) }); n != 0 {
		t.Errorf("ServiceID allocates %v times, want 0", n)
	}
}
