package chash

import (
	"fmt"
	"math"
	"math/bits"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

// ownerOf is the owner of h by the table.
func ownerOf(t *lookupTable, h uint64) int {
	owner, _ := t.owner(h)
	return owner
}

// referenceOwner is the owner of h by the reference binary search.
func referenceOwner(t *lookupTable, h uint64) int {
	return t.ownerAt(t.searchReference(h))
}

// lineStart returns the first hash of line i of t: ceil(i*2^64/lines).
func lineStart(t *lookupTable, i int) uint64 {
	q, rem := bits.Div64(uint64(i), 0, uint64(len(t.lines)))
	if rem != 0 {
		q++
	}
	return q
}

// drawProbe draws a hash worth asking about: anywhere, at, just below or
// just above a point, at the ends of the hash space, or at either side of
// the edge between two lines of the table.
func drawProbe(t *rapid.T, tab *lookupTable) uint64 {
	switch rapid.IntRange(0, 4).Draw(t, "kind") {
	case 0:
		return rapid.Uint64().Draw(t, "h")
	case 1:
		return rapid.SampledFrom([]uint64{0, 1, math.MaxUint64 - 1, math.MaxUint64}).Draw(t, "h")
	case 2:
		i := rapid.IntRange(0, len(tab.lines)-1).Draw(t, "line")
		return lineStart(tab, i) - uint64(rapid.IntRange(0, 1).Draw(t, "below"))
	}
	p := rapid.SampledFrom(tab.points).Draw(t, "point")
	return p + uint64(rapid.IntRange(-1, 1).Draw(t, "offset"))
}

// boundaryProbes returns every hash at an edge of tab: the ends of the
// space, each point and its neighbours, and both sides of every line edge.
func boundaryProbes(tab *lookupTable) []uint64 {
	probes := []uint64{0, 1, math.MaxUint64 - 1, math.MaxUint64}
	for _, p := range tab.points {
		probes = append(probes, p-1, p, p+1)
	}
	for i := range tab.lines {
		probes = append(probes, lineStart(tab, i)-1, lineStart(tab, i))
	}
	return probes
}

// checkBoundaries holds the table's lookup of every boundary probe to the
// reference.
func checkBoundaries(t *testing.T, tab *lookupTable) {
	t.Helper()
	for _, h := range boundaryProbes(tab) {
		if got, want := ownerOf(tab, h), referenceOwner(tab, h); got != want {
			t.Fatalf("owner(%#016x) = %d, reference says %d", h, got, want)
		}
	}
}

// The table's lookup agrees with binary search on real rings.
func TestLookupMatchesReference(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		w := drawWeights(t, 1, 20)
		cfg := RingConfig{Points: rapid.IntRange(1, 200).Draw(t, "points"), MinPoints: 1}
		r := mustRing(t, w, cfg)
		for range 50 {
			h := drawProbe(t, &r.index)
			want := r.servers[referenceOwner(&r.index, h)]
			if got, _ := r.Lookup(h); got != want {
				t.Fatalf("Lookup(%#x) = %q, reference says %q", h, got, want)
			}
		}
	})
}

// The table's lookup agrees with binary search on crowded points, where
// lines overflow, positions tie and points share their keys, so the
// fallback runs.
func TestLookupMatchesReferenceOnCrowdedPoints(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		bases := rapid.SliceOfN(rapid.Uint64(), 1, 4).Draw(t, "bases")
		n := rapid.IntRange(1, 300).Draw(t, "n")
		points := make([]uint64, n)
		owners := make([]uint16, n)
		for i := range points {
			base := rapid.SampledFrom(bases).Draw(t, "base")
			points[i] = base + rapid.Uint64Range(0, 1<<rapid.IntRange(0, 63).Draw(t, "spread")).Draw(t, "offset")
			owners[i] = uint16(rapid.IntRange(0, 5).Draw(t, "owner"))
		}
		slices.Sort(points)
		tab := newLookupTable(points, owners)
		for range 100 {
			h := drawProbe(t, &tab)
			if got, want := ownerOf(&tab, h), referenceOwner(&tab, h); got != want {
				t.Fatalf("owner(%#x) = %d, reference says %d", h, got, want)
			}
		}
	})
}

// Every edge of real rings, small and large, one server and many, at the
// floor of points and at the default.
func TestLookupBoundaries(t *testing.T) {
	tests := []struct {
		name    string
		weights map[string]uint64
		cfg     RingConfig
	}{
		{"one point", map[string]uint64{"a": 1}, RingConfig{Points: 1, MinPoints: 1}},
		{"one server", map[string]uint64{"a": 1}, RingConfig{}},
		{"one server at the floor", map[string]uint64{"a": 1}, RingConfig{Points: 1}},
		{"servers at the floor", equalWeights(10), RingConfig{Points: 1}},
		{"light and heavy", map[string]uint64{"light": 1, "heavy": 1024}, RingConfig{}},
		{"hundred servers", equalWeights(100), RingConfig{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustRing(t, tt.weights, tt.cfg)
			checkBoundaries(t, &r.index)
		})
	}
}

// Lines that hold up to, exactly and more than lineSlots points, points
// at both ends of the space and points that share a key.
func TestLookupFullLines(t *testing.T) {
	const lines = 10
	for _, crowd := range []int{lineSlots - 1, lineSlots, lineSlots + 1, 3 * lineSlots} {
		t.Run(fmt.Sprintf("crowd=%d", crowd), func(t *testing.T) {
			edges := &lookupTable{lines: make([]line, lines)}
			width := uint64(math.MaxUint64 / lines)
			points := []uint64{0, math.MaxUint64}
			for i := range crowd {
				points = append(points, lineStart(edges, 3)+uint64(i)*(width/uint64(crowd)))
			}
			fifth := lineStart(edges, 5)
			points = append(points, fifth, fifth+1, fifth+2) // one key
			for i := len(points); i < lines*linePoints; i++ {
				points = append(points, uint64(i)*(math.MaxUint64/(lines*linePoints)))
			}
			slices.Sort(points)
			owners := make([]uint16, len(points))
			for i := range owners {
				owners[i] = uint16(i)
			}
			tab := newLookupTable(points, owners)
			if len(tab.lines) != lines {
				t.Fatalf("%d lines, want %d", len(tab.lines), lines)
			}
			checkBoundaries(t, &tab)
		})
	}
}

// A hash above the last point goes round to the first, and a point owns
// its own hash.
func TestLookupWrapsRound(t *testing.T) {
	tab := newLookupTable([]uint64{10, 20}, []uint16{0, 1})
	tests := []struct {
		h    uint64
		want int
	}{
		{0, 0}, {10, 0}, {11, 1}, {20, 1}, {21, 0}, {math.MaxUint64, 0},
	}
	for _, tt := range tests {
		if got := ownerOf(&tab, tt.h); got != tt.want {
			t.Errorf("owner(%d) = %d, want %d", tt.h, got, tt.want)
		}
	}
}

// The table has a line for about every linePoints points, and hardly
// any lookup needs the binary search.
func TestLookupTableShape(t *testing.T) {
	tests := []struct {
		name      string
		servers   int
		wantLines int
	}{
		{"one server", 1, 86},
		{"ten servers", 10, 854},
		{"thousand servers", 1000, 85334},
	}
	keys := keyHashes(1 << 18)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustRing(t, equalWeights(tt.servers), RingConfig{})
			if got := len(r.index.lines); got != tt.wantLines {
				t.Errorf("lines = %d, want %d for %d points", got, tt.wantLines, len(r.points))
			}
			searched := 0
			for _, h := range keys {
				if _, slow := r.index.owner(h); slow {
					searched++
				}
			}
			if got, limit := float64(searched)/float64(len(keys)), 1.0/1000; got > limit {
				t.Errorf("%.2g of lookups searched, want at most %.2g", got, limit)
			}
		})
	}
}
