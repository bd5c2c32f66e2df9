package chash

import (
	"math"
	"slices"
)

// Range is the hashes h with Start <= h <= End. Both ends are inclusive,
// so a range can end at the top of the hash space; a range never wraps
// round, so an arc across the top of the space is two ranges, one ending
// at math.MaxUint64 and one starting at 0.
type Range struct {
	Start, End uint64
}

// Contains reports whether h is in g.
func (g Range) Contains(h uint64) bool {
	return g.Start <= h && h <= g.End
}

// Ranges returns the hashes server owns in r: sorted, disjoint and with
// no two adjacent (touching arcs are merged). It returns nil for a server
// not in the ring. Point i owns the arc from just after point i-1 up to
// and including point i; the first point also owns everything above the
// last point, round the top of the hash space.
func (r *Ring) Ranges(server string) []Range {
	s, found := slices.BinarySearch(r.servers, server)
	if !found {
		return nil
	}
	var out []Range
	r.eachArc(func(g Range, owner int) {
		if owner == s {
			out = appendRange(out, g)
		}
	})
	return out
}

// eachArc calls f with every non-empty arc of the ring and its owner, in
// order of Start.
func (r *Ring) eachArc(f func(g Range, owner int)) {
	var start uint64
	for i, p := range r.points {
		if i > 0 && p == r.points[i-1] {
			continue // a tied point owns nothing
		}
		f(Range{start, p}, r.owner(i))
		start = p + 1
	}
	if n := len(r.points); n > 0 && r.points[n-1] != math.MaxUint64 {
		f(Range{start, math.MaxUint64}, r.owner(0))
	}
}

// appendRange appends g to the sorted ranges rs, merging it into the last
// one when they touch. g must start after the last range ends.
func appendRange(rs []Range, g Range) []Range {
	if n := len(rs); n > 0 && rs[n-1].End != math.MaxUint64 && rs[n-1].End+1 == g.Start {
		rs[n-1].End = g.End
		return rs
	}
	return append(rs, g)
}

// Delta is how the hashes one server owns change from one ring to the
// next: the ranges it gains and the ranges it loses, each sorted,
// disjoint and merged as Ranges returns them.
type Delta struct {
	Gained, Lost []Range
}

// Diff returns the Delta of every server whose ranges differ between prev
// and next; servers that keep exactly their ranges are absent. A nil ring
// is the empty ring, which no server owns any of.
//
// Every hash whose owner changes is in the Lost of its owner in prev and
// the Gained of its owner in next, and no other hash is in any delta. So
// for every server, its ranges in next are its ranges in prev minus Lost
// plus Gained, and a watcher that starts from the empty ring and applies the
// deltas of each ring to the next holds the current ring's ranges.
func Diff(prev, next *Ring) map[string]Delta {
	deltas := make(map[string]Delta)
	eachInterval(prev, next, func(g Range, from, to string) {
		if from == to {
			return
		}
		if from != "" {
			d := deltas[from]
			d.Lost = appendRange(d.Lost, g)
			deltas[from] = d
		}
		if to != "" {
			d := deltas[to]
			d.Gained = appendRange(d.Gained, g)
			deltas[to] = d
		}
	})
	return deltas
}

// eachInterval splits the hash space at the points of both rings and
// calls f with each piece, in order, and its owners in prev and in next
// ("" for an empty ring). No piece holds a point of either ring but at
// its End, so each ring has one owner for the whole piece: the owner of
// its End.
func eachInterval(prev, next *Ring, f func(g Range, from, to string)) {
	bounds := mergePoints(pointsOf(prev), pointsOf(next))
	var start uint64
	for _, b := range bounds {
		f(Range{start, b}, ownerName(prev, b), ownerName(next, b))
		start = b + 1
	}
	if n := len(bounds); n > 0 && bounds[n-1] != math.MaxUint64 {
		top := uint64(math.MaxUint64)
		f(Range{start, top}, ownerName(prev, top), ownerName(next, top))
	}
}

// pointsOf returns the points of r, none for a nil ring.
func pointsOf(r *Ring) []uint64 {
	if r == nil {
		return nil
	}
	return r.points
}

// ownerName returns the owner of h in r, "" for a nil or empty ring.
func ownerName(r *Ring, h uint64) string {
	if r == nil {
		return ""
	}
	s, _ := r.Lookup(h)
	return s
}

// mergePoints returns the union of two sorted point lists, sorted and
// without repeats.
func mergePoints(a, b []uint64) []uint64 {
	out := make([]uint64, 0, len(a)+len(b))
	for len(a) > 0 || len(b) > 0 {
		var p uint64
		switch {
		case len(b) == 0 || len(a) > 0 && a[0] <= b[0]:
			p, a = a[0], a[1:]
		default:
			p, b = b[0], b[1:]
		}
		if n := len(out); n == 0 || out[n-1] != p {
			out = append(out, p)
		}
	}
	return out
}
