package chash

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"sync"
	"testing"

	"pgregory.net/rapid"
)

// equalWeights returns n servers "node-0".. of weight 1.
func equalWeights(n int) map[string]uint64 {
	w := make(map[string]uint64, n)
	for i := range n {
		w[fmt.Sprintf("node-%d", i)] = 1
	}
	return w
}

// fataler is what mustRing needs of a *testing.T, *testing.B or *rapid.T.
type fataler interface {
	Helper()
	Fatalf(format string, args ...any)
}

func mustRing(t fataler, w map[string]uint64, cfg RingConfig) *Ring {
	t.Helper()
	r, err := NewRing(w, cfg)
	if err != nil {
		t.Fatalf("NewRing: %v", err)
	}
	return r
}

func TestNewRingErrors(t *testing.T) {
	tests := []struct {
		name    string
		weights map[string]uint64
		cfg     RingConfig
		want    error
	}{
		{"zero weight", map[string]uint64{"a": 1, "b": 0}, RingConfig{}, ErrZeroWeight},
		{"empty name", map[string]uint64{"": 1, "b": 1}, RingConfig{}, ErrEmptyName},
		{"negative points", map[string]uint64{"a": 1}, RingConfig{Points: -1}, ErrInvalidConfig},
		{"negative floor", map[string]uint64{"a": 1}, RingConfig{MinPoints: -1}, ErrInvalidConfig},
		{"fixed unit too small", map[string]uint64{"a": 1 << 40}, RingConfig{Unit: 1}, ErrRingTooLarge},
		{"floor too big", equalWeights(2), RingConfig{MinPoints: maxRingPoints}, ErrRingTooLarge},
		{"too many servers", equalWeights(maxServers + 1), RingConfig{Points: 1, MinPoints: 1}, ErrRingTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := NewRing(tt.weights, tt.cfg)
			if !errors.Is(err, tt.want) {
				t.Fatalf("NewRing error = %v, want %v", err, tt.want)
			}
			if r != nil {
				t.Errorf("NewRing returned a ring with error %v", err)
			}
		})
	}
}

func TestZeroWeightErrorNamesServer(t *testing.T) {
	_, err := NewRing(map[string]uint64{"cache-7": 0}, RingConfig{})
	if got, want := err.Error(), `chash: zero weight: server "cache-7"`; got != want {
		t.Errorf("error = %q, want %q", got, want)
	}
}

func TestEmptyRing(t *testing.T) {
	for _, w := range []map[string]uint64{nil, {}} {
		r := mustRing(t, w, RingConfig{})
		if s, ok := r.Lookup(42); ok || s != "" {
			t.Errorf("Lookup on empty ring = %q, %v, want \"\", false", s, ok)
		}
		if s, ok := r.LookupString("k"); ok || s != "" {
			t.Errorf("LookupString on empty ring = %q, %v, want \"\", false", s, ok)
		}
		if got := r.Servers(); len(got) != 0 {
			t.Errorf("Servers = %v, want none", got)
		}
		if got := r.Ranges("a"); got != nil {
			t.Errorf("Ranges = %v, want nil", got)
		}
	}
}

func TestServersSorted(t *testing.T) {
	r := mustRing(t, map[string]uint64{"c": 1, "a": 2, "b": 3}, RingConfig{})
	if got, want := r.Servers(), []string{"a", "b", "c"}; !slices.Equal(got, want) {
		t.Errorf("Servers = %v, want %v", got, want)
	}
	r.Servers()[0] = "x"
	if got := r.Servers()[0]; got != "a" {
		t.Errorf("Servers after changing a returned slice = %q, want the ring unchanged", got)
	}
}

func TestPointCounts(t *testing.T) {
	tests := []struct {
		name    string
		weights map[string]uint64
		cfg     RingConfig
		want    map[string]int
	}{
		{"equal", map[string]uint64{"a": 1, "b": 1}, RingConfig{}, map[string]int{"a": 512, "b": 512}},
		{"unit is power of two below heaviest", map[string]uint64{"a": 1, "b": 2, "c": 3},
			RingConfig{}, map[string]int{"a": 256, "b": 512, "c": 768}},
		{"floor", map[string]uint64{"light": 1, "heavy": 1024}, RingConfig{},
			map[string]int{"light": 64, "heavy": 512}},
		{"huge weights", map[string]uint64{"a": 1 << 40, "b": 2 << 40, "c": 3 << 40},
			RingConfig{}, map[string]int{"a": 256, "b": 512, "c": 768}},
		{"largest weights", map[string]uint64{"a": math.MaxUint64, "b": math.MaxUint64 / 2},
			RingConfig{}, map[string]int{"a": 1024, "b": 512}},
		{"fixed unit", map[string]uint64{"a": 1, "b": 3}, RingConfig{Unit: 4, Points: 10, MinPoints: 1},
			map[string]int{"a": 3, "b": 8}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustRing(t, tt.weights, tt.cfg)
			total := 0
			for s, want := range tt.want {
				if got := r.pointsOf(s); got != want {
					t.Errorf("points of %s = %d, want %d", s, got, want)
				}
				total += want
			}
			if got := len(r.points); got != total {
				t.Errorf("ring has %d points, want %d", got, total)
			}
		})
	}
}

// Lookups of a fixed ring are part of the contract: members running
// different releases must agree.
func TestLookupVectors(t *testing.T) {
	r := mustRing(t, map[string]uint64{"a": 1, "b": 1, "c": 2}, RingConfig{})
	if got, want := r.Fingerprint(), uint64(0x76f43318b622ab25); got != want {
		t.Errorf("Fingerprint = %#016x, want %#016x", got, want)
	}
	tests := []struct{ key, want string }{
		{"user:1", "b"}, {"user:2", "b"}, {"user:3", "c"}, {"user:42", "c"}, {"cart:7", "b"},
	}
	for _, tt := range tests {
		if got, _ := r.LookupString(tt.key); got != tt.want {
			t.Errorf("LookupString(%q) = %q, want %q", tt.key, got, tt.want)
		}
	}
}

// Rings built from the same weights are identical whatever order the
// weights were inserted in.
func TestRingIndependentOfInsertionOrder(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		w := drawWeights(t, 1, 12)
		names := slices.Sorted(maps.Keys(w))
		perm := rapid.Permutation(names).Draw(t, "order")
		w2 := make(map[string]uint64, len(w))
		for _, name := range perm {
			w2[name] = w[name]
		}
		cfg := RingConfig{Points: 32, MinPoints: 4}
		a, b := mustRing(t, w, cfg), mustRing(t, w2, cfg)
		if a.Fingerprint() != b.Fingerprint() {
			t.Fatalf("fingerprints differ: %#x, %#x", a.Fingerprint(), b.Fingerprint())
		}
		if !slices.Equal(a.points, b.points) || !slices.Equal(a.index.owners, b.index.owners) ||
			!slices.Equal(a.index.lines, b.index.lines) {
			t.Fatalf("points or owners differ")
		}
	})
}

// Different rings have different fingerprints.
func TestFingerprintDistinguishesRings(t *testing.T) {
	base := map[string]uint64{"a": 1, "b": 2}
	tests := []struct {
		name    string
		weights map[string]uint64
		cfg     RingConfig
	}{
		{"weight", map[string]uint64{"a": 2, "b": 2}, RingConfig{}},
		{"server", map[string]uint64{"a": 1, "c": 2}, RingConfig{}},
		{"points", base, RingConfig{Points: 100}},
		{"empty", nil, RingConfig{}},
	}
	fp := mustRing(t, base, RingConfig{}).Fingerprint()
	for _, tt := range tests {
		if got := mustRing(t, tt.weights, tt.cfg).Fingerprint(); got == fp {
			t.Errorf("%s: fingerprint %#x equals the base ring's", tt.name, got)
		}
	}
}

// Equal positions are ordered by owner, so the server first by name owns
// a tied position.
func TestPlacePointsOrdersTiesByName(t *testing.T) {
	pts := placePoints([]string{"a", "b", "c"}, []int{64, 64, 64})
	if !slices.IsSortedFunc(pts, func(x, y point) int {
		if x.hash != y.hash {
			return cmp.Compare(x.hash, y.hash)
		}
		return cmp.Compare(x.owner, y.owner)
	}) {
		t.Fatal("points not sorted by position then owner")
	}
	r := &Ring{servers: []string{"a", "b"}, points: []uint64{10, 10, 20}}
	r.index = newLookupTable(r.points, []uint16{0, 1, 1})
	if got, _ := r.Lookup(5); got != "a" {
		t.Errorf("owner of a tied position = %q, want the first by name, a", got)
	}
}

func TestLookupDoesNotAllocate(t *testing.T) {
	r := mustRing(t, equalWeights(10), RingConfig{})
	var sink int
	if got := testing.AllocsPerRun(100, func() {
		s, _ := r.Lookup(12345)
		sink += len(s)
	}); got != 0 {
		t.Errorf("Lookup allocates %v times, want 0", got)
	}
	if got := testing.AllocsPerRun(100, func() {
		s, _ := r.LookupString("user:42")
		sink += len(s)
	}); got != 0 {
		t.Errorf("LookupString allocates %v times, want 0", got)
	}
	// A point's own hash ties with its key and takes the binary search.
	if _, searched := r.index.owner(r.points[7]); !searched {
		t.Fatal("lookup of a point's hash did not take the binary search")
	}
	if got := testing.AllocsPerRun(100, func() {
		s, _ := r.Lookup(r.points[7])
		sink += len(s)
	}); got != 0 {
		t.Errorf("Lookup by binary search allocates %v times, want 0", got)
	}
}

// Concurrent readers of one ring agree with a single reader (and the race
// detector sees no write).
func TestConcurrentLookups(t *testing.T) {
	r := mustRing(t, equalWeights(20), RingConfig{})
	want := make([]string, 1000)
	for i := range want {
		want[i], _ = r.Lookup(uint64(i) * 0x9e3779b97f4a7c15)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			for i := range want {
				if got, _ := r.Lookup(uint64(i) * 0x9e3779b97f4a7c15); got != want[i] {
					errs <- fmt.Errorf("lookup %d = %q, want %q", i, got, want[i])
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// drawWeights draws between lo and hi servers named "s0".. with weights
// from 1 to 16.
func drawWeights(t *rapid.T, lo, hi int) map[string]uint64 {
	n := rapid.IntRange(lo, hi).Draw(t, "servers")
	w := make(map[string]uint64, n)
	for i := range n {
		w[fmt.Sprintf("s%d", i)] = rapid.Uint64Range(1, 16).Draw(t, fmt.Sprintf("weight%d", i))
	}
	return w
}

// benchKeys are the keys every lookup benchmark uses, here and in
// bench/peers: more than the caches hold rings for, so lookups pay for
// the ring's size as real traffic does.
func benchKeys() ([]string, []uint64) {
	keys := make([]string, 1<<16)
	hashes := make([]uint64, len(keys))
	for i := range keys {
		keys[i] = fmt.Sprintf("key-%d", i)
		hashes[i] = HashString(keys[i])
	}
	return keys, hashes
}

func BenchmarkLookup(b *testing.B) {
	keys, hashes := benchKeys()
	mask := len(keys) - 1
	for _, n := range []int{10, 100, 1000} {
		r := mustRing(b, equalWeights(n), RingConfig{})
		b.Run(fmt.Sprintf("hash/servers=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			var sink int
			for i := 0; b.Loop(); i++ {
				s, _ := r.Lookup(hashes[i&mask])
				sink += len(s)
			}
		})
		b.Run(fmt.Sprintf("string/servers=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			var sink int
			for i := 0; b.Loop(); i++ {
				s, _ := r.LookupString(keys[i&mask])
				sink += len(s)
			}
		})
		b.Run(fmt.Sprintf("parallel/servers=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				var sink int
				for i := 0; pb.Next(); i++ {
					s, _ := r.Lookup(hashes[i&mask])
					sink += len(s)
				}
			})
		})
	}
}

func BenchmarkNewRing(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		w := equalWeights(n)
		b.Run(fmt.Sprintf("servers=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				mustRing(b, w, RingConfig{})
			}
		})
	}
}
