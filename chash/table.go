package chash

import (
	"math"
	"math/bits"
	"sort"
)

// ownerBits is the width of the owner packed into a lookup entry.
const ownerBits = 16

// lookupTable finds the point that owns a hash in two memory reads, one in
// table and one run of entries. An entry is a point with its low
// ownerBits replaced by the index of its owner, so the scan that finds
// the point has the owner in the same cache line. table[b] is the index
// of the first point whose top bits are at least b, so the owner of a
// hash in bucket b is at most scan entries after table[b]. entries is
// padded with scan entries above every point, owned by the first point's
// owner, so a scan from any bucket stays in the slice and a hash above
// every point wraps round to the first without a branch.
type lookupTable struct {
	entries []uint64
	points  []uint64 // the ring's points, for the exact answer on a tie
	table   []uint32
	shift   uint // 64 minus the number of top bits that pick a bucket
	scan    int  // the most points in one bucket
}

// newLookupTable indexes the sorted points, owned by owners, with about
// one bucket a point.
func newLookupTable(points []uint64, owners []uint16) lookupTable {
	bitsUsed := bits.Len(uint(len(points)))
	t := lookupTable{points: points, shift: uint(64 - bitsUsed)}
	t.table = make([]uint32, 1<<bitsUsed+1)
	p := 0
	for b := range 1 << bitsUsed {
		start := p
		for p < len(points) && points[p]>>t.shift == uint64(b) {
			p++
		}
		t.table[b] = uint32(start)
		t.scan = max(t.scan, p-start)
	}
	t.table[1<<bitsUsed] = uint32(len(points))
	t.entries = make([]uint64, len(points), len(points)+t.scan)
	for i, pt := range points {
		t.entries[i] = pt>>ownerBits<<ownerBits | uint64(owners[i])
	}
	for range t.scan {
		t.entries = append(t.entries, math.MaxUint64>>ownerBits<<ownerBits|uint64(owners[0]))
	}
	return t
}

// owner returns the server index owning h in a non-empty ring. It counts the entries below h, compared on all but the owner
// bits, among the scan entries from the table's; entries past the bucket
// are above h and never count. The count is branch-free, so lookups do
// not stall on mispredictions and independent lookups overlap their cache
// misses. When the entry found ties with h on the compared bits only the
// full points can decide, and the binary search does.
func (t *lookupTable) owner(h uint64) int {
	i := int(t.table[h>>t.shift])
	q := h >> ownerBits << ownerBits
	var below int
	for _, e := range t.entries[i : i+t.scan] {
		_, borrow := bits.Sub64(e, q, 0)
		below += int(borrow)
	}
	i += below
	if t.entries[i]>>ownerBits == h>>ownerBits {
		i = t.searchReference(h)
	}
	return t.ownerAt(i)
}

// ownerAt returns the server index owning point i, or the first point's
// for i == len(points).
func (t *lookupTable) ownerAt(i int) int {
	return int(t.entries[i] & (1<<ownerBits - 1))
}

// searchReference returns the index of the point that owns h by binary
// search over all the points, or len(points) for a hash above them all,
// which wraps round to the first point. Tests hold owner to it.
func (t *lookupTable) searchReference(h uint64) int {
	return sort.Search(len(t.points), func(i int) bool { return t.points[i] >= h })
}
