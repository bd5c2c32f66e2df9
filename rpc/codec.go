package rpc

import (
	"bytes"
	"encoding"
	"encoding/binary"
	"encoding/gob"
	"fmt"
	"reflect"
	"sync"
)

// codec encodes and decodes values of one type for the wire. It is built
// once per method, so choosing an encoding costs nothing per call.
//
// The encodings, tried in order:
//   - []byte is the payload itself, with no copy on decode;
//   - string is its bytes; bool one byte; the integer types a varint
//     (signed ones zig-zag);
//   - a type T whose pointer implements encoding.BinaryAppender and
//     encoding.BinaryUnmarshaler uses those methods;
//   - anything else uses encoding/gob, one self-describing value per
//     payload (zero-size types such as struct{} encode as no bytes).
type codec[T any] struct {
	// encode returns the payload for v, appending to dst when it needs
	// storage. The raw codec returns v itself.
	encode func(dst []byte, v T) ([]byte, error)
	// decode returns the value in p. The raw codec returns p itself, so
	// p must not be reused afterwards.
	decode func(p []byte) (T, error)
	// raw is true when encode needs no scratch buffer.
	raw bool
}

// binaryValue is the fast-path pair of interfaces, implemented by *T.
type binaryValue interface {
	encoding.BinaryAppender
	encoding.BinaryUnmarshaler
}

// newCodec picks the encoding for T.
func newCodec[T any]() codec[T] {
	var zero T
	if _, ok := any(zero).([]byte); ok {
		return any(rawCodec()).(codec[T])
	}
	if c, ok := scalarCodec[T](); ok {
		return c
	}
	if _, ok := any(&zero).(binaryValue); ok {
		return binaryCodec[T]()
	}
	if reflect.TypeFor[T]().Size() == 0 {
		return emptyCodec[T]()
	}
	return gobCodec[T]()
}

// rawCodec passes []byte payloads through untouched.
func rawCodec() codec[[]byte] {
	return codec[[]byte]{
		encode: func(_ []byte, v []byte) ([]byte, error) { return v, nil },
		decode: func(p []byte) ([]byte, error) { return p, nil },
		raw:    true,
	}
}

// scalarCodec returns the codec of a string, bool or integer type T.
func scalarCodec[T any]() (codec[T], bool) {
	var c any
	switch any(*new(T)).(type) {
	case string:
		c = stringCodec()
	case bool:
		c = boolCodec()
	case int:
		c = signedCodec[int]()
	case int8:
		c = signedCodec[int8]()
	case int16:
		c = signedCodec[int16]()
	case int32:
		c = signedCodec[int32]()
	case int64:
		c = signedCodec[int64]()
	case uint:
		c = unsignedCodec[uint]()
	case uint8:
		c = unsignedCodec[uint8]()
	case uint16:
		c = unsignedCodec[uint16]()
	case uint32:
		c = unsignedCodec[uint32]()
	case uint64:
		c = unsignedCodec[uint64]()
	default:
		return codec[T]{}, false
	}
	return c.(codec[T]), true
}

func stringCodec() codec[string] {
	return codec[string]{
		encode: func(dst []byte, v string) ([]byte, error) { return append(dst, v...), nil },
		decode: func(p []byte) (string, error) { return string(p), nil },
	}
}

func boolCodec() codec[bool] {
	return codec[bool]{
		encode: func(dst []byte, v bool) ([]byte, error) {
			if v {
				return append(dst, 1), nil
			}
			return append(dst, 0), nil
		},
		decode: func(p []byte) (bool, error) {
			if len(p) != 1 || p[0] > 1 {
				return false, fmt.Errorf("rpc: %d bytes are no bool", len(p))
			}
			return p[0] == 1, nil
		},
	}
}

func signedCodec[T int | int8 | int16 | int32 | int64]() codec[T] {
	return codec[T]{
		encode: func(dst []byte, v T) ([]byte, error) { return binary.AppendVarint(dst, int64(v)), nil },
		decode: func(p []byte) (T, error) {
			v, n := binary.Varint(p)
			if n <= 0 || n != len(p) || int64(T(v)) != v {
				return 0, fmt.Errorf("rpc: %d bytes are no %T", len(p), T(0))
			}
			return T(v), nil
		},
	}
}

func unsignedCodec[T uint | uint8 | uint16 | uint32 | uint64]() codec[T] {
	return codec[T]{
		encode: func(dst []byte, v T) ([]byte, error) { return binary.AppendUvarint(dst, uint64(v)), nil },
		decode: func(p []byte) (T, error) {
			v, n := binary.Uvarint(p)
			if n <= 0 || n != len(p) || uint64(T(v)) != v {
				return 0, fmt.Errorf("rpc: %d bytes are no %T", len(p), T(0))
			}
			return T(v), nil
		},
	}
}

// binaryCodec uses the methods of *T. The methods need a *T, and taking
// the address of a value would move it to the heap on every call, so
// each codec keeps a pool of boxes to call them on.
func binaryCodec[T any]() codec[T] {
	var boxes sync.Pool
	box := func() *T {
		if b, ok := boxes.Get().(*T); ok {
			return b
		}
		return new(T)
	}
	release := func(b *T) {
		var zero T
		*b = zero // drop what the value points to
		boxes.Put(b)
	}
	return codec[T]{
		encode: func(dst []byte, v T) ([]byte, error) {
			b := box()
			*b = v
			p, err := any(b).(encoding.BinaryAppender).AppendBinary(dst)
			release(b)
			return p, err
		},
		decode: func(p []byte) (T, error) {
			b := box()
			err := any(b).(encoding.BinaryUnmarshaler).UnmarshalBinary(p)
			v := *b
			release(b)
			return v, err
		},
	}
}

// emptyCodec encodes a zero-size type as an empty payload; gob refuses
// structs without exported fields, and there is nothing to send anyway.
func emptyCodec[T any]() codec[T] {
	return codec[T]{
		encode: func(dst []byte, _ T) ([]byte, error) { return dst, nil },
		decode: func(p []byte) (T, error) {
			var v T
			if len(p) != 0 {
				return v, fmt.Errorf("%d bytes for a zero-size type", len(p))
			}
			return v, nil
		},
		raw: true,
	}
}

// gobCodec is the fallback: one gob stream per payload.
func gobCodec[T any]() codec[T] {
	return codec[T]{
		encode: func(dst []byte, v T) ([]byte, error) {
			b := bytes.NewBuffer(dst)
			err := gob.NewEncoder(b).Encode(&v)
			return b.Bytes(), err
		},
		decode: func(p []byte) (T, error) {
			var v T
			err := gob.NewDecoder(bytes.NewReader(p)).Decode(&v)
			return v, err
		},
	}
}

// scratchPool recycles encode buffers so that encoding a value does not
// allocate in the steady state. Buffers above maxSpareBuffer are dropped.
type scratchPool struct{ p sync.Pool }

// encodeScratch returns the payload for v and the scratch buffer holding
// it (nil for a raw codec), to be handed back with sp.put once the
// payload has been written.
func (c codec[T]) encodeScratch(sp *scratchPool, v T) ([]byte, *[]byte, error) {
	if c.raw {
		b, err := c.encode(nil, v)
		return b, nil, err
	}
	buf, _ := sp.p.Get().(*[]byte)
	if buf == nil {
		buf = new([]byte)
	}
	b, err := c.encode((*buf)[:0], v)
	*buf = b
	return b, buf, err
}

// put hands a scratch buffer back; nil is ignored.
func (sp *scratchPool) put(buf *[]byte) {
	if buf != nil && cap(*buf) <= maxSpareBuffer {
		sp.p.Put(buf)
	}
}

// Codec is the encoding of values of T that methods use (see the package
// doc): the payload itself for []byte, the bytes of a string, a varint
// for an integer, the value's own AppendBinary and UnmarshalBinary when
// *T has them, gob otherwise. Packages that store
// or forward such values use it so that one encoding serves both. The
// gob fallback encodes maps in random order: a type whose encoding must
// be deterministic (hashed, compared) implements the binary methods.
type Codec[T any] struct{ c codec[T] }

// NewCodec returns the codec of T.
func NewCodec[T any]() Codec[T] { return Codec[T]{newCodec[T]()} }

// Append appends the encoding of v to dst.
func (c Codec[T]) Append(dst []byte, v T) ([]byte, error) {
	if !c.c.raw {
		return c.c.encode(dst, v)
	}
	p, err := c.c.encode(nil, v)
	return append(dst, p...), err
}

// Decode returns the value encoded in p. For []byte it is p itself.
func (c Codec[T]) Decode(p []byte) (T, error) { return c.c.decode(p) }
