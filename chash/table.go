package chash

import (
	"math/bits"
	"sort"
)

// The lookup table cuts the hash space into equal lines, linePoints
// points to a line on average, and gives each line one 64-byte line of
// cache: short keys of the line's points and their owners. A lookup reads
// that one cache line and compares the hash with four keys a word.
const (
	linePoints = 6  // points a line holds on average
	lineSlots  = 16 // points a line has room for
	keyBits    = 15 // width of a key: its lane's top bit is set
	keyMax     = 1<<keyBits - 1
	laneOnes   = 0x0001_0001_0001_0001 // one in every 16-bit lane
	laneHigh   = 0x8000 * laneOnes     // the top bit of every lane
)

// line holds the first lineSlots points of one line of the hash space, in
// order. Slot s has a point's key, the top keyBits of its offset into the
// line, in the low bits of lane s%4 of keys[s/4], whose top bit is always
// set, and the point's owner in owners[s]. The slots after the last point
// hold keyMax and the owner of the next point round the ring, so a hash
// above every point of the line finds that owner in the slot after them.
type line struct {
	keys   [lineSlots / 4]uint64
	owners [lineSlots]uint16
}

// lookupTable finds the owner of a hash in one cache line. The keys of a
// line cannot decide a hash whose key equals the key of the point it
// stops at, nor one above the points of a line that has no free slot;
// with six points a line on average, that is about one lookup in 3000,
// and a binary search over the points answers it.
type lookupTable struct {
	lines  []line
	points []uint64 // the ring's points, for the exact answer
	owners []uint16 // owners[i] owns points[i]
}

// newLookupTable indexes the sorted points, owned by owners.
func newLookupTable(points []uint64, owners []uint16) lookupTable {
	t := lookupTable{points: points, owners: owners}
	if len(points) == 0 {
		return t
	}
	t.lines = make([]line, (len(points)+linePoints-1)/linePoints)
	p := 0
	for i := range t.lines {
		start := p
		for p < len(points) && t.lineOf(points[p]) == i {
			p++
		}
		t.fillLine(&t.lines[i], start, p)
	}
	return t
}

// locate returns the line of h and the key of h in it: the high and the
// top of the low word of h*len(lines). Both grow with h, and any number of
// lines cuts the space evenly, so a ring gets the lines its points need.
func (t *lookupTable) locate(h uint64) (int, uint64) {
	i, offset := bits.Mul64(h, uint64(len(t.lines)))
	return int(i), offset >> (64 - keyBits)
}

// lineOf returns the line of h.
func (t *lookupTable) lineOf(h uint64) int {
	i, _ := t.locate(h)
	return i
}

// fillLine puts points[start:end], the points of one line, into l.
func (t *lookupTable) fillLine(l *line, start, end int) {
	for s := range lineSlots {
		key, owner := uint64(keyMax), t.owners[t.wrap(end)]
		if p := start + s; p < end {
			_, key = t.locate(t.points[p])
			owner = t.owners[p]
		}
		l.keys[s/4] |= (0x8000 | key) << (16 * (s % 4))
		l.owners[s] = owner
	}
}

// owner returns the server index owning h in a non-empty ring, and
// whether it took the binary search. A lane of 0x8000 plus a key, less
// h's key, keeps its top bit when the key is at least h's, and never
// borrows from the next lane, so one subtraction compares four keys; a
// multiply adds up the lanes. The slot after the keys below h's is the
// first point at or after h, or the next point round the ring, unless its
// key ties with h's or the line is full.
func (t *lookupTable) owner(h uint64) (owner int, searched bool) {
	i, key := t.locate(h)
	l := &t.lines[i]
	q := key * laneOnes
	lanes := (l.keys[0]-q)&laneHigh>>15 + (l.keys[1]-q)&laneHigh>>15 +
		(l.keys[2]-q)&laneHigh>>15 + (l.keys[3]-q)&laneHigh>>15
	below := lineSlots - uint(lanes*laneOnes>>48)
	s := below % lineSlots
	if below == lineSlots || l.keys[s/4]>>(16*(s%4))&keyMax == key {
		return t.ownerAt(t.searchReference(h)), true
	}
	return int(l.owners[s]), false
}

// ownerAt returns the server index owning point i, or the first point's
// for i == len(points).
func (t *lookupTable) ownerAt(i int) int {
	return int(t.owners[t.wrap(i)])
}

// wrap returns i, or 0, the first point, for i == len(points).
func (t *lookupTable) wrap(i int) int {
	if i == len(t.points) {
		return 0
	}
	return i
}

// searchReference returns the index of the point that owns h by binary
// search over all the points, or len(points) for a hash above them all,
// which wraps round to the first point. Tests hold owner to it.
func (t *lookupTable) searchReference(h uint64) int {
	return sort.Search(len(t.points), func(i int) bool { return t.points[i] >= h })
}
