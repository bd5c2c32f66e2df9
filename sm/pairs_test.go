package sm

import (
	"errors"
	"reflect"
	"testing"

	"pgregory.net/rapid"
)

// roundTrips checks that v survives its codec.
func roundTrips[T any](t *rapid.T, v T) {
	c := codecOf[T]()
	p, err := c.Append(nil, v)
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Decode(p)
	if err != nil || !reflect.DeepEqual(got, v) {
		t.Fatalf("%+v came back as %+v, %v", v, got, err)
	}
}

func TestCompoundCodecsRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		k, v, w := rapid.String().Draw(t, "k"), rapid.String().Draw(t, "v"), rapid.Int64().Draw(t, "w")
		roundTrips(t, Pair[string, string]{k, v})
		roundTrips(t, Pair[string, int64]{k, w})
		roundTrips(t, Found[string]{V: v, Found: true})
		roundTrips(t, Found[int64]{})
		roundTrips(t, MapSwap[string, string]{K: k, Old: v, New: k + v})
		roundTrips(t, Change[int64]{Old: w, New: -w})
		roundTrips(t, Change[string]{Old: k, New: v})
	})
}

// What a client or the log hands a built-in decodes or fails cleanly.
func FuzzCompoundCodecs(f *testing.F) {
	p, _ := codecOf[Pair[string, string]]().Append(nil, Pair[string, string]{"k", "v"})
	f.Add(p)
	f.Add([]byte{1, 'x'})
	f.Fuzz(func(t *testing.T, b []byte) {
		check := func(err error) {
			if err != nil && !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
		}
		_, err := codecOf[Pair[string, string]]().Decode(b)
		check(err)
		_, err = codecOf[Found[int64]]().Decode(b)
		check(err)
		_, err = codecOf[MapSwap[string, []byte]]().Decode(b)
		check(err)
		_, err = codecOf[Change[int64]]().Decode(b)
		check(err)
	})
}
