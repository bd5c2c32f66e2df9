package chash

import (
	"encoding/binary"
	"math/bits"
)

// The ring's hash, in full. Words are read little-endian; mum(x, y) is
// the 128-bit product of x and y with its high and low halves XORed
// together; fmix64 is MurmurHash3's 64-bit finalizer.
//
//  1. h = k0 XOR n, where n is the length of the input in bytes.
//  2. While more than 16 bytes remain: h = mum(w0 XOR k1, w1 XOR h),
//     where w0 and w1 are the next two 8-byte words; drop those 16 bytes.
//  3. The r bytes left (0 to 16; 0 only for an empty input) give two
//     words a and b: for r from 9 to 16, the first and the last 8 bytes;
//     for r from 4 to 8, the first and the last 4 bytes; for r from 1 to
//     3, a = t[0]<<16 | t[r/2]<<8 | t[r-1] and b = 0; for r = 0, a = b = 0.
//     The two reads may overlap, but together they cover every byte, so
//     given n the words say exactly which bytes were read.
//  4. The hash is fmix64(mum(a XOR k1, b XOR h)).
//
// k0 is the 64-bit golden ratio and k1 MurmurHash3's first fmix64
// constant; XORing k1 into the first word of a multiply keeps a zero
// word, common in short keys, from zeroing the product.
const (
	k0 = 0x9e3779b97f4a7c15
	k1 = 0xff51afd7ed558ccd
)

// HashString returns the ring's hash of s. It reads s eight bytes at a
// time, so a key of up to sixteen bytes costs one multiply before the
// finalizer, where a byte-at-a-time hash costs one a byte. The folded
// multiply mixes the words, and MurmurHash3's finalizer spreads the
// result: every input bit affects every output bit, names such as
// "node-1" and "node-2" land far apart, and the high bits, which place a
// key on the ring, are as mixed as the low. It is not a defence against
// keys chosen to collide.
//
// The hash is part of the ring's contract: the same bytes give the same
// hash in every process, on every platform and in every release, so that
// members agree on placements. HashString(s) == HashBytes([]byte(s)), and
// HashString does not allocate.
func HashString(s string) uint64 {
	return hashOf(s)
}

// HashBytes returns the ring's hash of b; see HashString.
func HashBytes(b []byte) uint64 {
	return hashOf(b)
}

// hashOf computes the ring's hash, described above the constants.
func hashOf[T string | []byte](s T) uint64 {
	h := k0 ^ uint64(len(s))
	for len(s) > 16 {
		h = mum(le64(s)^k1, le64(s[8:])^h)
		s = s[16:]
	}
	a, b := tail(s)
	return fmix64(mum(a^k1, b^h))
}

// tail reads the last 0 to 16 bytes of an input as two words.
func tail[T string | []byte](t T) (a, b uint64) {
	r := len(t)
	switch {
	case r > 8:
		return le64(t), le64(t[r-8:])
	case r >= 4:
		return le32(t), le32(t[r-4:])
	case r > 0:
		return uint64(t[0])<<16 | uint64(t[r/2])<<8 | uint64(t[r-1]), 0
	}
	return 0, 0
}

// le64 reads the first 8 bytes of s as a little-endian word.
func le64[T string | []byte](s T) uint64 {
	_ = s[7]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// le32 reads the first 4 bytes of s as a little-endian word.
func le32[T string | []byte](s T) uint64 {
	_ = s[3]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24
}

// mum is the folded multiply: the high and low halves of x*y, XORed.
func mum(x, y uint64) uint64 {
	hi, lo := bits.Mul64(x, y)
	return hi ^ lo
}

// fmix64 is MurmurHash3's finalizer: every input bit affects every output
// bit with probability close to one half.
func fmix64(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

// Points and keys are hashed differently. The position of replica i of
// a server is FNV-1a 64 (Fowler, Noll and Vo), byte at a time, followed
// by fmix64, over an 8-byte big-endian length of the name, the name, and
// a 4-byte big-endian replica number. The length prefix and the fixed
// width make the encoding injective, so two different (server, replica)
// pairs never hash the same input. Points are hashed once a ring, where a
// byte-at-a-time hash costs nothing that matters and lets a server's
// replicas share the work of its name; keys are hashed once a lookup,
// where the word-at-a-time HashString is several times faster. Neither
// hash changes, so the points of a ring are the same in every release.
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

// pointPrefix returns the FNV-1a state after the length and the name, so
// that a server's replicas share that work.
func pointPrefix(name string) uint64 {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(name)))
	return fnv1a(fnv1a(fnvOffset, n[:]), name)
}

// pointHash returns the position of replica i of the server whose
// pointPrefix is prefix.
func pointHash(prefix uint64, i uint32) uint64 {
	var r [4]byte
	binary.BigEndian.PutUint32(r[:], i)
	return fmix64(fnv1a(prefix, r[:]))
}

// fnv1a folds the bytes of s into the FNV-1a state h. The fingerprint
// uses it too: it folds a stream of names and points once a ring.
func fnv1a[T string | []byte](h uint64, s T) uint64 {
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime
	}
	return h
}
