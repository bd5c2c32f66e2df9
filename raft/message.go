package raft

import (
	"encoding/binary"
	"fmt"
)

// MessageType tells what a Message asks or answers.
//
// The numeric values are part of the wire format: new types are
// appended after the last one, never inserted.
type MessageType uint8

const (
	// MsgPreVote asks whether the receiver would vote for the sender if it
	// campaigned in Term (the sender's term plus one). Granting it changes
	// nothing on the receiver, so a node cut off from the cluster cannot
	// raise everyone's term by campaigning again and again.
	MsgPreVote MessageType = iota
	// MsgPreVoteResp answers MsgPreVote. Reject false means granted.
	MsgPreVoteResp
	// MsgVote asks for the receiver's vote in Term.
	MsgVote
	// MsgVoteResp answers MsgVote. Reject false means granted.
	MsgVoteResp
	// MsgApp carries entries following Index (whose term is LogTerm) and
	// the leader's commit index. An empty MsgApp probes where the logs
	// match or tells a follower about a new commit index.
	MsgApp
	// MsgAppResp answers MsgApp: on success Index is the highest index known
	// to match the leader's log; on reject Index echoes the rejected
	// MsgApp's Index and RejectHint/LogTerm say where to retry.
	MsgAppResp
	// MsgHeartbeat keeps followers from campaigning and carries the commit
	// index; it never carries entries.
	MsgHeartbeat
	// MsgHeartbeatResp answers MsgHeartbeat; it tells the leader that the
	// follower is alive, so a paused or probing follower can be resumed.
	MsgHeartbeatResp
	// MsgTimeoutNow tells the target of a leadership transfer, whose log
	// the leader has brought up to date, to campaign at once: without
	// pre-vote, and with vote requests marked Transfer.
	MsgTimeoutNow
	// MsgReadIndex forwards a follower's read request to the leader;
	// Context is the request's id.
	MsgReadIndex
	// MsgReadIndexResp answers MsgReadIndex: Index is the read index and
	// Context the request's id; Reject means the leader refused the read
	// (it lost or never had leadership) and the id must not be retried.
	MsgReadIndexResp
	// MsgSnap carries a chunk of the leader's snapshot, which covers the
	// log up to Index (whose term is LogTerm): SnapData goes at
	// SnapOffset of a snapshot of SnapTotal bytes whose CRC32C is
	// SnapChecksum; SnapDone marks the last chunk.
	MsgSnap
	// MsgSnapResp answers MsgSnap about the snapshot at Index (term
	// LogTerm): SnapOffset is the offset the follower wants next, and
	// SnapDone says it holds the whole snapshot, durably.
	MsgSnapResp
	msgTypeCount // one past the last valid type
)

// String names the message type for logs and test failures.
func (t MessageType) String() string {
	switch t {
	case MsgPreVote:
		return "MsgPreVote"
	case MsgPreVoteResp:
		return "MsgPreVoteResp"
	case MsgVote:
		return "MsgVote"
	case MsgVoteResp:
		return "MsgVoteResp"
	case MsgApp:
		return "MsgApp"
	case MsgAppResp:
		return "MsgAppResp"
	case MsgHeartbeat:
		return "MsgHeartbeat"
	case MsgHeartbeatResp:
		return "MsgHeartbeatResp"
	case MsgTimeoutNow:
		return "MsgTimeoutNow"
	case MsgReadIndex:
		return "MsgReadIndex"
	case MsgReadIndexResp:
		return "MsgReadIndexResp"
	case MsgSnap:
		return "MsgSnap"
	case MsgSnapResp:
		return "MsgSnapResp"
	}
	return fmt.Sprintf("MessageType(%d)", uint8(t))
}

// Message is everything raft nodes say to each other. Which fields matter
// depends on Type; the others are zero.
type Message struct {
	Type MessageType
	From uint64
	To   uint64
	// Term is the sender's term; for MsgPreVote the term the sender would
	// campaign in (its current term plus one), and for a granted
	// MsgPreVoteResp that same future term.
	Term uint64
	// LogTerm is, for MsgApp, the term of the entry at Index; for MsgVote and
	// MsgPreVote, the term of the sender's last entry; for a rejecting
	// MsgAppResp, the term of the follower's entry at RejectHint.
	LogTerm uint64
	// Index is, for MsgApp, the index just before Entries; for MsgVote and
	// MsgPreVote, the sender's last index; for MsgAppResp, on success the
	// highest index known to match, on reject the rejected MsgApp's Index.
	Index   uint64
	Entries []Entry
	// Commit is the leader's commit index, capped per follower to what that
	// follower is known to hold, so a follower never commits an entry it
	// may not have.
	Commit uint64
	Reject bool
	// RejectHint is, for a rejecting MsgAppResp, the highest index at which
	// the follower's log might still match the leader's: the leader skips a
	// whole conflicting term per round trip instead of one entry.
	RejectHint uint64
	// Context is, for MsgHeartbeat and MsgHeartbeatResp, the leader's
	// heartbeat round, which confirms reads and measures the lease; for
	// MsgReadIndex and MsgReadIndexResp, the read request's id.
	Context uint64
	// Transfer marks a MsgVote sent on a leader's MsgTimeoutNow: receivers
	// vote even if they heard from a leader recently (thesis 4.2.3 does
	// not apply), since that leader asked for the election.
	Transfer bool

	// SnapOffset, SnapTotal, SnapChecksum, SnapDone and SnapData describe
	// a snapshot chunk of MsgSnap or its acknowledgement in MsgSnapResp;
	// see those types.
	SnapOffset   uint64
	SnapTotal    uint64
	SnapChecksum uint32
	SnapDone     bool
	SnapData     []byte
	// SnapVoters and SnapLearners are, for MsgSnap, the configuration
	// the snapshot carries (SnapshotMeta.Voters and Learners).
	SnapVoters   []uint64
	SnapLearners []uint64
	// SnapAddrs are, for MsgSnap, the member addresses the snapshot
	// carries (SnapshotMeta.Addrs).
	SnapAddrs map[uint64]string
}

// Bits of the encoded flags byte.
const (
	flagReject   = 1 << iota
	flagTransfer // Transfer is set
	flagContext  // a non-zero Context follows the flags byte
	flagsValid   = flagReject | flagTransfer | flagContext
)

// minEntrySize is the fewest bytes one encoded entry can take: one byte
// each for index, term, type and data length. The decoder uses it to
// refuse entry counts the input cannot possibly hold before allocating.
const minEntrySize = 4

// AppendBinary appends the encoding of m to b: the type byte, the numeric
// fields as unsigned varints, a flags byte (bit 0: Reject), the number of
// entries and then each entry as Entry.AppendBinary writes it. Flag bit 1
// is Transfer; bit 2 says a non-zero Context follows the flags byte as an
// unsigned varint, so messages without one encode as they did before
// Context existed. Bit 7 says the snapshot fields follow (after Context):
// SnapOffset, SnapTotal and SnapChecksum as unsigned varints, a byte for
// SnapDone and SnapData with a varint length. Bit 6 says a configuration
// follows the snapshot fields: the number of SnapVoters and each of them,
// then the same for SnapLearners, all unsigned varints. Bit 5 says the
// SnapAddrs follow: their number, then each member id (ascending) and its
// address with a varint length. Each optional part
// has its own flag, so a message without it encodes as before the part
// existed; a decoder refuses flags it does not know.
func (m *Message) AppendBinary(b []byte) ([]byte, error) {
	b = append(b, byte(m.Type))
	for _, v := range [...]uint64{m.From, m.To, m.Term, m.LogTerm, m.Index, m.Commit, m.RejectHint} {
		b = binary.AppendUvarint(b, v)
	}
	var flags byte
	if m.Reject {
		flags |= flagReject
	}
	if m.Transfer {
		flags |= flagTransfer
	}
	if m.Context != 0 {
		flags |= flagContext
	}
	b = append(b, flags|m.snapFlag()|m.confFlag()|m.addrsFlag())
	if m.Context != 0 {
		b = binary.AppendUvarint(b, m.Context)
	}
	b = m.appendSnap(b)
	b = m.appendConf(b)
	b = m.appendAddrs(b)
	b = binary.AppendUvarint(b, uint64(len(m.Entries)))
	for i := range m.Entries {
		b, _ = m.Entries[i].AppendBinary(b)
	}
	return b, nil
}

// UnmarshalBinary decodes a message that fills b exactly. Entry data is
// copied, so b may be reused afterwards. It returns an error wrapping
// ErrCorrupt for an unknown type or flag, a truncated or overlong input,
// or an entry count the input cannot hold.
func (m *Message) UnmarshalBinary(b []byte) error { return m.unmarshal(b, false) }

// UnmarshalBinaryShared decodes like UnmarshalBinary, except that the data
// of the entries points into b instead of being copied: a receiver that
// copied a whole batch of messages once decodes it without one allocation
// per entry. The caller must not modify b afterwards. Each Data is capped
// at its own end, so appending to one cannot write over the next.
func (m *Message) UnmarshalBinaryShared(b []byte) error { return m.unmarshal(b, true) }

// unmarshal is UnmarshalBinary, with entry data shared with b if share.
func (m *Message) unmarshal(b []byte, share bool) error {
	*m = Message{}
	d := decoder{b: b}
	m.Type = MessageType(d.byte())
	for _, p := range [...]*uint64{&m.From, &m.To, &m.Term, &m.LogTerm, &m.Index, &m.Commit, &m.RejectHint} {
		*p = d.uvarint()
	}
	flags := d.byte()
	if flags&flagContext != 0 {
		m.Context = d.uvarint()
	}
	if flags&flagSnap != 0 {
		m.decodeSnap(&d)
	}
	if flags&flagConf != 0 {
		m.decodeConf(&d)
	}
	if flags&flagAddrs != 0 {
		m.decodeAddrs(&d)
	}
	n := d.uvarint()
	if d.err != nil {
		return fmt.Errorf("%w: message: %v", ErrCorrupt, d.err)
	}
	if m.Type >= msgTypeCount {
		return fmt.Errorf("%w: message type %d", ErrCorrupt, m.Type)
	}
	if flags&^(flagsValid|flagSnap|flagConf|flagAddrs) != 0 || (flags&flagContext != 0 && m.Context == 0) ||
		(flags&flagSnap != 0 && !m.hasSnap()) || (flags&flagConf != 0 && !m.hasConf()) ||
		(flags&flagAddrs != 0 && len(m.SnapAddrs) == 0) {
		return fmt.Errorf("%w: message flags %#x", ErrCorrupt, flags)
	}
	m.Reject = flags&flagReject != 0
	m.Transfer = flags&flagTransfer != 0
	return m.decodeEntries(b[d.off:], n, share)
}

// decodeEntries reads exactly n entries that fill b, sharing their data
// with b if share.
func (m *Message) decodeEntries(b []byte, n uint64, share bool) error {
	if n > uint64(len(b)/minEntrySize) {
		return fmt.Errorf("%w: %d entries cannot fit in %d bytes", ErrCorrupt, n, len(b))
	}
	if n > 0 {
		m.Entries = make([]Entry, n)
	}
	off := 0
	for i := range m.Entries {
		used, err := m.Entries[i].decode(b[off:], share)
		if err != nil {
			return err
		}
		off += used
	}
	if off != len(b) {
		return fmt.Errorf("%w: %d trailing bytes after message", ErrCorrupt, len(b)-off)
	}
	return nil
}
