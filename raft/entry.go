package raft

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrCorrupt reports bytes that do not decode to a valid entry, hard state
// or message. Decoders wrap it with the detail of what was wrong.
var ErrCorrupt = errors.New("raft: corrupt encoding")

// EntryType tells what an entry carries.
type EntryType uint8

const (
	// EntryNormal carries an application command in Data.
	EntryNormal EntryType = iota
	// EntryNoop is appended by every new leader so that entries of earlier
	// terms commit promptly with one of its own term (Figure 8 of the
	// Raft paper). Data is empty.
	EntryNoop
	// EntryConfig carries a configuration change in Data.
	EntryConfig
	entryTypeCount // one past the last valid type
)

// String names the entry type for logs and test failures.
func (t EntryType) String() string {
	switch t {
	case EntryNormal:
		return "normal"
	case EntryNoop:
		return "noop"
	case EntryConfig:
		return "config"
	}
	return fmt.Sprintf("EntryType(%d)", uint8(t))
}

// Entry is one record of the replicated log.
type Entry struct {
	Index uint64    // position in the log, starting at 1
	Term  uint64    // term of the leader that created the entry
	Type  EntryType // what Data holds
	Data  []byte    // the command; nil for a no-op
}

// EncodedSize is the number of bytes AppendBinary adds for e, at most.
// Flow control counts message sizes with it.
func (e *Entry) EncodedSize() int {
	return 3*binary.MaxVarintLen64 + 1 + len(e.Data)
}

// AppendBinary appends the encoding of e to b: index, term, type and the
// length of Data as unsigned varints, then Data itself.
func (e *Entry) AppendBinary(b []byte) ([]byte, error) {
	b = binary.AppendUvarint(b, e.Index)
	b = binary.AppendUvarint(b, e.Term)
	b = append(b, byte(e.Type))
	b = binary.AppendUvarint(b, uint64(len(e.Data)))
	return append(b, e.Data...), nil
}

// UnmarshalBinary decodes an entry that fills b exactly. Data is copied, so
// b may be reused afterwards.
func (e *Entry) UnmarshalBinary(b []byte) error {
	n, err := e.decode(b, false)
	if err != nil {
		return err
	}
	if n != len(b) {
		return fmt.Errorf("%w: %d trailing bytes after entry", ErrCorrupt, len(b)-n)
	}
	return nil
}

// decode reads one entry from the front of b and returns how many bytes it
// used. Data is copied out of b, or with share a capped slice of b.
func (e *Entry) decode(b []byte, share bool) (int, error) {
	d := decoder{b: b}
	e.Index = d.uvarint()
	e.Term = d.uvarint()
	e.Type = EntryType(d.byte())
	data := d.bytes()
	if d.err != nil {
		return 0, fmt.Errorf("%w: entry: %v", ErrCorrupt, d.err)
	}
	if e.Type >= entryTypeCount {
		return 0, fmt.Errorf("%w: entry type %d", ErrCorrupt, e.Type)
	}
	switch {
	case len(data) == 0:
		e.Data = nil
	case share:
		e.Data = data[:len(data):len(data)]
	default:
		e.Data = append([]byte(nil), data...)
	}
	return d.off, nil
}

// HardState is the part of a node's state that must be on stable storage
// before the node answers anyone: its current term, whom it voted for in
// that term, and the highest index it knows to be committed.
type HardState struct {
	Term   uint64
	Vote   uint64 // node id voted for in Term; 0 for none
	Commit uint64
}

// IsZero reports whether hs is the state of a node that never ran.
func (hs HardState) IsZero() bool { return hs == HardState{} }

// AppendBinary appends term, vote and commit as unsigned varints.
func (hs *HardState) AppendBinary(b []byte) ([]byte, error) {
	b = binary.AppendUvarint(b, hs.Term)
	b = binary.AppendUvarint(b, hs.Vote)
	return binary.AppendUvarint(b, hs.Commit), nil
}

// UnmarshalBinary decodes a hard state that fills b exactly.
func (hs *HardState) UnmarshalBinary(b []byte) error {
	d := decoder{b: b}
	hs.Term = d.uvarint()
	hs.Vote = d.uvarint()
	hs.Commit = d.uvarint()
	if d.err == nil && d.off != len(b) {
		d.err = fmt.Errorf("%d trailing bytes", len(b)-d.off)
	}
	if d.err != nil {
		return fmt.Errorf("%w: hard state: %v", ErrCorrupt, d.err)
	}
	return nil
}

// decoder reads varints and length-prefixed byte strings from a buffer,
// remembering the first error so callers check once at the end.
type decoder struct {
	b   []byte
	off int
	err error
}

var (
	errShort    = errors.New("short buffer")
	errOverflow = errors.New("varint overflows 64 bits")
)

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.off:])
	switch {
	case n == 0:
		d.err = errShort
	case n < 0:
		d.err = errOverflow
	default:
		d.off += n
	}
	return v
}

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if d.off >= len(d.b) {
		d.err = errShort
		return 0
	}
	d.off++
	return d.b[d.off-1]
}

// bytes reads a length-prefixed byte string. The result aliases d.b.
func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)-d.off) {
		d.err = fmt.Errorf("length %d exceeds the %d bytes left", n, len(d.b)-d.off)
		return nil
	}
	s := d.b[d.off : d.off+int(n)]
	d.off += int(n)
	return s
}
