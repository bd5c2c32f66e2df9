package sm

import (
	"encoding/binary"
	"maps"
	"slices"
	"time"
)

// Client sessions make commands exactly-once (Ongaro's thesis, 6.3): each
// command carries its client's id and a sequence number, and the host
// keeps the answers of the numbers the client may still retry. A client
// with several commands in flight sends with each the lowest number it
// still waits for, and the host forgets the answers below it. Sessions
// live in the replicated state and in snapshots, and expire by the
// leader's time stamped into the log, so every replica expires the same
// sessions at the same index.

// session is one client's state.
type session struct {
	last    int64             // leader time of its last command, Unix nanoseconds
	low     uint64            // every seq below was answered to the client
	answers map[uint64][]byte // answers of the seqs at or above low
}

// answered returns the answer already given to seq, if seq applied, and
// forgets the answers below low. A seq below low was answered and
// forgotten: the client no longer waits for it, so any answer does.
func (s *session) answered(seq, low uint64) ([]byte, bool) {
	if low > s.low {
		s.forgetBelow(low)
	}
	if seq < s.low {
		return answer(stUnknown, nil), true
	}
	a, ok := s.answers[seq]
	return a, ok
}

// forgetBelow drops the answers of the seqs below low. Seqs are numbered
// one by one, so walking from the old low costs what low moved by, not
// the answers held, unless low leapt further than there are answers.
func (s *session) forgetBelow(low uint64) {
	if low-s.low > uint64(len(s.answers)) {
		for q := range s.answers {
			if q < low {
				delete(s.answers, q)
			}
		}
	} else {
		for q := s.low; q < low; q++ {
			delete(s.answers, q)
		}
	}
	s.low = low
}

func (s *session) record(seq uint64, a []byte) { s.answers[seq] = a }

// sessions is every open session, by client id.
type sessions struct {
	byID    map[uint64]*session
	scanned int64 // leader time of the last expiry scan
}

func newSessions() sessions { return sessions{byID: map[uint64]*session{}} }

func (ss *sessions) open(id uint64, now int64) {
	ss.byID[id] = &session{last: now, answers: map[uint64][]byte{}}
}

func (ss *sessions) close(id uint64) { delete(ss.byID, id) }

func (ss *sessions) get(id uint64) *session { return ss.byID[id] }

// expire drops the sessions idle for longer than timeout at now and
// returns their ids. It scans at most every tenth of the timeout, so a
// busy host does not walk every session on every command.
func (ss *sessions) expire(now int64, timeout time.Duration) (expired []uint64) {
	if now-ss.scanned < int64(timeout/10) {
		return nil
	}
	ss.scanned = now
	for id, s := range ss.byID {
		if now-s.last > int64(timeout) {
			delete(ss.byID, id)
			expired = append(expired, id)
		}
	}
	return expired
}

// appendBinary encodes the sessions in id order.
func (ss *sessions) appendBinary(b []byte) []byte {
	b = binary.AppendVarint(b, ss.scanned)
	ids := slices.Sorted(maps.Keys(ss.byID))
	b = binary.AppendUvarint(b, uint64(len(ids)))
	for _, id := range ids {
		s := ss.byID[id]
		b = binary.AppendUvarint(b, id)
		b = binary.AppendVarint(b, s.last)
		b = binary.AppendUvarint(b, s.low)
		seqs := slices.Sorted(maps.Keys(s.answers))
		b = binary.AppendUvarint(b, uint64(len(seqs)))
		for _, q := range seqs {
			b = appendBytes(binary.AppendUvarint(b, q), s.answers[q])
		}
	}
	return b
}

func decodeSessions(d *decoder) (sessions, error) {
	ss := newSessions()
	ss.scanned = d.varint()
	for n := d.count(); n > 0 && d.err == nil; n-- {
		id := d.uvarint()
		s := &session{last: d.varint(), low: d.uvarint(), answers: map[uint64][]byte{}}
		for k := d.count(); k > 0 && d.err == nil; k-- {
			q := d.uvarint()
			s.answers[q] = slices.Clone(d.bytes())
		}
		ss.byID[id] = s
	}
	return ss, d.err
}
