package node

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/bifrost-go/bifrost/raft"
)

// batch is the payload of one transport call: messages for one peer, in
// the order they were sent. On the wire it is the message count as an
// unsigned varint, then each message as a varint length and the bytes of
// raft.Message.AppendBinary.
type batch []raft.Message

// maxBatchMessages bounds what one call carries, so a backlog to a slow
// peer goes out in pieces rather than one giant frame.
const maxBatchMessages = 1024

// AppendBinary appends the wire form of b.
func (b *batch) AppendBinary(dst []byte) ([]byte, error) {
	dst = binary.AppendUvarint(dst, uint64(len(*b)))
	var scratch []byte
	for i := range *b {
		scratch, _ = (*b)[i].AppendBinary(scratch[:0])
		dst = binary.AppendUvarint(dst, uint64(len(scratch)))
		dst = append(dst, scratch...)
	}
	return dst, nil
}

// UnmarshalBinary decodes a batch that fills p exactly; a count the input
// cannot hold, a bad length or a bad message wraps raft.ErrCorrupt. It
// copies p once and decodes the messages from the copy with their entry
// data pointing into it: one allocation for the data of the whole batch
// rather than one per entry, which is most of a follower's allocations.
func (b *batch) UnmarshalBinary(p []byte) error {
	n, used := binary.Uvarint(p)
	if used <= 0 || n > uint64(len(p)) || n > maxBatchMessages {
		return fmt.Errorf("%w: batch count", raft.ErrCorrupt)
	}
	p = slices.Clone(p[used:])
	msgs := make([]raft.Message, n)
	for i := range msgs {
		size, used := binary.Uvarint(p)
		if used <= 0 || size > uint64(len(p)-used) {
			return fmt.Errorf("%w: batch message %d length", raft.ErrCorrupt, i)
		}
		if err := msgs[i].UnmarshalBinaryShared(p[used : used+int(size)]); err != nil {
			return fmt.Errorf("batch message %d: %w", i, err)
		}
		p = p[used+int(size):]
	}
	if len(p) != 0 {
		return fmt.Errorf("%w: %d bytes after batch", raft.ErrCorrupt, len(p))
	}
	*b = msgs
	return nil
}
