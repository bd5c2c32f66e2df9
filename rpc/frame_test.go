package rpc

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"

	"pgregory.net/rapid"
)

// genHeader draws any valid header.
func genHeader(t *rapid.T) header {
	return header{
		kind:     kind(rapid.IntRange(int(kindRequest), int(kindNotify)).Draw(t, "kind")),
		id:       rapid.Uint64().Draw(t, "id"),
		service:  rapid.Uint64().Draw(t, "service"),
		method:   rapid.Uint64().Draw(t, "method"),
		deadline: rapid.Int64().Draw(t, "deadline"),
	}
}

// TestFrameRoundTrip checks that every frame decodes to what was
// encoded, both from a buffer and from a stream, and that a sequence of
// frames splits back at the right places.
func TestFrameRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 5).Draw(t, "frames")
		var wire []byte
		hs := make([]header, n)
		ps := make([][]byte, n)
		for i := range n {
			hs[i] = genHeader(t)
			ps[i] = rapid.SliceOfN(rapid.Byte(), 0, 300).Draw(t, "payload")
			wire = appendFrame(wire, hs[i], ps[i])
		}
		checkBufferDecode(t, wire, hs, ps)
		checkStreamDecode(t, wire, hs, ps)
	})
}

func checkBufferDecode(t *rapid.T, wire []byte, hs []header, ps [][]byte) {
	for i := range hs {
		h, p, size, err := decodeFrame(wire, DefaultMaxFrameSize)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if h != hs[i] || !bytes.Equal(p, ps[i]) || size != lengthSize+headerSize+len(ps[i]) {
			t.Fatalf("frame %d: got %+v %x (size %d), want %+v %x", i, h, p, size, hs[i], ps[i])
		}
		wire = wire[size:]
	}
	if len(wire) != 0 {
		t.Fatalf("%d bytes left over", len(wire))
	}
}

func checkStreamDecode(t *rapid.T, wire []byte, hs []header, ps [][]byte) {
	br := bufio.NewReaderSize(bytes.NewReader(wire), 64)
	for i := range hs {
		h, n, err := readHeader(br, DefaultMaxFrameSize)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		p := make([]byte, n)
		if _, err := io.ReadFull(br, p); err != nil {
			t.Fatalf("frame %d payload: %v", i, err)
		}
		if h != hs[i] || !bytes.Equal(p, ps[i]) {
			t.Fatalf("frame %d: got %+v %x, want %+v %x", i, h, p, hs[i], ps[i])
		}
	}
	if _, _, err := readHeader(br, DefaultMaxFrameSize); err != io.EOF {
		t.Fatalf("after the last frame: got %v, want io.EOF", err)
	}
}

// rawFrame builds frame bytes by hand: a length prefix, a kind byte and
// rest.
func rawFrame(length uint32, k byte, rest int) []byte {
	b := binary.BigEndian.AppendUint32(nil, length)
	b = append(b, k)
	return append(b, make([]byte, rest)...)
}

// TestDecodeFrameErrors covers each way a frame can be wrong.
func TestDecodeFrameErrors(t *testing.T) {
	good := appendFrame(nil, header{kind: kindResponse, id: 7}, []byte("hello"))
	tests := []struct {
		name string
		b    []byte
		max  int
		want error
	}{
		{"empty", nil, DefaultMaxFrameSize, io.ErrUnexpectedEOF},
		{"short prefix", []byte{0, 0}, DefaultMaxFrameSize, io.ErrUnexpectedEOF},
		{"truncated header", good[:10], DefaultMaxFrameSize, io.ErrUnexpectedEOF},
		{"truncated payload", good[:len(good)-1], DefaultMaxFrameSize, io.ErrUnexpectedEOF},
		{"length below header", rawFrame(headerSize-1, byte(kindRequest), headerSize), DefaultMaxFrameSize, ErrMalformedFrame},
		{"zero length", rawFrame(0, 0, 0), DefaultMaxFrameSize, ErrMalformedFrame},
		{"unknown kind 0", rawFrame(headerSize, 0, headerSize-1), DefaultMaxFrameSize, ErrMalformedFrame},
		{"unknown kind 99", rawFrame(headerSize, 99, headerSize-1), DefaultMaxFrameSize, ErrMalformedFrame},
		{"over max", good, len(good) - lengthSize - 1, ErrFrameTooLarge},
		{"4 GiB prefix", rawFrame(1<<32-1, byte(kindRequest), 0), DefaultMaxFrameSize, ErrFrameTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, _, err := decodeFrame(tt.b, tt.max)
			if !errors.Is(err, tt.want) {
				t.Errorf("got %v, want %v", err, tt.want)
			}
		})
	}
}

// FuzzDecodeFrame checks that no input makes the decoders panic, that
// the buffer and stream decoders agree, and that whatever decodes
// re-encodes to the same bytes.
func FuzzDecodeFrame(f *testing.F) {
	f.Add(appendFrame(nil, header{kind: kindRequest, id: 1, service: 2, method: 3, deadline: 4}, []byte("hi")))
	f.Add(appendFrame(nil, header{kind: kindError, id: 9}, appendError(nil, ErrMethodNotFound)))
	f.Add(rawFrame(1<<32-1, 1, 40))
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		const max = 1 << 10
		h, p, size, err := decodeFrame(b, max)
		sh, n, serr := readHeader(bufio.NewReaderSize(bytes.NewReader(b), 64), max)
		if err != nil {
			if serr == nil && n <= len(b)-lengthSize-headerSize {
				t.Fatalf("buffer decoder failed (%v) but stream decoder read %+v", err, sh)
			}
			return
		}
		if serr != nil || sh != h || n != len(p) {
			t.Fatalf("stream decoder got %+v, %d, %v; buffer decoder %+v, %d", sh, n, serr, h, len(p))
		}
		if again := appendFrame(nil, h, p); !bytes.Equal(again, b[:size]) {
			t.Fatalf("re-encoded %x, want %x", again, b[:size])
		}
		if h.kind == kindError {
			_ = decodeError(p).Error()
		}
	})
}
