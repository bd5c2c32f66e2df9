package chash

import "encoding/binary"

// FNV-1a 64-bit parameters (Fowler, Noll and Vo).
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

// HashString returns the ring's hash of s: FNV-1a 64 over the bytes of s,
// followed by the 64-bit finalizer of MurmurHash3 (fmix64). FNV-1a alone
// leaves the last bytes of short keys poorly mixed into the high bits,
// and the ring orders points by their high bits, so the finalizer spreads
// names such as "node-1" and "node-2" across the whole space.
//
// The hash is part of the ring's contract: the same bytes give the same
// hash in every process, on every platform and in every release, so that
// members agree on placements. HashString(s) == HashBytes([]byte(s)), and
// HashString does not allocate.
func HashString(s string) uint64 {
	return fmix64(fnv1a(fnvOffset, s))
}

// HashBytes returns the ring's hash of b; see HashString.
func HashBytes(b []byte) uint64 {
	return fmix64(fnv1a(fnvOffset, b))
}

// fnv1a folds the bytes of s into the FNV-1a state h.
func fnv1a[T string | []byte](h uint64, s T) uint64 {
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime
	}
	return h
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

// The position of replica i of a server is the ring's hash of an 8-byte
// big-endian length of the name, the name, and a 4-byte big-endian
// replica number: HashBytes of that encoding. The length prefix and the
// fixed width make the encoding injective, so two different (server,
// replica) pairs never hash the same input.

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
