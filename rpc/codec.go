package rpc

import (
	"bytes"
	"encoding"
	"encoding/gob"
	"fmt"
	"reflect"
	"sync"
)

// codec encodes and decodes values of one type for the wire. It is built
// once per method, so choosing an encoding costs nothing per call.
//
// Three encodings exist, tried in order:
//   - []byte is the payload itself, with no copy on decode;
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
// doc): the payload itself for []byte, the value's own AppendBinary and
// UnmarshalBinary when *T has them, gob otherwise. Packages that store
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
