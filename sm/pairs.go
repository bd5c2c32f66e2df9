package sm

import (
	"fmt"
	"reflect"
	"sync"

	"github.com/bifrost-go/bifrost/rpc"
)

// The built-ins' compound types encode their fields with the fields' own
// codecs, each but the last length-prefixed, instead of falling back to
// gob, which spells out the type in every value and costs more than the
// rest of a command's trip.

// codecs caches one rpc.Codec per type, so the compound types' methods,
// which cannot hold a codec of their own, do not build one per call.
var codecs sync.Map // reflect.Type -> rpc.Codec[T]

func codecOf[T any]() rpc.Codec[T] {
	t := reflect.TypeFor[T]()
	if c, ok := codecs.Load(t); ok {
		return c.(rpc.Codec[T])
	}
	c, _ := codecs.LoadOrStore(t, rpc.NewCodec[T]())
	return c.(rpc.Codec[T])
}

// appendField appends v's encoding, length-prefixed unless last.
func appendField[T any](b []byte, v T, last bool) ([]byte, error) {
	if last {
		return codecOf[T]().Append(b, v)
	}
	p, err := codecOf[T]().Append(nil, v)
	return appendBytes(b, p), err
}

// field decodes the next field of d, the rest of it if last.
func field[T any](d *decoder, last bool) (T, error) {
	var p []byte
	if last {
		p = d.rest()
	} else if p = d.bytes(); d.err != nil {
		var zero T
		return zero, d.err
	}
	v, err := codecOf[T]().Decode(p)
	if err != nil {
		err = fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return v, err
}

// AppendBinary encodes the pair: the key, length-prefixed, then the value.
func (p *Pair[K, V]) AppendBinary(b []byte) ([]byte, error) {
	b, err := appendField(b, p.K, false)
	if err != nil {
		return b, err
	}
	return appendField(b, p.V, true)
}

// UnmarshalBinary decodes what AppendBinary encoded.
func (p *Pair[K, V]) UnmarshalBinary(b []byte) (err error) {
	d := decoder{b: b}
	if p.K, err = field[K](&d, false); err != nil {
		return err
	}
	p.V, err = field[V](&d, true)
	return err
}

// AppendBinary encodes whether a value was found, then the value.
func (f *Found[V]) AppendBinary(b []byte) ([]byte, error) {
	if !f.Found {
		return append(b, 0), nil
	}
	return appendField(append(b, 1), f.V, true)
}

// UnmarshalBinary decodes what AppendBinary encoded.
func (f *Found[V]) UnmarshalBinary(b []byte) (err error) {
	switch {
	case len(b) == 1 && b[0] == 0:
		*f = Found[V]{}
		return nil
	case len(b) == 0 || b[0] != 1:
		return fmt.Errorf("%w: found flag", ErrCorrupt)
	}
	d := decoder{b: b[1:]}
	f.Found = true
	f.V, err = field[V](&d, true)
	return err
}

// AppendBinary encodes the key and the old value, each length-prefixed,
// then the new value.
func (s *MapSwap[K, V]) AppendBinary(b []byte) ([]byte, error) {
	b, err := appendField(b, s.K, false)
	if err == nil {
		b, err = appendField(b, s.Old, false)
	}
	if err != nil {
		return b, err
	}
	return appendField(b, s.New, true)
}

// UnmarshalBinary decodes what AppendBinary encoded.
func (s *MapSwap[K, V]) UnmarshalBinary(b []byte) (err error) {
	d := decoder{b: b}
	if s.K, err = field[K](&d, false); err != nil {
		return err
	}
	if s.Old, err = field[V](&d, false); err != nil {
		return err
	}
	s.New, err = field[V](&d, true)
	return err
}

// AppendBinary encodes the old value, length-prefixed, then the new one.
func (c *Change[T]) AppendBinary(b []byte) ([]byte, error) {
	b, err := appendField(b, c.Old, false)
	if err != nil {
		return b, err
	}
	return appendField(b, c.New, true)
}

// UnmarshalBinary decodes what AppendBinary encoded.
func (c *Change[T]) UnmarshalBinary(b []byte) (err error) {
	d := decoder{b: b}
	if c.Old, err = field[T](&d, false); err != nil {
		return err
	}
	c.New, err = field[T](&d, true)
	return err
}

// MarshalBinary is AppendBinary(nil), for gob, which decodes with
// UnmarshalBinary and so must encode with this.
func (p *Pair[K, V]) MarshalBinary() ([]byte, error) { return p.AppendBinary(nil) }

// MarshalBinary is AppendBinary(nil), for gob.
func (f *Found[V]) MarshalBinary() ([]byte, error) { return f.AppendBinary(nil) }

// MarshalBinary is AppendBinary(nil), for gob.
func (s *MapSwap[K, V]) MarshalBinary() ([]byte, error) { return s.AppendBinary(nil) }

// MarshalBinary is AppendBinary(nil), for gob.
func (c *Change[T]) MarshalBinary() ([]byte, error) { return c.AppendBinary(nil) }
