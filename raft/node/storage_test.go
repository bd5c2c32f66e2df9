package node

import (
	"reflect"
	"testing"

	"github.com/bifrost-go/bifrost/raft"
	"pgregory.net/rapid"
)

// TestMemoryStorageModel runs random saves (appending or replacing a
// suffix) and compactions against a plain slice, across the storage's
// array boundaries, and checks that Load returns what the model holds.
func TestMemoryStorageModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := NewMemoryStorage()
		var model []raft.Entry // the entries after offset
		var offset uint64
		var term uint64 // of the last save
		for range rapid.IntRange(1, 30).Draw(t, "ops") {
			last := offset + uint64(len(model))
			if rapid.IntRange(0, 3).Draw(t, "op") == 0 {
				index := rapid.Uint64Range(0, last+5).Draw(t, "compact")
				if err := s.Compact(index); err != nil {
					t.Fatal(err)
				}
				switch {
				case index <= offset:
				case index >= last:
					model, offset = nil, index
				default:
					model, offset = model[index-offset:], index
				}
				continue
			}
			from := rapid.Uint64Range(offset+1, last+1).Draw(t, "from")
			n := rapid.IntRange(0, 3*memChunk/2).Draw(t, "n")
			term++
			ents := make([]raft.Entry, n)
			for i := range ents {
				ents[i] = raft.Entry{Index: from + uint64(i), Term: term, Data: []byte{byte(i)}}
			}
			if err := s.Save(raft.HardState{Term: term}, ents); err != nil {
				t.Fatal(err)
			}
			if n > 0 {
				model = append(model[:from-offset-1:from-offset-1], ents...)
			}
		}
		hs, got, err := s.Load()
		if err != nil || hs.Term != term {
			t.Fatalf("Load: hard state %+v, err %v; want term %d", hs, err, term)
		}
		if len(got) != len(model) || len(model) > 0 && !reflect.DeepEqual(got, model) {
			t.Fatalf("Load returned %d entries, want %d (offset %d)", len(got), len(model), offset)
		}
	})
}

func TestMemoryStorageRefusesGap(t *testing.T) {
	s := NewMemoryStorage()
	if err := s.Save(raft.HardState{}, []raft.Entry{{Index: 2, Term: 1}}); err == nil {
		t.Fatal("Save of entry 2 into an empty storage succeeded, want an error")
	}
}
