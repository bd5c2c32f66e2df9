package raft

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
)

// flagSnap in a message's flags byte says the snapshot fields follow. It
// is the top bit, clear of the bits other fields take from the bottom.
// flagConf, the bit below, says a snapshot's configuration follows them,
// and flagAddrs, below that, its member addresses. All were added after
// the first format: a message without these parts encodes exactly as
// before, and an older decoder refuses one with them as carrying unknown
// flags.
const (
	flagSnap  = 1 << 7
	flagConf  = 1 << 6
	flagAddrs = 1 << 5
)

func (m *Message) hasConf() bool { return len(m.SnapVoters) > 0 || len(m.SnapLearners) > 0 }

func (m *Message) confFlag() byte {
	if m.hasConf() {
		return flagConf
	}
	return 0
}

// appendConf appends the snapshot's configuration, if any.
func (m *Message) appendConf(b []byte) []byte {
	if !m.hasConf() {
		return b
	}
	for _, ids := range [2][]uint64{m.SnapVoters, m.SnapLearners} {
		b = binary.AppendUvarint(b, uint64(len(ids)))
		for _, id := range ids {
			b = binary.AppendUvarint(b, id)
		}
	}
	return b
}

// decodeConf reads the snapshot's configuration.
func (m *Message) decodeConf(d *decoder) {
	m.SnapVoters = d.ids()
	m.SnapLearners = d.ids()
}

func (m *Message) addrsFlag() byte {
	if len(m.SnapAddrs) > 0 {
		return flagAddrs
	}
	return 0
}

// appendAddrs appends the snapshot's member addresses, if any, in id
// order so that equal messages encode alike.
func (m *Message) appendAddrs(b []byte) []byte {
	if len(m.SnapAddrs) == 0 {
		return b
	}
	b = binary.AppendUvarint(b, uint64(len(m.SnapAddrs)))
	for _, id := range slices.Sorted(maps.Keys(m.SnapAddrs)) {
		b = binary.AppendUvarint(b, id)
		b = binary.AppendUvarint(b, uint64(len(m.SnapAddrs[id])))
		b = append(b, m.SnapAddrs[id]...)
	}
	return b
}

// decodeAddrs reads the snapshot's member addresses: ids ascending and
// non-zero, each with its address. The count is checked against the bytes
// left (each takes two at least) before anything is allocated.
func (m *Message) decodeAddrs(d *decoder) {
	n := d.uvarint()
	if d.err != nil {
		return
	}
	if n > uint64(len(d.b)-d.off)/2 {
		d.err = fmt.Errorf("%d addresses cannot fit in %d bytes", n, len(d.b)-d.off)
		return
	}
	addrs := make(map[uint64]string, n)
	var prev uint64
	for range n {
		id := d.uvarint()
		addr := d.bytes()
		if d.err != nil {
			return
		}
		if id <= prev {
			d.err = fmt.Errorf("address of member %d after %d", id, prev)
			return
		}
		addrs[id], prev = string(addr), id
	}
	m.SnapAddrs = addrs
}

// ids reads a count and that many unsigned varints; nil for none. The
// count is checked against the bytes left (each id takes one at least)
// before anything is allocated.
func (d *decoder) ids() []uint64 {
	n := d.uvarint()
	if d.err != nil || n == 0 {
		return nil
	}
	if n > uint64(len(d.b)-d.off) {
		d.err = fmt.Errorf("%d ids cannot fit in %d bytes", n, len(d.b)-d.off)
		return nil
	}
	ids := make([]uint64, n)
	for i := range ids {
		ids[i] = d.uvarint()
	}
	return ids
}

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
