package rpc

import (
	"encoding/binary"
	"fmt"
	"io"
)

// kind says what a frame carries.
type kind uint8

// Frame kinds. Values are part of the wire format and never change.
const (
	kindRequest  kind = 1 // a call: service, method, deadline and the request payload
	kindResponse kind = 2 // a successful answer to the request with the same id
	kindError    kind = 3 // a failed answer: an error code byte, then a message
	kindCancel   kind = 4 // the caller gave up on the request with this id
	kindNotify   kind = 5 // a one-way request: service, method, deadline, payload; never answered
)

// Sizes of the fixed parts of a frame, in bytes.
const (
	lengthSize = 4                 // big-endian length of header plus payload
	headerSize = 1 + 8 + 8 + 8 + 8 // kind, id, service, method, deadline

	// DefaultMaxFrameSize is the default limit, in bytes, on the length
	// a frame declares (header plus payload): 8 MiB.
	DefaultMaxFrameSize = 8 << 20

	// maxFrameLimit is the largest maximum a configuration may set:
	// 2 GiB - 1, so that a length always fits an int, even on 32-bit
	// platforms.
	maxFrameLimit = 1<<31 - 1
)

// header is the fixed part of every frame after the length prefix.
type header struct {
	kind     kind
	id       uint64 // request id, chosen by the client, unique per connection
	service  uint64 // ServiceID of the service; requests and notifies only
	method   uint64 // MethodID of the method; requests and notifies only
	deadline int64  // unix nanoseconds after which the caller gives up; 0 for none
}

// appendFrame appends the frame for h and payload to dst.
func appendFrame(dst []byte, h header, payload []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(headerSize+len(payload)))
	dst = appendHeader(dst, h)
	return append(dst, payload...)
}

// appendHeader appends the headerSize bytes of h to dst.
func appendHeader(dst []byte, h header) []byte {
	dst = append(dst, byte(h.kind))
	dst = binary.BigEndian.AppendUint64(dst, h.id)
	dst = binary.BigEndian.AppendUint64(dst, h.service)
	dst = binary.BigEndian.AppendUint64(dst, h.method)
	return binary.BigEndian.AppendUint64(dst, uint64(h.deadline))
}

// frameLength reads the length prefix at the start of p and checks it
// against max before anything is allocated for the body. It returns the
// number of bytes that follow the prefix.
func frameLength(p []byte, max int) (int, error) {
	n := binary.BigEndian.Uint32(p)
	switch {
	case uint64(n) > uint64(max):
		return 0, ErrFrameTooLarge
	case n < headerSize:
		return 0, ErrMalformedFrame
	}
	return int(n), nil
}

// decodeHeader parses the headerSize bytes at the start of p. Unknown
// kinds are refused so that a peer speaking another protocol is caught
// at its first frame.
func decodeHeader(p []byte) (header, error) {
	h := header{
		kind:     kind(p[0]),
		id:       binary.BigEndian.Uint64(p[1:]),
		service:  binary.BigEndian.Uint64(p[9:]),
		method:   binary.BigEndian.Uint64(p[17:]),
		deadline: int64(binary.BigEndian.Uint64(p[25:])),
	}
	if h.kind < kindRequest || h.kind > kindNotify {
		return header{}, fmt.Errorf("%w: unknown kind %d", ErrMalformedFrame, p[0])
	}
	return h, nil
}

// decodeFrame parses the first frame in b. The payload aliases b. It
// returns the frame's total size in bytes, or io.ErrUnexpectedEOF when b
// holds only part of a frame.
func decodeFrame(b []byte, max int) (h header, payload []byte, size int, err error) {
	if len(b) < lengthSize {
		return header{}, nil, 0, io.ErrUnexpectedEOF
	}
	n, err := frameLength(b, max)
	if err != nil {
		return header{}, nil, 0, err
	}
	if len(b)-lengthSize < n {
		return header{}, nil, 0, io.ErrUnexpectedEOF
	}
	body := b[lengthSize : lengthSize+n]
	if h, err = decodeHeader(body); err != nil {
		return header{}, nil, 0, err
	}
	return h, body[headerSize:], lengthSize + n, nil
}
