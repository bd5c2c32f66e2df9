package rpc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

// point takes the binary fast path: *point implements
// encoding.BinaryAppender and encoding.BinaryUnmarshaler.
type point struct{ X, Y int64 }

func (p *point) AppendBinary(b []byte) ([]byte, error) {
	b = binary.BigEndian.AppendUint64(b, uint64(p.X))
	return binary.BigEndian.AppendUint64(b, uint64(p.Y)), nil
}

// MarshalBinary lets gob nest a point inside a record: gob decodes with
// UnmarshalBinary whenever it exists, so it must also encode with the
// matching method.
func (p *point) MarshalBinary() ([]byte, error) { return p.AppendBinary(nil) }

func (p *point) UnmarshalBinary(b []byte) error {
	if len(b) != 16 {
		return errors.New("point: want 16 bytes")
	}
	p.X = int64(binary.BigEndian.Uint64(b))
	p.Y = int64(binary.BigEndian.Uint64(b[8:]))
	return nil
}

// record takes the gob fallback.
type record struct {
	Name  string
	Tags  []string
	Count int
	Inner *point
}

func (r record) equal(o record) bool {
	same := (r.Inner == nil) == (o.Inner == nil) && (r.Inner == nil || *r.Inner == *o.Inner)
	return same && r.Name == o.Name && slices.Equal(r.Tags, o.Tags) && r.Count == o.Count
}

// TestCodecChoice checks which encoding each kind of type gets.
func TestCodecChoice(t *testing.T) {
	if c := newCodec[[]byte](); !c.raw {
		t.Error("[]byte: not raw")
	}
	if p, _ := newCodec[point]().encode(nil, point{1, 2}); len(p) != 16 {
		t.Errorf("point: %d bytes, want the 16 of AppendBinary", len(p))
	}
	if p, _ := newCodec[struct{}]().encode(nil, struct{}{}); len(p) != 0 {
		t.Errorf("struct{}: %d bytes, want 0", len(p))
	}
	if _, err := newCodec[struct{}]().decode([]byte{1}); err == nil {
		t.Error("struct{}: decoded a non-empty payload")
	}
	if p, _ := newCodec[record]().encode(nil, record{Name: "x"}); len(p) == 0 {
		t.Error("record: empty gob payload")
	}
}

// roundTrip encodes v through a scratch buffer and decodes it.
func roundTrip[T any](t *rapid.T, c codec[T], v T) T {
	var sp scratchPool
	p, buf, err := c.encodeScratch(&sp, v)
	if err != nil {
		t.Fatalf("encode: %v", err)
	}
	got, err := c.decode(bytes.Clone(p))
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	sp.put(buf)
	return got
}

// TestCodecRoundTrip checks that every value of each codec's types comes
// back unchanged.
func TestCodecRoundTrip(t *testing.T) {
	t.Run("raw", rapid.MakeCheck(func(t *rapid.T) {
		v := rapid.SliceOf(rapid.Byte()).Draw(t, "v")
		if got := roundTrip(t, newCodec[[]byte](), v); !bytes.Equal(got, v) {
			t.Fatalf("got %x, want %x", got, v)
		}
	}))
	t.Run("binary", rapid.MakeCheck(func(t *rapid.T) {
		v := point{rapid.Int64().Draw(t, "x"), rapid.Int64().Draw(t, "y")}
		if got := roundTrip(t, newCodec[point](), v); got != v {
			t.Fatalf("got %+v, want %+v", got, v)
		}
	}))
	t.Run("gob", rapid.MakeCheck(func(t *rapid.T) {
		v := genRecord(t)
		if got := roundTrip(t, newCodec[record](), v); !got.equal(v) {
			t.Fatalf("got %+v, want %+v", got, v)
		}
	}))
	t.Run("int", rapid.MakeCheck(func(t *rapid.T) {
		v := rapid.Int().Draw(t, "v")
		if got := roundTrip(t, newCodec[int](), v); got != v {
			t.Fatalf("got %d, want %d", got, v)
		}
	}))
	t.Run("uint16", rapid.MakeCheck(func(t *rapid.T) {
		v := rapid.Uint16().Draw(t, "v")
		if got := roundTrip(t, newCodec[uint16](), v); got != v {
			t.Fatalf("got %d, want %d", got, v)
		}
	}))
	t.Run("string", rapid.MakeCheck(func(t *rapid.T) {
		v := rapid.String().Draw(t, "v")
		if got := roundTrip(t, newCodec[string](), v); got != v {
			t.Fatalf("got %q, want %q", got, v)
		}
	}))
	t.Run("bool", rapid.MakeCheck(func(t *rapid.T) {
		v := rapid.Bool().Draw(t, "v")
		if got := roundTrip(t, newCodec[bool](), v); got != v {
			t.Fatalf("got %v, want %v", got, v)
		}
	}))
}

// Scalars have fixed, short encodings and refuse what does not fit.
func TestScalarCodecs(t *testing.T) {
	if p, _ := newCodec[string]().encode(nil, "ab"); string(p) != "ab" {
		t.Errorf("string: %q, want its bytes", p)
	}
	if p, _ := newCodec[int64]().encode(nil, -1); !bytes.Equal(p, []byte{1}) {
		t.Errorf("int64 -1: %x, want the zig-zag varint 01", p)
	}
	for name, err := range map[string]error{
		"int8 out of range":  second(newCodec[int8]().decode(binaryVarint(300))),
		"uint8 out of range": second(newCodec[uint8]().decode([]byte{0xac, 0x02})),
		"trailing bytes":     second(newCodec[uint64]().decode([]byte{1, 2})),
		"empty int":          second(newCodec[int]().decode(nil)),
		"bool of 2":          second(newCodec[bool]().decode([]byte{2})),
	} {
		if err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
}

func binaryVarint(v int64) []byte { return binary.AppendVarint(nil, v) }

func second[T any](_ T, err error) error { return err }

func genRecord(t *rapid.T) record {
	r := record{
		Name:  rapid.String().Draw(t, "name"),
		Tags:  rapid.SliceOf(rapid.String()).Draw(t, "tags"),
		Count: rapid.Int().Draw(t, "count"),
	}
	if rapid.Bool().Draw(t, "inner") {
		r.Inner = &point{rapid.Int64().Draw(t, "x"), rapid.Int64().Draw(t, "y")}
	}
	return r
}

// fuzzCodec checks that decoding b never panics and that what decodes
// survives another round trip.
func fuzzCodec[T any](t *testing.T, c codec[T], b []byte, equal func(a, b T) bool) {
	v, err := c.decode(b)
	if err != nil {
		return
	}
	p, err := c.encode(nil, v)
	if err != nil {
		t.Fatalf("re-encode of %+v: %v", v, err)
	}
	again, err := c.decode(p)
	if err != nil || !equal(again, v) {
		t.Fatalf("decode of re-encoded %+v: got %+v, %v", v, again, err)
	}
}

// FuzzCodecRaw fuzzes the raw []byte codec and the zero-size one.
func FuzzCodecRaw(f *testing.F) {
	f.Add([]byte("hello"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		fuzzCodec(t, newCodec[[]byte](), b, bytes.Equal)
		fuzzCodec(t, newCodec[struct{}](), b, func(a, b struct{}) bool { return true })
	})
}

// FuzzCodecScalar fuzzes the string, bool and integer codecs.
func FuzzCodecScalar(f *testing.F) {
	f.Add([]byte{0x80, 0x01})
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		fuzzCodec(t, newCodec[string](), b, func(a, b string) bool { return a == b })
		fuzzCodec(t, newCodec[bool](), b, func(a, b bool) bool { return a == b })
		fuzzCodec(t, newCodec[int32](), b, func(a, b int32) bool { return a == b })
		fuzzCodec(t, newCodec[uint64](), b, func(a, b uint64) bool { return a == b })
	})
}

// FuzzCodecBinary fuzzes the BinaryUnmarshaler path.
func FuzzCodecBinary(f *testing.F) {
	p, _ := (&point{3, -4}).AppendBinary(nil)
	f.Add(p)
	f.Fuzz(func(t *testing.T, b []byte) {
		fuzzCodec(t, newCodec[point](), b, func(a, b point) bool { return a == b })
	})
}

// FuzzCodecGob fuzzes the gob fallback with untrusted bytes.
func FuzzCodecGob(f *testing.F) {
	for _, r := range []record{{}, {Name: "n", Tags: []string{"a", "b"}, Count: -7, Inner: &point{1, 2}}} {
		p, _ := newCodec[record]().encode(nil, r)
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fuzzCodec(t, newCodec[record](), b, record.equal)
	})
}
