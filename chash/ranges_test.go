package chash

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"testing"

	"pgregory.net/rapid"
)

// smallConfig keeps property tests fast; a fixed unit keeps point counts
// independent of the heaviest server, as the properties assume.
func drawSmallConfig(t *rapid.T) RingConfig {
	return RingConfig{Points: rapid.IntRange(1, 40).Draw(t, "points"), MinPoints: 1, Unit: 4}
}

// inRanges reports whether h is in one of the sorted ranges rs.
func inRanges(rs []Range, h uint64) bool {
	i := sort.Search(len(rs), func(i int) bool { return rs[i].End >= h })
	return i < len(rs) && rs[i].Contains(h)
}

// probes returns hashes worth checking against two rings: each point and
// its neighbours, the ends of the space, and random hashes.
func probes(t *rapid.T, rings ...*Ring) []uint64 {
	hs := []uint64{0, math.MaxUint64}
	for _, r := range rings {
		if r == nil {
			continue
		}
		for _, p := range r.points {
			hs = append(hs, p-1, p, p+1)
		}
	}
	for range 20 {
		hs = append(hs, rapid.Uint64().Draw(t, "probe"))
	}
	return hs
}

func owner(r *Ring, h uint64) string {
	s, _ := r.Lookup(h)
	return s
}

// normalize sorts rs and merges ranges that overlap or touch.
func normalize(rs []Range) []Range {
	rs = slices.Clone(rs)
	slices.SortFunc(rs, func(a, b Range) int { return cmp.Compare(a.Start, b.Start) })
	var out []Range
	for _, g := range rs {
		if n := len(out); n > 0 && (out[n-1].End == math.MaxUint64 || g.Start <= out[n-1].End+1) {
			out[n-1].End = max(out[n-1].End, g.End)
			continue
		}
		out = append(out, g)
	}
	return out
}

// subtract returns the hashes in a and not in b.
func subtract(a, b []Range) []Range {
	var out []Range
	for _, g := range a {
		for _, cut := range b {
			if cut.End < g.Start || cut.Start > g.End {
				continue
			}
			if cut.Start > g.Start {
				out = append(out, Range{g.Start, cut.Start - 1})
			}
			if cut.End >= g.End {
				g.Start, g.End = 1, 0 // nothing left
				break
			}
			g.Start = cut.End + 1
		}
		if g.Start <= g.End {
			out = append(out, g)
		}
	}
	return normalize(out)
}

func TestRangeSetHelpers(t *testing.T) {
	top := uint64(math.MaxUint64)
	tests := []struct {
		name string
		a, b []Range
		want []Range
	}{
		{"middle", []Range{{0, 10}}, []Range{{3, 4}}, []Range{{0, 2}, {5, 10}}},
		{"all", []Range{{0, top}}, []Range{{0, top}}, nil},
		{"top", []Range{{5, top}}, []Range{{7, top}}, []Range{{5, 6}}},
		{"disjoint", []Range{{5, 6}}, []Range{{0, 4}, {7, 9}}, []Range{{5, 6}}},
	}
	for _, tt := range tests {
		if got := subtract(tt.a, tt.b); !slices.Equal(got, tt.want) {
			t.Errorf("%s: subtract = %v, want %v", tt.name, got, tt.want)
		}
	}
	if got, want := normalize([]Range{{5, top}, {0, 4}}), []Range{{0, top}}; !slices.Equal(got, want) {
		t.Errorf("normalize = %v, want %v", got, want)
	}
}

// Every hash is in the ranges of exactly the server Lookup returns.
func TestRangesPartitionHashSpace(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		r := mustRing(t, drawWeights(t, 1, 8), drawSmallConfig(t))
		var all []Range
		for _, s := range r.Servers() {
			rs := r.Ranges(s)
			if !slices.Equal(rs, normalize(rs)) {
				t.Fatalf("Ranges(%s) = %v, not sorted and merged", s, rs)
			}
			all = append(all, rs...)
		}
		slices.SortFunc(all, func(a, b Range) int { return cmp.Compare(a.Start, b.Start) })
		next := uint64(0)
		for i, g := range all {
			if g.Start != next || g.End < g.Start {
				t.Fatalf("range %d is %v, want it to start at %#x", i, g, next)
			}
			next = g.End + 1
		}
		if all[len(all)-1].End != math.MaxUint64 {
			t.Fatalf("ranges end at %#x, want the top of the space", all[len(all)-1].End)
		}
		for _, h := range probes(t, r) {
			if s := owner(r, h); !inRanges(r.Ranges(s), h) {
				t.Fatalf("Lookup(%#x) = %s, not in its ranges", h, s)
			}
		}
	})
}

// A server that joins takes keys from the others; no key moves between
// two servers that stayed.
func TestAddServerMovesKeysOnlyOntoIt(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		cfg := drawSmallConfig(t)
		w := drawWeights(t, 1, 8)
		prev := mustRing(t, w, cfg)
		w["joiner"] = rapid.Uint64Range(1, 16).Draw(t, "joiner weight")
		next := mustRing(t, w, cfg)
		for _, h := range probes(t, prev, next) {
			if a, b := owner(prev, h), owner(next, h); a != b && b != "joiner" {
				t.Fatalf("hash %#x moved from %s to %s, not to the joiner", h, a, b)
			}
		}
	})
}

// A server that leaves hands its keys to the others; no other key moves.
func TestRemoveServerMovesOnlyItsKeys(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		cfg := drawSmallConfig(t)
		w := drawWeights(t, 2, 8)
		prev := mustRing(t, w, cfg)
		leaver := rapid.SampledFrom(prev.Servers()).Draw(t, "leaver")
		delete(w, leaver)
		next := mustRing(t, w, cfg)
		for _, h := range probes(t, prev, next) {
			if a, b := owner(prev, h), owner(next, h); a != b && a != leaver {
				t.Fatalf("hash %#x moved from %s to %s, not from the leaver %s", h, a, b, leaver)
			}
		}
	})
}

// A server's point count follows its own weight only.
func TestWeightChangeChangesOnlyThatServersPoints(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		cfg := drawSmallConfig(t)
		w := drawWeights(t, 1, 8)
		prev := mustRing(t, w, cfg)
		changed := rapid.SampledFrom(prev.Servers()).Draw(t, "changed")
		w[changed] = rapid.Uint64Range(1, 16).Draw(t, "new weight")
		next := mustRing(t, w, cfg)
		for _, s := range prev.Servers() {
			if s != changed && prev.pointsOf(s) != next.pointsOf(s) {
				t.Fatalf("%s had %d points and has %d after %s changed weight", s, prev.pointsOf(s), next.pointsOf(s), changed)
			}
		}
		if got, want := next.pointsOf(changed), max(cfg.MinPoints, ceilDiv(cfg.Points*int(w[changed]), int(cfg.Unit))); got != want {
			t.Fatalf("%s has %d points at weight %d, want %d", changed, got, w[changed], want)
		}
	})
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// With the derived unit, a join moves keys only onto the joiner as long
// as the heaviest weight stays within its power of two.
func TestAddServerWithDerivedUnit(t *testing.T) {
	tests := []struct {
		name   string
		joiner uint64
	}{
		{"lighter", 1}, {"as heavy", 5}, {"heavier within the power of two", 7},
	}
	w := map[string]uint64{"a": 5, "b": 3, "c": 4}
	prev := mustRing(t, w, RingConfig{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			next := mustRing(t, withServer(w, "joiner", tt.joiner), RingConfig{})
			for _, s := range prev.Servers() {
				if prev.pointsOf(s) != next.pointsOf(s) {
					t.Errorf("%s: %d points before, %d after", s, prev.pointsOf(s), next.pointsOf(s))
				}
			}
			for s, d := range Diff(prev, next) {
				if s != "joiner" && len(d.Gained) > 0 {
					t.Errorf("%s gained %v; only the joiner may gain", s, d.Gained)
				}
			}
		})
	}
}

func withServer(w map[string]uint64, name string, weight uint64) map[string]uint64 {
	w = maps.Clone(w)
	w[name] = weight
	return w
}

// drawPoolWeights draws weights for a random subset of a fixed pool of
// names, so that consecutive rings share some servers.
func drawPoolWeights(t *rapid.T, label string) map[string]uint64 {
	w := make(map[string]uint64)
	for i := range 6 {
		if rapid.Bool().Draw(t, fmt.Sprintf("%s has s%d", label, i)) {
			w[fmt.Sprintf("s%d", i)] = rapid.Uint64Range(1, 8).Draw(t, fmt.Sprintf("%s weight s%d", label, i))
		}
	}
	return w
}

// The deltas account exactly for the hashes that moved: a hash that moved
// is lost by its old owner and gained by its new one, and is in no other
// delta; a hash that stayed is in no delta.
func TestDiffAccountsForMovedKeys(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		cfg := drawSmallConfig(t)
		prev := mustRing(t, drawPoolWeights(t, "prev"), cfg)
		next := mustRing(t, drawPoolWeights(t, "next"), cfg)
		deltas := Diff(prev, next)
		for s, d := range deltas {
			if len(d.Gained)+len(d.Lost) == 0 {
				t.Fatalf("%s has an empty delta", s)
			}
			if !slices.Equal(d.Gained, normalize(d.Gained)) || !slices.Equal(d.Lost, normalize(d.Lost)) {
				t.Fatalf("delta of %s is not sorted and merged: %+v", s, d)
			}
		}
		for _, h := range probes(t, prev, next) {
			from, to := owner(prev, h), owner(next, h)
			for s, d := range deltas {
				wantLost := from != to && s == from
				wantGained := from != to && s == to
				if got := inRanges(d.Lost, h); got != wantLost {
					t.Fatalf("hash %#x (%q -> %q): in %s's lost = %v, want %v", h, from, to, s, got, wantLost)
				}
				if got := inRanges(d.Gained, h); got != wantGained {
					t.Fatalf("hash %#x (%q -> %q): in %s's gained = %v, want %v", h, from, to, s, got, wantGained)
				}
			}
			if from != to && to != "" && deltas[to].Gained == nil {
				t.Fatalf("hash %#x moved to %s, which has no gains", h, to)
			}
		}
	})
}

// A watcher that starts from the empty ring and applies each delta holds
// the current ring's ranges.
func TestReplayDeltasReproducesRing(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		cfg := drawSmallConfig(t)
		held := make(map[string][]Range)
		var prev *Ring
		steps := rapid.IntRange(1, 5).Draw(t, "steps")
		for i := range steps {
			next := mustRing(t, drawPoolWeights(t, fmt.Sprintf("ring%d", i)), cfg)
			for s, d := range Diff(prev, next) {
				held[s] = normalize(append(subtract(held[s], d.Lost), d.Gained...))
			}
			for j := range 6 {
				s := fmt.Sprintf("s%d", j)
				if got, want := held[s], next.Ranges(s); !slices.Equal(got, want) {
					t.Fatalf("step %d: replayed ranges of %s = %v, ring has %v", i, s, got, want)
				}
			}
			prev = next
		}
	})
}

func TestDiffEdges(t *testing.T) {
	r := mustRing(t, map[string]uint64{"a": 1, "b": 2}, RingConfig{Points: 8})
	empty := mustRing(t, nil, RingConfig{})
	tests := []struct {
		name       string
		prev, next *Ring
		want       map[string]Delta
	}{
		{"nil to nil", nil, nil, map[string]Delta{}},
		{"empty to nil", empty, nil, map[string]Delta{}},
		{"same ring", r, r, map[string]Delta{}},
		{"from nothing", nil, r, map[string]Delta{"a": {Gained: r.Ranges("a")}, "b": {Gained: r.Ranges("b")}}},
		{"to nothing", r, empty, map[string]Delta{"a": {Lost: r.Ranges("a")}, "b": {Lost: r.Ranges("b")}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Diff(tt.prev, tt.next)
			if !maps.EqualFunc(got, tt.want, func(a, b Delta) bool {
				return slices.Equal(a.Gained, b.Gained) && slices.Equal(a.Lost, b.Lost)
			}) {
				t.Errorf("Diff = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRangesOfOneServerCoverEverything(t *testing.T) {
	r := mustRing(t, map[string]uint64{"only": 1}, RingConfig{})
	if got, want := r.Ranges("only"), []Range{{0, math.MaxUint64}}; !slices.Equal(got, want) {
		t.Errorf("Ranges = %v, want %v", got, want)
	}
	if got := r.Ranges("other"); got != nil {
		t.Errorf("Ranges of a server not in the ring = %v, want nil", got)
	}
}
