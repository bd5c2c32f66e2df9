package rafttest

import (
	"fmt"
	"strings"

	"github.com/bifrost-go/bifrost/raft"
)

// eventKind tells what a trace event records.
type eventKind uint8

const (
	evSend eventKind = iota
	evDeliver
	evDrop
	evCrash
	evTornCrash
	evRestart
	evRole
	evCommit
	evPropose
	evAck
	evNote
)

// event is one line of the trace. Events are kept as values and formatted
// only when a check fails, so tracing costs little on the passing path.
type event struct {
	at   Time
	kind eventKind
	node uint64
	msg  raft.Message // Entries is nil; n holds their count
	n    int
	a, b uint64
	role raft.Role
	note string
}

// trace is a ring buffer of the most recent events, and a hash of all of
// them: two runs with equal hashes saw the same events in the same order.
type trace struct {
	buf  []event
	next int
	full bool
	hash uint64
}

func newTrace(size int) trace { return trace{buf: make([]event, size), hash: fnvOffset} }

func (tr *trace) add(e event) {
	h := fnvUint(tr.hash, uint64(e.at))
	h = fnvUint(h, uint64(e.kind)<<56|e.node<<32|e.msg.From<<16|e.msg.To<<8|uint64(e.msg.Type))
	h = fnvUint(h, e.msg.Term^e.msg.Index<<20^e.a<<40^e.b)
	tr.hash = h
	tr.buf[tr.next] = e
	tr.next++
	if tr.next == len(tr.buf) {
		tr.next, tr.full = 0, true
	}
}

func (tr *trace) addMsg(at Time, kind eventKind, m *raft.Message, note string) {
	e := event{at: at, kind: kind, msg: *m, n: len(m.Entries), note: note}
	e.msg.Entries = nil
	tr.add(e)
}

// String formats the last n events, oldest first.
func (tr *trace) String(n int) string {
	var evs []event
	if tr.full {
		evs = append(evs, tr.buf[tr.next:]...)
	}
	evs = append(evs, tr.buf[:tr.next]...)
	if len(evs) > n {
		evs = evs[len(evs)-n:]
	}
	var sb strings.Builder
	for _, e := range evs {
		sb.WriteString("  ")
		sb.WriteString(e.String())
		sb.WriteByte('\n')
	}
	return sb.String()
}

func (e event) String() string {
	at := fmt.Sprintf("t=%d.%d", e.at/TickUnits, e.at%TickUnits)
	switch e.kind {
	case evSend, evDeliver, evDrop:
		verb := [...]string{evSend: "send", evDeliver: "recv", evDrop: "drop"}[e.kind]
		s := fmt.Sprintf("%s %s %s", at, verb, formatMsg(&e.msg, e.n))
		if e.note != "" {
			s += " (" + e.note + ")"
		}
		return s
	case evCrash:
		return fmt.Sprintf("%s node %d crashed", at, e.node)
	case evTornCrash:
		return fmt.Sprintf("%s node %d crashed before its writes were synced: %s", at, e.node, e.note)
	case evRestart:
		return fmt.Sprintf("%s node %d restarted: %s", at, e.node, e.note)
	case evRole:
		return fmt.Sprintf("%s node %d is %v in term %d", at, e.node, e.role, e.a)
	case evCommit:
		return fmt.Sprintf("%s leader %d committed up to %d in term %d", at, e.node, e.a, e.b)
	case evPropose:
		return fmt.Sprintf("%s proposed to %d: index %d term %d", at, e.node, e.a, e.b)
	case evAck:
		return fmt.Sprintf("%s client acknowledged: index %d term %d (leader %d)", at, e.a, e.b, e.node)
	}
	return fmt.Sprintf("%s %s", at, e.note)
}

func formatMsg(m *raft.Message, entries int) string {
	s := fmt.Sprintf("%d->%d %v term=%d", m.From, m.To, m.Type, m.Term)
	switch m.Type {
	case raft.MsgApp:
		s += fmt.Sprintf(" index=%d logterm=%d entries=%d commit=%d", m.Index, m.LogTerm, entries, m.Commit)
	case raft.MsgAppResp:
		s += fmt.Sprintf(" index=%d", m.Index)
		if m.Reject {
			s += fmt.Sprintf(" REJECT hint=%d logterm=%d", m.RejectHint, m.LogTerm)
		}
	case raft.MsgSnap, raft.MsgSnapResp:
		s += fmt.Sprintf(" snap=%d/%d offset=%d len=%d total=%d done=%v", m.Index, m.LogTerm, m.SnapOffset, len(m.SnapData), m.SnapTotal, m.SnapDone)
	case raft.MsgHeartbeat:
		s += fmt.Sprintf(" commit=%d", m.Commit)
		if m.Context != 0 {
			s += fmt.Sprintf(" round=%d", m.Context)
		}
	case raft.MsgVote, raft.MsgPreVote:
		s += fmt.Sprintf(" last=%d/%d", m.Index, m.LogTerm)
		if m.Transfer {
			s += " transfer"
		}
	case raft.MsgReadIndex, raft.MsgReadIndexResp:
		s += fmt.Sprintf(" read=%d index=%d", m.Context, m.Index)
		if m.Reject {
			s += " REJECT"
		}
	case raft.MsgHeartbeatResp:
		if m.Context != 0 {
			s += fmt.Sprintf(" round=%d", m.Context)
		}
	case raft.MsgVoteResp, raft.MsgPreVoteResp:
		if m.Reject {
			s += " REJECT"
		} else {
			s += " granted"
		}
	}
	return s
}
