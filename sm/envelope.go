package sm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

// The bytes a host puts in the raft log, and the answers it gives back.
//
// A log entry is an op byte, the leader's clock as a varint of Unix
// nanoseconds (stamped by the leader that proposed it, so every replica
// sees the same time), then for a command the request as the client sent
// it: client id, sequence number, the lowest sequence number the client
// still waits for, machine id and function id as unsigned varints, and
// the payload to the end.

// Ops of a log entry.
const (
	opCommand      byte = 1 // a machine's command, in a session
	opOpenSession  byte = 2 // opens a session; the answer is its client id
	opCloseSession byte = 3 // closes the session of the request's client id
	opSubscribe    byte = 4 // registers a subscription; the payload is subscribePayload
	opUnsubscribe  byte = 5 // ends one; the payload is its id
	opKeepAlive    byte = 6 // keeps the session of a client that only listens alive
	opSubmit       byte = 7 // a machine's command issued by a member, outside any session
)

// ErrCorrupt reports bytes from the log, a snapshot or the network that
// do not decode.
var ErrCorrupt = errors.New("sm: corrupt data")

// request is what a client asks a command to do.
type request struct {
	client, seq, low uint64 // low: every seq below it has been answered
	machine, fn      uint64
	payload          []byte
}

// maxRequestHeader bounds the encoding of a request without its payload:
// five varints.
const maxRequestHeader = 5 * binary.MaxVarintLen64

func (r *request) appendBinary(b []byte) []byte {
	b = slices.Grow(b, maxRequestHeader+len(r.payload))
	b = binary.AppendUvarint(b, r.client)
	b = binary.AppendUvarint(b, r.seq)
	b = binary.AppendUvarint(b, r.low)
	b = binary.AppendUvarint(b, r.machine)
	b = binary.AppendUvarint(b, r.fn)
	return append(b, r.payload...)
}

// decodeRequest decodes p; the payload aliases p.
func decodeRequest(p []byte) (request, error) {
	d := decoder{b: p}
	r := request{client: d.uvarint(), seq: d.uvarint(), low: d.uvarint(), machine: d.uvarint(), fn: d.uvarint()}
	r.payload = d.rest()
	return r, d.err
}

// entry is a decoded log entry.
type entry struct {
	op   byte
	time int64
	req  request
}

// appendEntry appends the log entry of op at time t for the encoded
// request req (nil for an open).
func appendEntry(b []byte, op byte, t int64, req []byte) []byte {
	b = slices.Grow(b, 1+binary.MaxVarintLen64+len(req))
	b = append(b, op)
	b = binary.AppendVarint(b, t)
	return append(b, req...)
}

func decodeEntry(p []byte) (entry, error) {
	if len(p) == 0 {
		return entry{}, fmt.Errorf("%w: empty entry", ErrCorrupt)
	}
	e := entry{op: p[0]}
	d := decoder{b: p[1:]}
	e.time = d.varint()
	if d.err != nil {
		return e, d.err
	}
	switch e.op {
	case opOpenSession:
		if len(d.b) != 0 {
			return e, fmt.Errorf("%w: %d bytes after a session open", ErrCorrupt, len(d.b))
		}
	case opCommand, opCloseSession, opSubscribe, opUnsubscribe, opKeepAlive, opSubmit:
		var err error
		e.req, err = decodeRequest(d.b)
		return e, err
	default:
		return e, fmt.Errorf("%w: op %d", ErrCorrupt, e.op)
	}
	return e, nil
}

// Answer statuses: the first byte of every answer.
const (
	stOK             byte = 1 + iota // the function's encoded result follows
	stFailed                         // the function's error message follows
	stSessionExpired                 // the client's session is gone
	stNotLeader                      // the leader's address, if known, follows
	stUnknown                        // the command may or may not apply: retry it as it is
	stUnavailable                    // try again, elsewhere
	stBehind                         // a follower read on a replica behind the client
	stNoFunction                     // no machine or function of that id here
	stTooLarge                       // the command exceeds what one log entry holds
	stCompacted                      // events fell out of the window; the index to resync from follows
	stNoSubscription                 // no such subscription (ended, or its session expired)
)

func answer(status byte, data []byte) []byte {
	return append(append(make([]byte, 0, 1+len(data)), status), data...)
}

// decoder reads varints and strings, remembering the first error.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = fmt.Errorf("%w: bad varint", ErrCorrupt)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = fmt.Errorf("%w: bad varint", ErrCorrupt)
		return 0
	}
	d.b = d.b[n:]
	return v
}

// bytes reads a length-prefixed byte string, aliasing the input.
func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.err = fmt.Errorf("%w: %d bytes wanted, %d left", ErrCorrupt, n, len(d.b))
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

// count reads a count of items, each taking at least one byte.
func (d *decoder) count() int {
	n := d.uvarint()
	if d.err == nil && n > uint64(len(d.b)) {
		d.err = fmt.Errorf("%w: count %d", ErrCorrupt, n)
		return 0
	}
	return int(n)
}

func (d *decoder) rest() []byte {
	b := d.b
	d.b = nil
	return b
}

// done checks that everything was read.
func (d *decoder) done() error {
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%w: %d trailing bytes", ErrCorrupt, len(d.b))
	}
	return d.err
}

func appendBytes(b, v []byte) []byte {
	return append(binary.AppendUvarint(b, uint64(len(v))), v...)
}

func appendUvarint(b []byte, v uint64) []byte { return binary.AppendUvarint(b, v) }
