package sm

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/bifrost-go/bifrost/rpc"
)

// The entries come in the order of their keys' encodings, the order
// Keys and the snapshot use, which for integers (zig-zag varints) is not
// numeric order.
func TestMapEntriesOrderedByEncodedKey(t *testing.T) {
	t.Run("string", func(t *testing.T) {
		got := sortedEntriesOf(t, map[string]int{"b": 1, "ab": 2, "a": 3, "": 4})
		want := []Pair[string, int]{{"", 4}, {"a", 3}, {"ab", 2}, {"b", 1}}
		if !slices.Equal(got, want) {
			t.Errorf("entries %v, want %v", got, want)
		}
	})
	t.Run("int", func(t *testing.T) {
		got := sortedEntriesOf(t, map[int]string{2: "two", -1: "minus one", 0: "zero", 1: "one"})
		want := []Pair[int, string]{{0, "zero"}, {-1, "minus one"}, {1, "one"}, {2, "two"}}
		if !slices.Equal(got, want) {
			t.Errorf("entries %v, want %v", got, want)
		}
	})
	t.Run("empty", func(t *testing.T) {
		if got := sortedEntriesOf(t, map[string]string{}); len(got) != 0 {
			t.Errorf("entries %v, want none", got)
		}
	})
}

// sortedEntriesOf returns the entries of a map state holding m, and
// checks that their keys are those sortedKeys returns, in its order.
func sortedEntriesOf[K comparable, V any](t *testing.T, m map[K]V) []Pair[K, V] {
	t.Helper()
	st := &mapState[K, V]{kc: rpc.NewCodec[K](), vc: rpc.NewCodec[V](), m: maps.Clone(m)}
	entries, err := st.sortedEntries()
	if err != nil {
		t.Fatal(err)
	}
	keys, err := st.sortedKeys()
	if err != nil {
		t.Fatal(err)
	}
	var got []K
	for _, p := range entries {
		got = append(got, p.K)
	}
	if !slices.Equal(got, keys) {
		t.Errorf("entries ordered %v, keys %v", got, keys)
	}
	return entries
}

func TestMapEntries(t *testing.T) {
	g := newGroup(t, 3, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	c := g.client()
	if got, err := testMap.Entries(ctx, c); err != nil || len(got) != 0 {
		t.Fatalf("entries of the empty map: %v, %v", got, err)
	}
	for _, k := range []string{"c", "a", "b", "d"} {
		if _, _, err := testMap.Insert(ctx, c, k, k+"1"); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := testMap.Remove(ctx, c, "b"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := testMap.Insert(ctx, c, "a", "a2"); err != nil {
		t.Fatal(err)
	}
	want := []Pair[string, string]{{"a", "a2"}, {"c", "c1"}, {"d", "d1"}}
	// A follower read by the client that wrote waits for the writes: the
	// client passes the highest index it saw.
	for _, mode := range []ReadMode{Linearizable, Follower} {
		got, err := testMap.EntriesAs(ctx, c, mode)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("mode %v: entries %v, want %v", mode, got, want)
		}
	}
}

// A subscriber that reads the whole map and follows its changes from
// there holds the map: the pairs read, with the events applied, are
// what Entries reads once the writer stopped, each removal takes away
// the value the subscriber holds, and a stream opened in the middle of
// writes neither misses nor repeats one.
func TestMapReadAllAndOpenStartsWhereTheReadEnds(t *testing.T) {
	g := newGroup(t, 3, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	w, r := g.client(), g.client()
	writing, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; writing.Err() == nil; i++ {
			if err := writeMap(writing, w, i); err != nil && writing.Err() == nil {
				t.Errorf("write %d: %v", i, err)
				return
			}
		}
	})
	defer wg.Wait()
	defer stop()
	for round := range 4 {
		pairs, st, err := testMap.ReadAllAndOpen(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		m := mapOf(pairs)
		for i := range 10 {
			if err := follow(ctx, st, m); err != nil {
				t.Fatalf("round %d, change %d: %v", round, i, err)
			}
		}
		if round < 3 {
			st.Close(ctx)
			continue
		}
		stop()
		wg.Wait()
		final, err := testMap.Entries(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		for !maps.Equal(m, mapOf(final)) {
			if err := follow(ctx, st, m); err != nil {
				t.Fatalf("catching up with %v from %v: %v", final, m, err)
			}
		}
		st.Close(ctx)
	}
}

// writeMap makes the i-th change of the writer: on one of four keys, an
// insert of a value no other change writes, or now and then a removal.
func writeMap(ctx context.Context, c *Client, i int) error {
	k := fmt.Sprint("k", i%4)
	if i%5 == 4 {
		_, _, err := testMap.Remove(ctx, c, k)
		return err
	}
	_, _, err := testMap.Insert(ctx, c, k, fmt.Sprint(i))
	return err
}

// follow applies the next event of st to m.
func follow(ctx context.Context, st *Stream[MapChange[string, string]], m map[string]string) error {
	ev, err := st.Next(ctx)
	if err != nil {
		return err
	}
	ch := ev.Value
	if !ch.Removed {
		if old, ok := m[ch.K]; ok && old == ch.V {
			return fmt.Errorf("%q set to %q twice: a change seen twice", ch.K, ch.V)
		}
		m[ch.K] = ch.V
		return nil
	}
	if old, ok := m[ch.K]; !ok || old != ch.V {
		return fmt.Errorf("%q removed with %q, but it held %q (present: %t): a change lost or seen twice", ch.K, ch.V, old, ok)
	}
	delete(m, ch.K)
	return nil
}

func mapOf(pairs []Pair[string, string]) map[string]string {
	m := map[string]string{}
	for _, p := range pairs {
		m[p.K] = p.V
	}
	return m
}
