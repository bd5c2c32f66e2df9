package chash

import (
	"math"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

// referenceOwner is the owner of h by the reference binary search.
func referenceOwner(t *lookupTable, h uint64) int {
	return t.ownerAt(t.searchReference(h))
}

// drawProbe draws a hash worth asking about: anywhere, or at, just below
// or just above a point, or at the ends of the hash space.
func drawProbe(t *rapid.T, points []uint64) uint64 {
	switch rapid.IntRange(0, 3).Draw(t, "kind") {
	case 0:
		return rapid.Uint64().Draw(t, "h")
	case 1:
		return rapid.SampledFrom([]uint64{0, 1, math.MaxUint64 - 1, math.MaxUint64}).Draw(t, "h")
	}
	p := rapid.SampledFrom(points).Draw(t, "point")
	return p + uint64(rapid.IntRange(-1, 1).Draw(t, "offset"))
}

// The table's lookup agrees with binary search on real rings.
func TestLookupMatchesReference(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		w := drawWeights(t, 1, 20)
		cfg := RingConfig{Points: rapid.IntRange(1, 200).Draw(t, "points"), MinPoints: 1}
		r := mustRing(t, w, cfg)
		for range 50 {
			h := drawProbe(t, r.points)
			want := r.servers[referenceOwner(&r.index, h)]
			if got, _ := r.Lookup(h); got != want {
				t.Fatalf("Lookup(%#x) = %q, reference says %q", h, got, want)
			}
		}
	})
}

// The table's lookup agrees with binary search on crowded points, where
// buckets are full, positions tie and points agree on the top 48 bits, so
// the fallback runs.
func TestLookupMatchesReferenceOnCrowdedPoints(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		bases := rapid.SliceOfN(rapid.Uint64(), 1, 4).Draw(t, "bases")
		n := rapid.IntRange(1, 300).Draw(t, "n")
		points := make([]uint64, n)
		owners := make([]uint16, n)
		for i := range points {
			base := rapid.SampledFrom(bases).Draw(t, "base")
			points[i] = base + rapid.Uint64Range(0, 1<<20).Draw(t, "offset")
			owners[i] = uint16(rapid.IntRange(0, 5).Draw(t, "owner"))
		}
		slices.Sort(points)
		tab := newLookupTable(points, owners)
		for range 100 {
			h := drawProbe(t, points)
			if got, want := tab.owner(h), referenceOwner(&tab, h); got != want {
				t.Fatalf("owner(%#x) = %d, reference says %d", h, got, want)
			}
		}
	})
}

func TestLookupTableShape(t *testing.T) {
	tests := []struct {
		name       string
		servers    int
		wantBucket int
	}{
		{"one server", 1, 1 << 10},
		{"ten servers", 10, 1 << 13},
		{"thousand servers", 1000, 1 << 19},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustRing(t, equalWeights(tt.servers), RingConfig{})
			if got := len(r.index.table) - 1; got != tt.wantBucket {
				t.Errorf("buckets = %d, want %d for %d points", got, tt.wantBucket, len(r.points))
			}
			if got, limit := r.index.scan, 16; got > limit {
				t.Errorf("longest scan = %d entries, want at most %d", got, limit)
			}
		})
	}
}
