package chash

import (
	"errors"
	"math"
	"testing"

	"pgregory.net/rapid"
)

type account struct {
	Region string
	ID     uint32
	Tags   map[string]int
	Parent *account
}

// userID has its own encoding, which the hash must use.
type userID uint64

func (u userID) AppendBinary(b []byte) ([]byte, error) { return append(b, 'u', byte(u)), nil }

// The encoding is a contract: values hash the same in every release.
func TestHashObjectIsPinned(t *testing.T) {
	tests := []struct {
		v    any
		want string
	}{
		{"k", "00000000000000016b"},
		{uint16(7), "0000000000000007"},
		{userID(3), "00000000000000027503"},
		{[]byte("ab"), "00000000000000026162"},
		{struct {
			A bool
			B []int8
		}{true, []int8{-1}}, "010000000000000001ffffffffffffffff"},
		{map[string]bool{"b": true, "a": false}, "0000000000000002" + "000000000000000161" + "00" + "000000000000000162" + "01"},
		{(*account)(nil), "00"},
	}
	for _, tt := range tests {
		b, err := AppendObject(nil, tt.v)
		if err != nil {
			t.Fatalf("%#v: %v", tt.v, err)
		}
		if got := hexOf(b); got != tt.want {
			t.Errorf("%#v encodes as %s, want %s", tt.v, got, tt.want)
		}
	}
}

func hexOf(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

// Equal values hash equally, however their maps were filled.
func TestHashObjectIgnoresMapOrder(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		keys := rapid.SliceOfNDistinct(rapid.String(), 0, 20, rapid.ID[string]).Draw(t, "keys")
		a := account{Region: rapid.String().Draw(t, "region"), ID: rapid.Uint32().Draw(t, "id"), Tags: map[string]int{}}
		b := a
		b.Tags = map[string]int{}
		for i, k := range keys {
			a.Tags[k] = i
		}
		for i := len(keys) - 1; i >= 0; i-- {
			b.Tags[keys[i]] = i
		}
		ha, errA := HashObject(a)
		hb, errB := HashObject(&b)
		if errA != nil || errB != nil {
			t.Fatal(errA, errB)
		}
		pa, _ := AppendObject(nil, &a)
		if hb != HashBytes(pa) || ha == 0 {
			t.Fatalf("equal accounts hash differently")
		}
	})
}

func TestHashObjectEqualFloats(t *testing.T) {
	if h1, _ := HashObject(math.Copysign(0, -1)); h1 != mustHash(t, 0.0) {
		t.Error("-0 and 0 hash differently")
	}
	if h1, _ := HashObject(math.NaN()); h1 != mustHash(t, math.Float64frombits(0x7ff8000000000001)) {
		t.Error("two NaNs hash differently")
	}
}

func mustHash(t *testing.T, v any) uint64 {
	h, err := HashObject(v)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestHashObjectRefusesWhatHasNoEncoding(t *testing.T) {
	cyclic := &account{}
	cyclic.Parent = cyclic
	for _, v := range []any{make(chan int), func() {}, cyclic, map[string]any{"f": func() {}}} {
		if _, err := HashObject(v); !errors.Is(err, ErrUnhashable) {
			t.Errorf("%T: %v, want ErrUnhashable", v, err)
		}
	}
}
