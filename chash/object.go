package chash

import (
	"bytes"
	"encoding"
	"encoding/binary"
	"fmt"
	"math"
	"reflect"
	"slices"
	"sync"
)

// An object is placed on the ring by the hash of a deterministic
// encoding of its value: the same value gives the same bytes in every
// process, on every platform and in every release, so every client puts
// it on the same server. A value with its own binary encoding
// (encoding.BinaryAppender, else encoding.BinaryMarshaler) is hashed by
// that; any other value by its structure: fixed-width integers and
// floats, length-prefixed strings, slices and maps, struct fields in
// declaration order, map entries sorted by their encoded keys. Gob or
// fmt would not do: their output depends on history (gob's type ids)
// or on formatting choices that may change.

// ErrUnhashable reports a value with no deterministic encoding: a
// channel, a function, an unsafe pointer, or a pointer cycle.
var ErrUnhashable = fmt.Errorf("chash: value has no deterministic encoding")

// maxDepth bounds nesting, so a pointer cycle fails instead of looping.
const maxDepth = 64

var encodeBufs = sync.Pool{New: func() any { return new([]byte) }}

// HashObject returns the ring's hash of v's deterministic encoding.
func HashObject(v any) (uint64, error) {
	bp := encodeBufs.Get().(*[]byte)
	defer encodeBufs.Put(bp)
	b, err := AppendObject((*bp)[:0], v)
	*bp = b
	if err != nil {
		return 0, err
	}
	return HashBytes(b), nil
}

// AppendObject appends v's deterministic encoding to b.
func AppendObject(b []byte, v any) ([]byte, error) {
	return appendValue(b, reflect.ValueOf(v), 0)
}

var (
	appenderType  = reflect.TypeFor[encoding.BinaryAppender]()
	marshalerType = reflect.TypeFor[encoding.BinaryMarshaler]()
)

func appendValue(b []byte, v reflect.Value, depth int) ([]byte, error) {
	if depth > maxDepth {
		return b, fmt.Errorf("%w: nested deeper than %d", ErrUnhashable, maxDepth)
	}
	if !v.IsValid() {
		return append(b, 0), nil // a nil interface
	}
	if own, ok, err := appendOwn(b, v); ok {
		return own, err
	}
	switch v.Kind() {
	case reflect.Bool:
		return append(b, boolByte(v.Bool())), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return binary.BigEndian.AppendUint64(b, uint64(v.Int())), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return binary.BigEndian.AppendUint64(b, v.Uint()), nil
	case reflect.Float32, reflect.Float64:
		return binary.BigEndian.AppendUint64(b, math.Float64bits(canonicalFloat(v.Float()))), nil
	case reflect.Complex64, reflect.Complex128:
		c := v.Complex()
		b = binary.BigEndian.AppendUint64(b, math.Float64bits(canonicalFloat(real(c))))
		return binary.BigEndian.AppendUint64(b, math.Float64bits(canonicalFloat(imag(c)))), nil
	case reflect.String:
		return appendLen(b, v.Len(), v.String()), nil
	case reflect.Slice, reflect.Array:
		return appendSeq(b, v, depth)
	case reflect.Map:
		return appendMap(b, v, depth)
	case reflect.Struct:
		for i := range v.NumField() {
			var err error
			if b, err = appendValue(b, v.Field(i), depth+1); err != nil {
				return b, err
			}
		}
		return b, nil
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return append(b, 0), nil
		}
		return appendValue(append(b, 1), v.Elem(), depth+1)
	}
	return b, fmt.Errorf("%w: %s", ErrUnhashable, v.Type())
}

// appendOwn appends v's own binary encoding, if its type has one.
func appendOwn(b []byte, v reflect.Value) ([]byte, bool, error) {
	if !v.CanInterface() || v.Kind() == reflect.Pointer && v.IsNil() {
		return b, false, nil
	}
	t := v.Type()
	switch {
	case t.Implements(appenderType):
		enc, err := v.Interface().(encoding.BinaryAppender).AppendBinary(nil)
		return appendLen(b, len(enc), string(enc)), true, err
	case t.Implements(marshalerType):
		enc, err := v.Interface().(encoding.BinaryMarshaler).MarshalBinary()
		return appendLen(b, len(enc), string(enc)), true, err
	}
	return b, false, nil
}

func appendSeq(b []byte, v reflect.Value, depth int) ([]byte, error) {
	if v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Uint8 {
		return appendLen(b, v.Len(), string(v.Bytes())), nil
	}
	b = binary.BigEndian.AppendUint64(b, uint64(v.Len()))
	for i := range v.Len() {
		var err error
		if b, err = appendValue(b, v.Index(i), depth+1); err != nil {
			return b, err
		}
	}
	return b, nil
}

// appendMap encodes a map's entries in the order of their encoded keys.
func appendMap(b []byte, v reflect.Value, depth int) ([]byte, error) {
	type entry struct{ k, v []byte }
	entries := make([]entry, 0, v.Len())
	for it := v.MapRange(); it.Next(); {
		k, err := appendValue(nil, it.Key(), depth+1)
		if err != nil {
			return b, err
		}
		e, err := appendValue(nil, it.Value(), depth+1)
		if err != nil {
			return b, err
		}
		entries = append(entries, entry{k, e})
	}
	slices.SortFunc(entries, func(x, y entry) int { return bytes.Compare(x.k, y.k) })
	b = binary.BigEndian.AppendUint64(b, uint64(len(entries)))
	for _, e := range entries {
		b = append(append(b, e.k...), e.v...)
	}
	return b, nil
}

func appendLen(b []byte, n int, s string) []byte {
	return append(binary.BigEndian.AppendUint64(b, uint64(n)), s...)
}

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}

// canonicalFloat makes the values that compare equal encode equally: -0
// as 0, every NaN as one NaN.
func canonicalFloat(f float64) float64 {
	switch {
	case f == 0:
		return 0
	case math.IsNaN(f):
		return math.NaN()
	}
	return f
}
