package chash

import (
	"cmp"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

// sortPoints gives what a stable comparison sort by position gives.
func TestSortPointsIsStableSortByPosition(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(0, 200).Draw(t, "n")
		pts := make([]point, n)
		for i := range pts {
			// Few distinct positions, with some digits shared by all,
			// to exercise ties and skipped passes.
			h := rapid.SampledFrom([]uint64{0, 1, 0xff00, 1 << 40, 0xdead_beef_0000_0001, ^uint64(0)}).Draw(t, "h")
			pts[i] = point{h ^ rapid.Uint64Range(0, 3).Draw(t, "low"), uint32(i)}
		}
		want := slices.Clone(pts)
		slices.SortStableFunc(want, func(a, b point) int { return cmp.Compare(a.hash, b.hash) })
		sortPoints(pts)
		if !slices.Equal(pts, want) {
			t.Fatalf("sortPoints = %v, want %v", pts, want)
		}
	})
}
