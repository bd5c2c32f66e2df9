package raft

import (
	"encoding/binary"
	"errors"
	"math"
)

// flagSnap in a message's flags byte says the snapshot fields follow. It
// is the top bit, clear of the bits other fields take from the bottom.
const flagSnap = 1 << 7

// hasSnap reports whether any snapshot field of m is set.
func (m *Message) hasSnap() bool {
	return m.SnapOffset != 0 || m.SnapTotal != 0 || m.SnapChecksum != 0 || m.SnapDone || len(m.SnapData) > 0
}

func (m *Message) snapFlag() byte {
	if m.hasSnap() {
		return flagSnap
	}
	return 0
}

// appendSnap appends the snapshot fields, if any are set.
func (m *Message) appendSnap(b []byte) []byte {
	if !m.hasSnap() {
		return b
	}
	b = binary.AppendUvarint(b, m.SnapOffset)
	b = binary.AppendUvarint(b, m.SnapTotal)
	b = binary.AppendUvarint(b, uint64(m.SnapChecksum))
	done := byte(0)
	if m.SnapDone {
		done = 1
	}
	b = append(b, done)
	b = binary.AppendUvarint(b, uint64(len(m.SnapData)))
	return append(b, m.SnapData...)
}

var errSnapField = errors.New("bad snapshot field")

// decodeSnap reads the snapshot fields; SnapData is copied.
func (m *Message) decodeSnap(d *decoder) {
	m.SnapOffset = d.uvarint()
	m.SnapTotal = d.uvarint()
	sum := d.uvarint()
	done := d.byte()
	data := d.bytes()
	if d.err == nil && (sum > math.MaxUint32 || done > 1) {
		d.err = errSnapField
	}
	if d.err != nil {
		return
	}
	m.SnapChecksum, m.SnapDone = uint32(sum), done == 1
	if len(data) > 0 {
		m.SnapData = append([]byte(nil), data...)
	}
}
