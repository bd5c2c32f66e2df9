package linearizability

import (
	"errors"
	"maps"
	"testing"

	"github.com/bifrost-go/bifrost/raft"
)

func encode(t *testing.T, c Command) []byte {
	t.Helper()
	b, err := c.AppendBinary(nil)
	if err != nil {
		t.Fatalf("encode %+v: %v", c, err)
	}
	return b
}

func TestCommandRoundTrip(t *testing.T) {
	tests := []Command{
		{Kind: OpGet, Client: 1, Seq: 1, Key: "k"},
		{Kind: OpPut, Client: 1 << 60, Seq: 1 << 40, Key: "", Value: "v"},
		{Kind: OpAppend, Client: 7, Seq: 3, Key: "key with spaces", Value: string(make([]byte, 300))},
	}
	for _, want := range tests {
		var got Command
		if err := got.UnmarshalBinary(encode(t, want)); err != nil {
			t.Fatalf("decode %+v: %v", want, err)
		}
		if got != want {
			t.Errorf("round trip: got %+v, want %+v", got, want)
		}
	}
}

func TestCommandRejectsBadEncodings(t *testing.T) {
	good := encode(t, Command{Kind: OpPut, Client: 1, Seq: 2, Key: "k", Value: "v"})
	tests := map[string][]byte{
		"empty":          nil,
		"unknown kind":   append([]byte{9}, good[1:]...),
		"truncated":      good[:len(good)-1],
		"trailing bytes": append(good[:len(good):len(good)], 0),
		"huge length":    {byte(OpPut), 1, 1, 0xff, 0xff, 0xff, 0xff, 0x0f},
	}
	for name, b := range tests {
		var c Command
		if err := c.UnmarshalBinary(b); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: err = %v, want ErrCorrupt", name, err)
		}
	}
}

// apply applies c at index and decodes the result.
func apply(t *testing.T, kv *KV, index uint64, c Command) Result {
	t.Helper()
	r, err := DecodeResult(kv.Apply(raft.Entry{Index: index, Term: 1, Data: encode(t, c)}))
	if err != nil {
		t.Fatalf("apply %+v: %v", c, err)
	}
	return r
}

func TestKVAppliesEachRequestOnce(t *testing.T) {
	kv := NewKV()
	steps := []struct {
		cmd  Command
		want Result
	}{
		{Command{Kind: OpAppend, Client: 1, Seq: 1, Key: "x", Value: "a"}, Result{}},
		{Command{Kind: OpAppend, Client: 1, Seq: 1, Key: "x", Value: "a"}, Result{Duplicate: true}}, // retry
		{Command{Kind: OpAppend, Client: 2, Seq: 1, Key: "x", Value: "b"}, Result{}},                // another client
		{Command{Kind: OpGet, Client: 1, Seq: 2, Key: "x"}, Result{Value: "ab"}},
		{Command{Kind: OpGet, Client: 1, Seq: 2, Key: "x"}, Result{Duplicate: true, Value: "ab"}},   // repeats the answer
		{Command{Kind: OpAppend, Client: 1, Seq: 1, Key: "x", Value: "a"}, Result{Duplicate: true}}, // older than the last
		{Command{Kind: OpPut, Client: 1, Seq: 3, Key: "x", Value: "c"}, Result{}},
	}
	for i, s := range steps {
		if got := apply(t, kv, uint64(i+1), s.cmd); got != s.want {
			t.Errorf("step %d %+v: got %+v, want %+v", i, s.cmd, got, s.want)
		}
	}
	if got := kv.Get("x"); got != "c" {
		t.Errorf("x = %q, want %q", got, "c")
	}
	if got := kv.Apply(raft.Entry{Index: 100, Term: 1, Data: []byte{0}}); got != nil {
		t.Errorf("malformed command: result %q, want nil", got)
	}
}

func TestKVSnapshotKeepsSessions(t *testing.T) {
	kv := NewKV()
	apply(t, kv, 1, Command{Kind: OpAppend, Client: 1, Seq: 1, Key: "x", Value: "a"})
	apply(t, kv, 2, Command{Kind: OpPut, Client: 2, Seq: 5, Key: "y", Value: "b"})
	snap, err := kv.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	restored := NewKV()
	if err := restored.Restore(raft.SnapshotMeta{Index: 2, Term: 1}, snap); err != nil {
		t.Fatalf("restore: %v", err)
	}
	wantApplied, wantData := kv.State()
	gotApplied, gotData := restored.State()
	if gotApplied != wantApplied || !maps.Equal(gotData, wantData) {
		t.Errorf("restored state %d %v, want %d %v", gotApplied, gotData, wantApplied, wantData)
	}
	// The retry of a request applied before the snapshot is recognized.
	if r := apply(t, restored, 3, Command{Kind: OpAppend, Client: 1, Seq: 1, Key: "x", Value: "a"}); !r.Duplicate {
		t.Errorf("retry after restore applied again: %+v", r)
	}
	if got := restored.Get("x"); got != "a" {
		t.Errorf("x = %q after the retry, want %q", got, "a")
	}
	again, _ := restored.Snapshot()
	if err := NewKV().Restore(raft.SnapshotMeta{Index: 3, Term: 1}, again[:len(again)-1]); !errors.Is(err, ErrCorrupt) {
		t.Errorf("restore of a truncated snapshot: %v, want ErrCorrupt", err)
	}
}

func TestHistoryOrdersOperations(t *testing.T) {
	var h History
	a := h.Invoke(0, Input{Kind: OpPut, Key: "x", Value: "1"})
	h.Return(a, "")
	b := h.Invoke(1, Input{Kind: OpGet, Key: "x"})
	c := h.Invoke(2, Input{Kind: OpGet, Key: "x"})
	h.Return(c, "1")
	h.Annotate(c, "on 1")
	ops := h.Operations()
	if ops[a].Return >= ops[b].Call {
		t.Errorf("an operation that returned before another was called does not precede it: %+v %+v", ops[a], ops[b])
	}
	if !ops[b].Pending || ops[c].Pending || ops[c].Output != "1" || ops[c].Detail != "on 1" {
		t.Errorf("recorded %+v", ops)
	}
}

func FuzzCommandDecode(f *testing.F) {
	f.Add([]byte{byte(OpPut), 1, 1, 1, 'k', 1, 'v'})
	f.Add([]byte{byte(OpGet), 0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		var c Command
		if c.UnmarshalBinary(b) != nil {
			return
		}
		again, _ := c.AppendBinary(nil)
		var d Command
		if err := d.UnmarshalBinary(again); err != nil || d != c {
			t.Errorf("re-encoding %+v: got %+v, %v", c, d, err)
		}
	})
}

func FuzzKVRestore(f *testing.F) {
	kv := NewKV()
	kv.Apply(raft.Entry{Index: 1, Term: 1, Data: []byte{byte(OpPut), 1, 1, 1, 'k', 1, 'v'}})
	snap, _ := kv.Snapshot()
	f.Add(snap)
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = NewKV().Restore(raft.SnapshotMeta{Index: 1, Term: 1}, b) // must not panic
	})
}
