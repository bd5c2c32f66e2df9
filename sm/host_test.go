package sm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/bifrost-go/bifrost/raft"
)

var testCounter = NewNumber("counter")

// hostLog feeds a host log entries as a raft node would.
type hostLog struct {
	t     *testing.T
	h     *Host
	index uint64
}

func newHostLog(t *testing.T, cfg HostConfig) *hostLog {
	h, err := NewHost(cfg, testCounter.Machine())
	if err != nil {
		t.Fatal(err)
	}
	return &hostLog{t: t, h: h}
}

func (l *hostLog) apply(op byte, at time.Duration, req []byte) parsedReply {
	l.t.Helper()
	l.index++
	a := l.h.Apply(raft.Entry{Index: l.index, Term: 1, Data: appendEntry(nil, op, int64(at), req)})
	return parsedReply{status: a[0], index: l.index, data: a[1:]}
}

func (l *hostLog) open(at time.Duration) uint64 {
	l.t.Helper()
	r := l.apply(opOpenSession, at, nil)
	id, _ := binary.Uvarint(r.data)
	if r.status != stOK || id != l.index {
		l.t.Fatalf("open: status %d id %d, want ok and %d", r.status, id, l.index)
	}
	return id
}

func (l *hostLog) add(at time.Duration, client, seq, low uint64, d int64) parsedReply {
	l.t.Helper()
	payload, _ := testCounter.add.req.Append(nil, d)
	r := request{client: client, seq: seq, low: low, machine: testCounter.add.machineID, fn: testCounter.add.functionID, payload: payload}
	return l.apply(opCommand, at, r.appendBinary(nil))
}

func (l *hostLog) value() int64 {
	_, a := l.h.query(testCounter.get.machineID, testCounter.get.functionID, 0, nil)
	v, err := testCounter.get.resp.Decode(a[1:])
	if err != nil || a[0] != stOK {
		l.t.Fatalf("get: status %d: %v", a[0], err)
	}
	return v
}

// A retried command gets its first answer and applies once, also with
// several in flight and after a snapshot.
func TestSessionsApplyOnce(t *testing.T) {
	l := newHostLog(t, HostConfig{})
	c := l.open(0)
	first := l.add(1, c, 1, 1, 5)
	l.add(2, c, 2, 1, 7) // two in flight: 1 and 2
	if again := l.add(3, c, 1, 1, 5); !bytes.Equal(again.data, first.data) {
		t.Errorf("retry of seq 1 answered %x, first answer %x", again.data, first.data)
	}
	if got := l.value(); got != 12 {
		t.Fatalf("counter %d after retries, want 12", got)
	}
	snap, err := l.h.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	restored := newHostLog(t, HostConfig{})
	if err := restored.h.Restore(raft.SnapshotMeta{Index: l.index, Term: 1}, snap); err != nil {
		t.Fatal(err)
	}
	restored.index = l.index
	restored.add(4, c, 2, 2, 7) // a retry of seq 2 after the restore
	if got := restored.value(); got != 12 {
		t.Errorf("counter %d after a retry across the snapshot, want 12", got)
	}
}

// Sessions expire by the leader's time in the log, the same on every
// replica, and the time never goes back.
func TestSessionsExpireByLogTime(t *testing.T) {
	l := newHostLog(t, HostConfig{SessionTimeout: time.Second})
	idle := l.open(0)
	busy := l.open(0)
	for i := range 20 {
		at := time.Duration(i+1) * 100 * time.Millisecond
		if r := l.add(at, busy, uint64(i+1), uint64(i+1), 1); r.status != stOK {
			t.Fatalf("busy client at %v: status %d", at, r.status)
		}
	}
	if r := l.add(2100*time.Millisecond, idle, 1, 1, 1); r.status != stSessionExpired {
		t.Errorf("idle client after 2.1s: status %d, want session expired", r.status)
	}
	// An older leader clock does not revive it.
	if r := l.add(500*time.Millisecond, idle, 1, 1, 1); r.status != stSessionExpired {
		t.Errorf("idle client at an earlier time: status %d, want session expired", r.status)
	}
	if got := l.value(); got != 20 {
		t.Errorf("counter %d, want 20", got)
	}
}

func TestHostRefusesBadInput(t *testing.T) {
	l := newHostLog(t, HostConfig{})
	if a := l.h.Apply(raft.Entry{Index: 1, Term: 1, Data: []byte{9, 9}}); a[0] != stFailed {
		t.Errorf("undecodable entry: status %d, want failed", a[0])
	}
	if l.h.Applied() != 1 {
		t.Errorf("applied %d after a bad entry, want 1", l.h.Applied())
	}
	l.index = 1
	c := l.open(0)
	r := request{client: c, seq: 1, low: 1, machine: 12345678, fn: 1}
	if got := l.apply(opCommand, 0, r.appendBinary(nil)); got.status != stNoFunction {
		t.Errorf("unknown machine: status %d, want no function", got.status)
	}
	other, _ := NewHost(HostConfig{}, NewValue[string]("other").Machine())
	snap, _ := other.Snapshot()
	if err := l.h.Restore(raft.SnapshotMeta{Index: 9, Term: 1}, snap); !errors.Is(err, ErrUnknownMachine) {
		t.Errorf("restore of a snapshot with another machine: %v, want ErrUnknownMachine", err)
	}
}

func TestNewHostRefusesDuplicates(t *testing.T) {
	if _, err := NewHost(HostConfig{}, testCounter.Machine(), testCounter.Machine()); !errors.Is(err, ErrDuplicate) {
		t.Errorf("two machines of one name: %v, want ErrDuplicate", err)
	}
	m := NewMachine("m", &numberState{})
	q := NewQuery[int, int]("m", "f")
	HandleQuery(m, q, func(*Read, int) (int, error) { return 0, nil })
	HandleQuery(m, q, func(*Read, int) (int, error) { return 0, nil })
	if _, err := NewHost(HostConfig{}, m); !errors.Is(err, ErrDuplicate) {
		t.Errorf("a function registered twice: %v, want ErrDuplicate", err)
	}
}

func FuzzDecodeEntry(f *testing.F) {
	r := request{client: 3, seq: 4, low: 2, machine: 5, fn: 6, payload: []byte("x")}
	f.Add(appendEntry(nil, opCommand, 77, r.appendBinary(nil)))
	f.Add(appendEntry(nil, opOpenSession, 1, nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := decodeEntry(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		if e.op == opCommand {
			again := appendEntry(nil, e.op, e.time, e.req.appendBinary(nil))
			if _, err := decodeEntry(again); err != nil {
				t.Fatalf("re-encoded entry does not decode: %v", err)
			}
		}
	})
}

func FuzzHostRestore(f *testing.F) {
	l := newHostLog(&testing.T{}, HostConfig{})
	c := l.open(0)
	l.add(1, c, 1, 1, 3)
	snap, _ := l.h.Snapshot()
	f.Add(snap)
	f.Fuzz(func(t *testing.T, b []byte) {
		// A refused snapshot stops the node; it must only not panic,
		// and one accepted must encode again.
		h, _ := NewHost(HostConfig{}, testCounter.Machine())
		if err := h.Restore(raft.SnapshotMeta{Index: 1, Term: 1}, b); err == nil {
			if _, err := h.Snapshot(); err != nil {
				t.Fatalf("restored state does not snapshot: %v", err)
			}
		}
	})
}

func FuzzParseReply(f *testing.F) {
	f.Add(reply(stOK, 7, []byte("v")))
	f.Fuzz(func(t *testing.T, b []byte) {
		if r, err := parseReply(b); err == nil {
			if _, err := result(r); err != nil && r.status == stOK {
				t.Fatalf("ok answer gave %v", err)
			}
		}
	})
}

func TestHostStateFindsMachinesByName(t *testing.T) {
	st := &emptyState{}
	h, err := NewHost(HostConfig{}, NewMachine("mine", st))
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := h.State("mine"); !ok || got != Snapshotter(st) {
		t.Errorf("State(mine) = %v, %v; want the machine's state", got, ok)
	}
	if _, ok := h.State("other"); ok {
		t.Error("State of a machine the host does not carry was found")
	}
}
