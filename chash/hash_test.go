package chash

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"testing"

	"pgregory.net/rapid"
)

// The hash decides placements that every member must agree on, in every
// release: these vectors must never change. Their lengths reach every
// case of the tail and the 16-byte loop.
func TestHashVectors(t *testing.T) {
	tests := []struct {
		in   string
		want uint64
	}{
		{"", 0xbd86178ee6f62d82},
		{"a", 0x36fc1eba22853842},
		{"\x00", 0xf26e5b6fa42a3e65},
		{"\xff\xfe", 0x3b6b7c241679d78d},
		{"abc", 0x04fad1cfc4609025},
		{"node", 0xa209b7fd58293375},
		{"node-1", 0x100ab73bcd44e44a},
		{"node-2", 0x78076abc296a71a9},
		{"bifrost", 0x9d23df941b2b291f},
		{"key-0", 0x2f1e5b8f08b52712},
		{"key-999999", 0x43ae354b16e8b211},
		{"0123456789abcdef", 0x9bfd9caa8cea2543},
		{"0123456789abcdefg", 0x0b0d56dd582f73a1},
		{"the quick brown fox jumps over the lazy dog", 0xe0e8527496fb1f30},
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

// specHash is the ring's hash as its doc comment describes it, written
// plainly: HashString and HashBytes must agree with it on every input.
func specHash(in []byte) uint64 {
	word := func(b []byte) uint64 {
		var w [8]byte
		copy(w[:], b)
		return binary.LittleEndian.Uint64(w[:])
	}
	h := uint64(k0) ^ uint64(len(in))
	for ; len(in) > 16; in = in[16:] {
		h = mum(word(in[:8])^k1, word(in[8:16])^h)
	}
	var a, b uint64
	switch r := len(in); {
	case r > 8:
		a, b = word(in[:8]), word(in[r-8:])
	case r >= 4:
		a, b = word(in[:4]), word(in[r-4:])
	case r > 0:
		a = uint64(in[0])<<16 | uint64(in[r/2])<<8 | uint64(in[r-1])
	}
	return fmix64(mum(a^k1, b^h))
}

func TestHashMatchesSpec(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		b := rapid.SliceOfN(rapid.Byte(), 0, 80).Draw(t, "b")
		want := specHash(b)
		if got := HashBytes(b); got != want {
			t.Fatalf("HashBytes(%x) = %#x, want %#x", b, got, want)
		}
		if got := HashString(string(b)); got != want {
			t.Fatalf("HashString(%x) = %#x, want %#x", b, got, want)
		}
	})
}

// Flipping any one bit of a key flips each bit of its hash, the high bits
// that place it on the ring included, about half the time.
func TestHashAvalanche(t *testing.T) {
	for _, n := range []int{1, 3, 4, 7, 8, 9, 16, 17, 40} {
		t.Run(fmt.Sprintf("len=%d", n), func(t *testing.T) {
			var flips [64]int
			trials := 0
			in := make([]byte, n)
			for k := range 64 {
				copy(in, binary.LittleEndian.AppendUint64(nil, uint64(k)*0x9e3779b97f4a7c15))
				in[n-1] ^= byte(k)
				h := HashBytes(in)
				for bit := range 8 * n {
					in[bit/8] ^= 1 << (bit % 8)
					d := h ^ HashBytes(in)
					in[bit/8] ^= 1 << (bit % 8)
					for o := range flips {
						flips[o] += int(d >> o & 1)
					}
					trials++
				}
			}
			for o, f := range flips {
				if p := float64(f) / float64(trials); p < 0.4 || p > 0.6 {
					t.Errorf("output bit %d flipped in %.3f of one-bit changes, want 0.4 to 0.6", o, p)
				}
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

// A point's position is FNV-1a 64, checked against the standard
// library's implementation, then fmix64, of its documented encoding.
func TestPointHashIsHashOfEncoding(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		name := rapid.String().Draw(t, "name")
		i := rapid.Uint32().Draw(t, "replica")
		enc := binary.BigEndian.AppendUint64(nil, uint64(len(name)))
		enc = binary.BigEndian.AppendUint32(append(enc, name...), i)
		std := fnv.New64a()
		std.Write(enc)
		if got, want := pointHash(pointPrefix(name), i), fmix64(std.Sum64()); got != want {
			t.Fatalf("pointHash(%q, %d) = %#x, want fmix64(FNV-1a of encoding) %#x", name, i, got, want)
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
