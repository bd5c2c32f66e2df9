package chash

import (
	"encoding/binary"
	"hash/fnv"
	"testing"

	"pgregory.net/rapid"
)

// The hash decides placements that every member must agree on, in every
// release: these vectors must never change.
func TestHashVectors(t *testing.T) {
	tests := []struct {
		in   string
		want uint64
	}{
		{"", 0xefd01f60ba992926},
		{"a", 0x82a2a958a9bece5b},
		{"node-1", 0x91dd3f4c04e1eb05},
		{"node-2", 0x3238e5c6e8323420},
		{"key-0", 0x18137ad031db6589},
		{"key-999999", 0x2c711d99a18d9ed7},
		{"bifrost", 0x9d231abafd3ae8f4},
		{"\x00", 0xb9034ad37056f5fb},
		{"\xff\xfe", 0x75c9056eb1c4b960},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := HashString(tt.in); got != tt.want {
				t.Errorf("HashString(%q) = %#016x, want %#016x", tt.in, got, tt.want)
			}
			if got := HashBytes([]byte(tt.in)); got != tt.want {
				t.Errorf("HashBytes(%q) = %#016x, want %#016x", tt.in, got, tt.want)
			}
		})
	}
}

// The point positions are part of the same contract.
func TestPointHashVectors(t *testing.T) {
	tests := []struct {
		name    string
		replica uint32
		want    uint64
	}{
		{"node-1", 0, 0x3422da0b29878bce},
		{"node-1", 1, 0xd36d947461e8bed5},
	}
	for _, tt := range tests {
		if got := pointHash(pointPrefix(tt.name), tt.replica); got != tt.want {
			t.Errorf("pointHash(%q, %d) = %#016x, want %#016x", tt.name, tt.replica, got, tt.want)
		}
	}
}

// The FNV-1a stage is the published algorithm, checked against the
// standard library's implementation.
func TestFNV1aMatchesStandardLibrary(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		b := rapid.SliceOf(rapid.Byte()).Draw(t, "b")
		std := fnv.New64a()
		std.Write(b)
		if got, want := fnv1a(fnvOffset, b), std.Sum64(); got != want {
			t.Fatalf("fnv1a(%x) = %#x, want %#x", b, got, want)
		}
		if got, want := HashString(string(b)), HashBytes(b); got != want {
			t.Fatalf("HashString = %#x, HashBytes = %#x", got, want)
		}
	})
}

// A point's hash is HashBytes of its documented encoding.
func TestPointHashIsHashOfEncoding(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		name := rapid.String().Draw(t, "name")
		i := rapid.Uint32().Draw(t, "replica")
		enc := binary.BigEndian.AppendUint64(nil, uint64(len(name)))
		enc = binary.BigEndian.AppendUint32(append(enc, name...), i)
		if got, want := pointHash(pointPrefix(name), i), HashBytes(enc); got != want {
			t.Fatalf("pointHash(%q, %d) = %#x, want HashBytes of encoding %#x", name, i, got, want)
		}
	})
}

func TestHashStringDoesNotAllocate(t *testing.T) {
	s := "a key of some length"
	var sink uint64
	if got := testing.AllocsPerRun(100, func() { sink += HashString(s) }); got != 0 {
		t.Errorf("HashString allocates %v times, want 0", got)
	}
}
