package membership

import (
	"bytes"
	"encoding"
	"errors"
	"reflect"
	"testing"

	"github.com/bifrost-go/bifrost/rpc"
)

// wire is a value of one of the types that cross the network, the log or
// a snapshot, with its decoder.
type wire interface {
	encoding.BinaryAppender
	encoding.BinaryUnmarshaler
}

// wireTypes returns a fresh value of each wire type.
func wireTypes() []wire {
	return []wire{new(Member), new(Event), new(LeaderChange), new(request), new(list), new(listing),
		new(marks), new(heartbeat), new(heartbeatAnswer), new(groupKey)}
}

var sample = Member{ID: 7, Name: "cache-1", Addr: "10.0.0.1:7000", Incarnation: 3, Online: true, Weight: 2}

// samples are one value of each wire type, in wireTypes' order.
func samples() []wire {
	return []wire{&sample, &Event{Kind: Weighted, Group: "g", Member: sample, Version: 9},
		&LeaderChange{Group: "g", Old: &sample, Version: 4}, &request{ID: 1, Incarnation: 2, Name: "n", Addr: "a", Group: "g", Weight: 4},
		&list{Group: "g", OnlineOnly: true}, &listing{Members: []Member{sample, sample}, Version: 3},
		&marks{{ID: 1, Incarnation: 2, Online: true}, {ID: 3, Incarnation: 1}}, &heartbeat{ID: 5, Incarnation: 6},
		&heartbeatAnswer{Status: hbNotLeader, Leader: "127.0.0.1:1"}, ptr(groupKey("g"))}
}

func ptr[T any](v T) *T { return &v }

func TestWireRoundTrips(t *testing.T) {
	fresh := wireTypes()
	for i, v := range samples() {
		b, err := v.AppendBinary(nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := fresh[i].UnmarshalBinary(b); err != nil {
			t.Errorf("%T: %v", v, err)
		} else if !reflect.DeepEqual(fresh[i], v) {
			t.Errorf("%T: got %+v back, want %+v", v, fresh[i], v)
		}
		if len(b) > 0 && reflect.TypeOf(v) != reflect.TypeFor[*groupKey]() {
			if err := fresh[i].UnmarshalBinary(append(b, 0)); !errors.Is(err, ErrCorrupt) {
				t.Errorf("%T with a trailing byte: %v, want ErrCorrupt", v, err)
			}
			if err := fresh[i].UnmarshalBinary(b[:len(b)-1]); !errors.Is(err, ErrCorrupt) {
				t.Errorf("%T cut short: %v, want ErrCorrupt", v, err)
			}
		}
	}
	// The exported types take rpc's fast path, which sm uses too.
	c := rpc.NewCodec[Event]()
	ev := Event{Kind: Joined, Member: sample, Version: 1}
	b, _ := c.Append(nil, ev)
	want, _ := ev.AppendBinary(nil)
	if !bytes.Equal(b, want) {
		t.Errorf("rpc.Codec[Event] does not use AppendBinary")
	}
}

// FuzzDecode feeds every wire decoder arbitrary bytes: none panics, and
// what one accepts encodes to bytes that decode to the same value.
func FuzzDecode(f *testing.F) {
	for i, v := range samples() {
		b, _ := v.AppendBinary(nil)
		f.Add(byte(i), b)
	}
	f.Fuzz(func(t *testing.T, kind byte, data []byte) {
		types := wireTypes()
		v := types[int(kind)%len(types)]
		if v.UnmarshalBinary(data) != nil {
			return
		}
		b, err := v.AppendBinary(nil)
		if err != nil {
			t.Fatal(err)
		}
		again := wireTypes()[int(kind)%len(types)]
		if err := again.UnmarshalBinary(b); err != nil {
			t.Fatalf("%T: re-encoding does not decode: %v", v, err)
		}
		if !reflect.DeepEqual(normal(v), normal(again)) {
			t.Fatalf("%T: %+v, then %+v", v, v, again)
		}
	})
}

// normal treats an empty listing or batch like a nil one.
func normal(v wire) any {
	switch x := v.(type) {
	case *listing:
		if len(x.Members) == 0 {
			return listing{Version: x.Version}
		}
	case *marks:
		if len(*x) == 0 {
			return marks(nil)
		}
	}
	return v
}

// FuzzRestore feeds a state snapshots: none panics, and one it accepts
// snapshots back to the same bytes and restores again.
func FuzzRestore(f *testing.F) {
	l := newStateLog()
	l.do(func(*effects) error { return l.s.createGroup("g") })
	a, _ := l.join("a", "a:1")
	l.join("b", "b:1")
	l.do(func(fx *effects) error { return l.s.joinGroup(fx, a.ID, 1, "g", 3) })
	f.Add(l.snapshot())
	f.Add(newState().appendSnapshot(nil))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		s := newState()
		if s.Restore(data) != nil {
			return
		}
		snap, _ := s.Snapshot()
		if data == nil {
			return
		}
		if !bytes.Equal(snap, data) {
			// Varints may be written longer than needed; values must agree.
			back := newState()
			if err := back.Restore(snap); err != nil {
				t.Fatalf("a restored state's snapshot does not restore: %v", err)
			}
			if again, _ := back.Snapshot(); !bytes.Equal(again, snap) {
				t.Fatalf("snapshot not stable")
			}
		}
	})
}
