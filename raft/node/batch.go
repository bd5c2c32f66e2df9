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

// maxBatchMessages bounds the messages of one call; the frame limit
// bounds its bytes (RPCTransport cuts batches by wireSize). The decoder
// refuses more, so that a count costs no allocation before the
// messages are there.
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

// sizeHint is how many bytes the wire form of b takes at most, so that
// encoding it never grows the buffer.
func (b *batch) sizeHint() int {
	size := binary.MaxVarintLen64
	for i := range *b {
		size += wireSize(&(*b)[i])
	}
	return size
}

// wireFixed bounds the bytes a message takes in a batch besides its
// entries, snapshot data and configuration: the type, flags and
// SnapDone bytes and seventeen varints (its length in the batch, seven
// numeric fields, Context, three snapshot fields, the length of the
// snapshot data and the counts of voters, learners, addresses and
// entries).
const wireFixed = 3 + 17*binary.MaxVarintLen64

// wireSize is an upper bound of the bytes m takes in a batch, its length
// included. Entries count as raft.Entry.EncodedSize, as raft's
// MaxMsgBytes counts them, so a MsgApp of MaxMsgBytes takes at most
// wireFixed more. Senders cut batches by it without encoding first.
func wireSize(m *raft.Message) int {
	size := wireFixed + len(m.SnapData) + binary.MaxVarintLen64*(len(m.SnapVoters)+len(m.SnapLearners))
	for _, addr := range m.SnapAddrs {
		size += 2*binary.MaxVarintLen64 + len(addr)
	}
	for i := range m.Entries {
		size += m.Entries[i].EncodedSize()
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
