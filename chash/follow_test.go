package chash

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

// A watcher that replays its server's changes, from whenever it started
// watching, holds the server's ranges in the current ring; a ring
// watcher sees every version in order, none skipped; lookups read the
// newest version.
func TestFollowerWatchersReplayToTheCurrentRing(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		f, err := newFollower(drawSmallConfig(t))
		if err != nil {
			t.Fatal(err)
		}
		held := map[string][]Range{}  // what each server's watcher holds
		watching := map[string]bool{} // servers with a watcher
		var versions []uint64         // what the ring watcher saw
		var stops []func()
		watch := func(s string) {
			if watching[s] {
				return
			}
			watching[s] = true
			stops = append(stops, f.watchServer(s, func(c RangeChange) {
				if c.Server != s {
					t.Fatalf("a watcher of %s got a change of %s", s, c.Server)
				}
				held[s] = normalize(append(subtract(held[s], c.Lost), c.Gained...))
			}))
		}
		stops = append(stops, f.watchRing(func(c RingChange) { versions = append(versions, c.Version) }))
		steps := rapid.IntRange(1, 8).Draw(t, "steps")
		var n uint64
		for i := range steps {
			// Some watchers start before any version, some later.
			for s := range 6 {
				if rapid.Bool().Draw(t, fmt.Sprint("watch", i, s)) {
					watch(fmt.Sprintf("s%d", s))
				}
			}
			n += rapid.Uint64Range(1, 3).Draw(t, "gap")
			if err := f.apply(n, drawWeights(t, 0, 6), nil); err != nil {
				t.Fatal(err)
			}
		}
		ring, current := f.ring()
		if current != n {
			t.Fatalf("the ring is at version %d, want %d", current, n)
		}
		if versions[len(versions)-1] != n || !slices.IsSorted(versions) || len(versions) != steps {
			t.Fatalf("the ring watcher saw versions %v of %d, the last %d", versions, steps, n)
		}
		for s := range watching {
			if got, want := held[s], ring.Ranges(s); !slices.Equal(got, want) {
				t.Fatalf("the watcher of %s replayed to %v, the ring has %v", s, got, want)
			}
		}
		for _, h := range probes(t, ring) {
			got, _, _, err := f.lookup(h)
			if want, ok := ring.Lookup(h); ok != (err == nil) || got != want {
				t.Fatalf("lookup(%#x) = %q, %v; the ring says %q, %v", h, got, err, want, ok)
			}
		}
		for _, stop := range stops {
			stop()
		}
	})
}

func TestFollowerRefusesOldVersionsAndWorksEmpty(t *testing.T) {
	f, err := newFollower(RingConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := f.lookup(1); !errors.Is(err, ErrNoRing) {
		t.Errorf("lookup before any version: %v, want ErrNoRing", err)
	}
	if err := f.apply(5, map[string]uint64{"a": 1}, map[string]string{"a": "10.0.0.1:7000"}); err != nil {
		t.Fatal(err)
	}
	if s, addr, v, err := f.lookup(HashString("k")); s != "a" || addr != "10.0.0.1:7000" || v != 5 || err != nil {
		t.Errorf("lookup = %q, %q, %d, %v; want a at its address, version 5", s, addr, v, err)
	}
	if err := f.apply(4, map[string]uint64{"b": 1}, nil); !errors.Is(err, ErrStaleVersion) {
		t.Errorf("an older version: %v, want ErrStaleVersion", err)
	}
	if err := f.apply(6, nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := f.lookup(1); !errors.Is(err, ErrNoRing) {
		t.Errorf("lookup in an empty ring: %v, want ErrNoRing", err)
	}
}
