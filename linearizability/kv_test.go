package linearizability

import (
	"bytes"
	"errors"
	"maps"
	"testing"

	"github.com/bifrost-go/bifrost/sm"
)

func TestPairAndReadingRoundTrip(t *testing.T) {
	for _, want := range []Pair{{}, {Key: "k", Value: "v"}, {Key: "key with spaces", Value: string(make([]byte, 300))}} {
		b, _ := want.AppendBinary(nil)
		var got Pair
		if err := got.UnmarshalBinary(b); err != nil || got != want {
			t.Errorf("pair round trip: got %+v, %v; want %+v", got, err, want)
		}
	}
	for _, want := range []Reading{{}, {Value: "ab", Index: 7}, {Value: string(make([]byte, 300)), Index: 1 << 60}} {
		b, _ := want.AppendBinary(nil)
		var got Reading
		if err := got.UnmarshalBinary(b); err != nil || got != want {
			t.Errorf("reading round trip: got %+v, %v; want %+v", got, err, want)
		}
	}
}

func TestPairAndReadingRejectBadEncodings(t *testing.T) {
	pair, _ := Pair{Key: "k", Value: "v"}.AppendBinary(nil)
	reading, _ := Reading{Value: "v", Index: 300}.AppendBinary(nil)
	tests := map[string]struct {
		b []byte
		v interface{ UnmarshalBinary([]byte) error }
	}{
		"empty pair":          {nil, new(Pair)},
		"truncated pair":      {pair[:len(pair)-1], new(Pair)},
		"pair, trailing":      {append(pair[:len(pair):len(pair)], 0), new(Pair)},
		"pair, huge length":   {[]byte{0xff, 0xff, 0xff, 0xff, 0x0f}, new(Pair)},
		"empty reading":       {nil, new(Reading)},
		"truncated reading":   {reading[:len(reading)-1], new(Reading)},
		"reading, trailing":   {append(reading[:len(reading):len(reading)], 0), new(Reading)},
		"reading, bad length": {[]byte{5, 'v'}, new(Reading)},
	}
	for name, tt := range tests {
		if err := tt.v.UnmarshalBinary(tt.b); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: err = %v, want ErrCorrupt", name, err)
		}
	}
}

func TestKVAppliesPutAndAppend(t *testing.T) {
	kv := NewKV()
	kv.append(nil, Pair{Key: "x", Value: "a"})
	kv.append(nil, Pair{Key: "x", Value: "b"})
	kv.put(nil, Pair{Key: "y", Value: "c"})
	kv.append(nil, Pair{Key: "y", Value: "d"})
	if r, _ := kv.get(&sm.Read{Applied: 4}, "x"); r != (Reading{Value: "ab", Index: 4}) {
		t.Errorf("get x: %+v", r)
	}
	if r, _ := kv.get(&sm.Read{Applied: 4}, "z"); r != (Reading{Index: 4}) {
		t.Errorf("get of a missing key: %+v", r)
	}
	kv.put(nil, Pair{Key: "x", Value: "e"})
	if got, want := kv.Data(), map[string]string{"x": "e", "y": "cd"}; !maps.Equal(got, want) {
		t.Errorf("data %v, want %v", got, want)
	}
}

func TestKVSnapshotIsDeterministic(t *testing.T) {
	a, b := NewKV(), NewKV()
	pairs := []Pair{{"x", "1"}, {"y", "2"}, {"z", "3"}, {"w", ""}}
	for i := range pairs {
		a.put(nil, pairs[i])
		b.put(nil, pairs[len(pairs)-1-i])
	}
	snapA, _ := a.Snapshot()
	snapB, _ := b.Snapshot()
	if !bytes.Equal(snapA, snapB) {
		t.Fatalf("equal states encode differently:\n%x\n%x", snapA, snapB)
	}
	restored := NewKV()
	restored.put(nil, Pair{"stale", "gone"})
	if err := restored.Restore(snapA); err != nil {
		t.Fatalf("restore: %v", err)
	}
	if !maps.Equal(restored.Data(), a.Data()) {
		t.Errorf("restored %v, want %v", restored.Data(), a.Data())
	}
	if err := restored.Restore(nil); err != nil || len(restored.Data()) != 0 {
		t.Errorf("restore of nil: %v, %v; want the empty store", restored.Data(), err)
	}
	if err := NewKV().Restore(snapA[:len(snapA)-1]); !errors.Is(err, ErrCorrupt) {
		t.Errorf("restore of a truncated snapshot: %v, want ErrCorrupt", err)
	}
}

func TestHistoryOrdersOperations(t *testing.T) {
	var h History
	a := h.Invoke(0, Input{Kind: OpPut, Key: "x", Value: "1"})
	h.Return(a, "")
	b := h.Invoke(1, Input{Kind: OpGet, Key: "x"})
	c := h.Invoke(2, Input{Kind: OpGet, Key: "x"})
	h.Return(c, "1")
	h.Annotate(c, "on 1")
	ops := h.Operations()
	if ops[a].Return >= ops[b].Call {
		t.Errorf("an operation that returned before another was called does not precede it: %+v %+v", ops[a], ops[b])
	}
	if !ops[b].Pending || ops[c].Pending || ops[c].Output != "1" || ops[c].Detail != "on 1" {
		t.Errorf("recorded %+v", ops)
	}
}

func FuzzPairDecode(f *testing.F) {
	f.Add([]byte{1, 'k', 1, 'v'})
	f.Add([]byte{0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		var p Pair
		if p.UnmarshalBinary(b) != nil {
			return
		}
		var again Pair
		enc, _ := p.AppendBinary(nil)
		if err := again.UnmarshalBinary(enc); err != nil || again != p {
			t.Errorf("re-encoding %+v: got %+v, %v", p, again, err)
		}
	})
}

func FuzzReadingDecode(f *testing.F) {
	f.Add([]byte{1, 'v', 7})
	f.Add([]byte{0, 0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		var r Reading
		if r.UnmarshalBinary(b) != nil {
			return
		}
		var again Reading
		enc, _ := r.AppendBinary(nil)
		if err := again.UnmarshalBinary(enc); err != nil || again != r {
			t.Errorf("re-encoding %+v: got %+v, %v", r, again, err)
		}
	})
}

func FuzzKVRestore(f *testing.F) {
	kv := NewKV()
	kv.put(nil, Pair{Key: "k", Value: "v"})
	snap, _ := kv.Snapshot()
	f.Add(snap)
	f.Fuzz(func(t *testing.T, b []byte) {
		restored := NewKV()
		if restored.Restore(b) != nil {
			return
		}
		// What restores, snapshots again to a state that restores the same.
		again, _ := restored.Snapshot()
		other := NewKV()
		if err := other.Restore(again); err != nil || !maps.Equal(other.Data(), restored.Data()) {
			t.Errorf("restore of %x gave %v; its snapshot restores as %v, %v", b, restored.Data(), other.Data(), err)
		}
	})
}
