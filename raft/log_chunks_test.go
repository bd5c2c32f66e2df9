package raft

import (
	"reflect"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

// TestChunkedEntriesModel runs random appends, truncations, compactions
// and slices against a plain slice, across array boundaries, and checks
// that every slice handed out keeps its contents whatever follows.
func TestChunkedEntriesModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var c chunkedEntries
		var model []Entry
		type handed struct{ got, want []Entry }
		var out []handed
		next := uint64(1)
		newEntries := func(n int) []Entry {
			ents := make([]Entry, n)
			for i := range ents {
				ents[i] = Entry{Index: next, Term: next % 7, Data: []byte{byte(next)}}
				next++
			}
			return ents
		}
		for range rapid.IntRange(1, 40).Draw(t, "ops") {
			switch rapid.IntRange(0, 3).Draw(t, "op") {
			case 0:
				ents := newEntries(rapid.IntRange(0, 3*chunkLen/2).Draw(t, "append"))
				c.append(ents...)
				model = append(model, ents...)
			case 1:
				n := rapid.IntRange(0, len(model)).Draw(t, "truncate")
				c.truncate(n)
				model = model[:n:n]
			case 2:
				n := rapid.IntRange(0, len(model)).Draw(t, "dropFront")
				c.dropFront(n)
				model = model[n:]
			case 3:
				lo := rapid.IntRange(0, len(model)).Draw(t, "lo")
				hi := rapid.IntRange(lo, len(model)).Draw(t, "hi")
				got := c.slice(lo, hi)
				if cap(got) != len(got) {
					t.Fatalf("slice(%d, %d) has capacity %d beyond its length %d", lo, hi, cap(got), len(got))
				}
				out = append(out, handed{got, slices.Clone(model[lo:hi])})
			}
			if c.len() != len(model) {
				t.Fatalf("len = %d, want %d", c.len(), len(model))
			}
			for i := range model {
				if !reflect.DeepEqual(*c.at(i), model[i]) {
					t.Fatalf("at(%d) = %+v, want %+v", i, *c.at(i), model[i])
				}
			}
			for _, h := range out {
				if !reflect.DeepEqual(h.got, h.want) && len(h.want) > 0 {
					t.Fatalf("a slice handed out earlier changed: %v, want %v", h.got, h.want)
				}
			}
		}
	})
}
