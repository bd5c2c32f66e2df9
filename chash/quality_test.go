package chash

import (
	"math"
	"strconv"
	"testing"
)

// qualityKeys is how many keys the balance tests place.
const qualityKeys = 1 << 20

// keyHashes returns the hashes of "key-0", "key-1", ...
func keyHashes(n int) []uint64 {
	hs := make([]uint64, n)
	buf := []byte("key-")
	for i := range hs {
		hs[i] = HashBytes(strconv.AppendInt(buf[:4], int64(i), 10))
	}
	return hs
}

// keyShares returns the fraction of the keys each server of r owns,
// indexed like r.servers.
func keyShares(r *Ring, keys []uint64) []float64 {
	counts := make([]int, len(r.servers))
	for _, h := range keys {
		counts[ownerOf(&r.index, h)]++
	}
	shares := make([]float64, len(counts))
	for i, c := range counts {
		shares[i] = float64(c) / float64(len(keys))
	}
	return shares
}

// arcShares returns the fraction of the hash space each server of r owns,
// exactly, from the lengths of its arcs.
func arcShares(r *Ring) []float64 {
	shares := make([]float64, len(r.servers))
	r.eachArc(func(g Range, owner int) {
		shares[owner] += (float64(g.End-g.Start) + 1) / math.Exp2(64)
	})
	return shares
}

func maxOverMean(shares []float64) float64 {
	most := 0.0
	for _, s := range shares {
		most = max(most, s)
	}
	return most * float64(len(shares))
}

// The balance targets: these fail when a change of hash, point placement
// or default point count makes the ring worse than promised.
func TestBalance(t *testing.T) {
	keys := keyHashes(qualityKeys)
	t.Run("equal", func(t *testing.T) {
		tests := []struct {
			servers int
			limit   float64
		}{
			{10, 1.10}, {100, 1.15}, {1000, 1.30},
		}
		for _, tt := range tests {
			r := mustRing(t, equalWeights(tt.servers), RingConfig{})
			byKeys, byArcs := maxOverMean(keyShares(r, keys)), maxOverMean(arcShares(r))
			t.Logf("%d equal servers, %d points: max/mean %.3f by %d keys, %.3f by arc length",
				tt.servers, len(r.points), byKeys, len(keys), byArcs)
			if byKeys > tt.limit || byArcs > tt.limit {
				t.Errorf("%d equal servers: max/mean = %.3f by keys, %.3f by arcs, want at most %.2f",
					tt.servers, byKeys, byArcs, tt.limit)
			}
		}
	})
	t.Run("weights 1:2:3", func(t *testing.T) {
		r := mustRing(t, map[string]uint64{"node-1": 1, "node-2": 2, "node-3": 3}, RingConfig{})
		byKeys, byArcs := keyShares(r, keys), arcShares(r)
		for i, s := range r.servers {
			want := float64(i+1) / 6
			t.Logf("%s (weight %d, %d points): share %.4f by keys, %.4f by arcs, want %.4f (%+.1f%%, %+.1f%%)",
				s, i+1, r.counts[i], byKeys[i], byArcs[i], want, 100*(byKeys[i]/want-1), 100*(byArcs[i]/want-1))
			if math.Abs(byKeys[i]/want-1) > 0.03 || math.Abs(byArcs[i]/want-1) > 0.03 {
				t.Errorf("%s: share %.4f by keys, %.4f by arcs, want %.4f within 3%%", s, byKeys[i], byArcs[i], want)
			}
		}
	})
	t.Run("join 10 to 11", func(t *testing.T) {
		prev := mustRing(t, equalWeights(10), RingConfig{})
		next := mustRing(t, equalWeights(11), RingConfig{})
		moved, wrong := 0, 0
		for _, h := range keys {
			a, b := prev.servers[ownerOf(&prev.index, h)], next.servers[ownerOf(&next.index, h)]
			if a != b {
				moved++
				if b != "node-10" {
					wrong++
				}
			}
		}
		ideal := 1.0 / 11
		frac := float64(moved) / float64(len(keys))
		t.Logf("10 -> 11 servers moved %.4f of the keys, %.3fx the ideal 1/11", frac, frac/ideal)
		if frac > 1.10*ideal {
			t.Errorf("10 -> 11 servers moved %.4f of the keys, want at most 1.10 x 1/11 = %.4f", frac, 1.10*ideal)
		}
		if wrong != 0 {
			t.Errorf("%d keys moved between servers that stayed, want 0", wrong)
		}
	})
}

// Huge weights do not make a huge ring.
func TestHugeWeightsBoundRing(t *testing.T) {
	w := make(map[string]uint64)
	for i := range 100 {
		w[strconv.Itoa(i)] = uint64(i+1) << 40
	}
	r := mustRing(t, w, RingConfig{})
	if got, limit := len(r.points), 100*2*DefaultPoints; got > limit {
		t.Errorf("100 servers with weights in units of 2^40 have %d points, want at most %d", got, limit)
	}
}
