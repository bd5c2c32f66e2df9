package wal

import (
	"bytes"
	"errors"
	"testing"
)

func record(t recordType, payload []byte) []byte {
	b, start := beginRecord(nil, t)
	return finishRecord(append(b, payload...), start)
}

func TestRecordRoundTrip(t *testing.T) {
	for _, payload := range [][]byte{nil, {0}, []byte("hello"), bytes.Repeat([]byte{7}, 70_000)} {
		b := record(recordEntry, payload)
		typ, got, n, err := decodeRecord(append(b, 0xAA)) // trailing bytes are the next record's
		if err != nil || typ != recordEntry || !bytes.Equal(got, payload) || n != len(b) {
			t.Errorf("decode(%d bytes) = %v, %d bytes, n %d, %v", len(payload), typ, len(got), n, err)
		}
	}
}

func TestDecodeRecordRefusesDamage(t *testing.T) {
	good := record(recordHardState, []byte{1, 2, 3})
	flip := func(i int) []byte { b := bytes.Clone(good); b[i] ^= 1; return b }
	tests := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"prefix only", good[:8]},
		{"cut payload", good[:len(good)-1]},
		{"zero length", make([]byte, 16)},
		{"length flipped", flip(0)},
		{"crc flipped", flip(5)},
		{"type flipped", flip(8)},
		{"payload flipped", flip(len(good) - 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, _, err := decodeRecord(tt.b); !errors.Is(err, ErrCorrupt) {
				t.Errorf("decode = %v, want ErrCorrupt", err)
			}
		})
	}
}

func TestSegmentNames(t *testing.T) {
	name := segmentName(0x1f, 0xabc)
	if name != "000000000000001f-0000000000000abc.wal" {
		t.Fatalf("segmentName = %q", name)
	}
	if seq, first, ok := parseSegmentName(name); !ok || seq != 0x1f || first != 0xabc {
		t.Errorf("parse(%q) = %d, %d, %v", name, seq, first, ok)
	}
	for _, bad := range []string{"", "x.wal", "000000000000001f-0000000000000abc.tmp", "000000000000001F-0000000000000abc.wal", "+00000000000001f-0000000000000abc.wal"} {
		if _, _, ok := parseSegmentName(bad); ok {
			t.Errorf("parse(%q) accepted", bad)
		}
	}
}
