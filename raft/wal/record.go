package wal

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
)

// recordType tells what a record's payload holds.
type recordType byte

const (
	recordHeader    recordType = iota + 1 // segmentHeader: first record of every segment
	recordEntry                           // raft.Entry
	recordHardState                       // raft.HardState
	recordCompact                         // uvarint compaction index
)

// recordPrefix is the length and CRC in front of every record's type byte.
const recordPrefix = 8

// maxRecordBody bounds type plus payload so the length always fits the
// uint32 length field.
const maxRecordBody = math.MaxUint32

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// finishRecord frames a record whose type byte and payload the caller has
// already appended to b after reserving recordPrefix bytes at start: it
// fills in the length and CRC. Building in place saves copying the payload.
func finishRecord(b []byte, start int) []byte {
	body := b[start+recordPrefix:]
	binary.LittleEndian.PutUint32(b[start:], uint32(len(body)))
	binary.LittleEndian.PutUint32(b[start+4:], crc32.Checksum(body, castagnoli))
	return b
}

// beginRecord reserves the prefix of a record and appends its type.
func beginRecord(b []byte, t recordType) ([]byte, int) {
	start := len(b)
	b = append(b, 0, 0, 0, 0, 0, 0, 0, 0, byte(t))
	return b, start
}

// decodeRecord reads the record at the front of b. It returns the type, the
// payload (aliasing b) and the bytes the record used. An error means b does
// not start with an intact record: too short, a zero length, or a CRC
// mismatch. Unknown types are the caller's to judge.
func decodeRecord(b []byte) (recordType, []byte, int, error) {
	if len(b) < recordPrefix+1 {
		return 0, nil, 0, fmt.Errorf("%w: record prefix cut short at %d bytes", ErrCorrupt, len(b))
	}
	n := uint64(binary.LittleEndian.Uint32(b))
	if n == 0 {
		return 0, nil, 0, fmt.Errorf("%w: zero record length", ErrCorrupt)
	}
	if n > uint64(len(b)-recordPrefix) {
		return 0, nil, 0, fmt.Errorf("%w: record length %d exceeds the %d bytes left", ErrCorrupt, n, len(b)-recordPrefix)
	}
	body := b[recordPrefix : recordPrefix+int(n)]
	if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(b[4:]) {
		return 0, nil, 0, fmt.Errorf("%w: record checksum mismatch", ErrCorrupt)
	}
	return recordType(body[0]), body[1:], recordPrefix + int(n), nil
}
