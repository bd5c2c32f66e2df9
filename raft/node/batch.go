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

// AppendBinary appends the wire form of b. Each message is encoded in
// place after a one-byte length, which fits any message under 128 bytes
// (acknowledgements, heartbeats); a longer one is moved up to make room
// for its length. Encoding into a separate buffer first cost a growing
// allocation per batch, a tenth of a busy leader's CPU.
func (b *batch) AppendBinary(dst []byte) ([]byte, error) {
	dst = slices.Grow(dst, b.sizeHint())
	dst = binary.AppendUvarint(dst, uint64(len(*b)))
	for i := range *b {
		start := len(dst)
		dst = append(dst, 0)
		dst, _ = (*b)[i].AppendBinary(dst)
		dst = putLength(dst, start)
	}
	return dst, nil
}

// putLength writes, at start, the length of the message that follows the
// byte reserved there, moving the message up if the length needs more
// than that byte.
func putLength(dst []byte, start int) []byte {
	n := len(dst) - start - 1
	var length [binary.MaxVarintLen64]byte
	k := binary.PutUvarint(length[:], uint64(n))
	if k > 1 {
		dst = append(dst, length[:k-1]...) // room for the longer length
		copy(dst[start+k:], dst[start+1:start+1+n])
	}
	copy(dst[start:], length[:k])
	return dst
}

// sizeHint is about how many bytes the wire form of b takes: enough that
// encoding it rarely grows the buffer.
func (b *batch) sizeHint() int {
	size := binary.MaxVarintLen64
	for i := range *b {
		m := &(*b)[i]
		size += 96 + len(m.SnapData) + 10*(len(m.SnapVoters)+len(m.SnapLearners))
		for j := range m.Entries {
			size += m.Entries[j].EncodedSize()
		}
	}
	return size
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
