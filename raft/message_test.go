package raft

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"testing"

	"pgregory.net/rapid"
)

func genEntry() *rapid.Generator[Entry] {
	return rapid.Custom(func(t *rapid.T) Entry {
		e := Entry{
			Index: rapid.Uint64().Draw(t, "index"),
			Term:  rapid.Uint64().Draw(t, "term"),
			Type:  EntryType(rapid.IntRange(0, int(entryTypeCount)-1).Draw(t, "type")),
		}
		if data := rapid.SliceOfN(rapid.Byte(), 0, 64).Draw(t, "data"); len(data) > 0 {
			e.Data = data
		}
		return e
	})
}

func genMessage() *rapid.Generator[Message] {
	return rapid.Custom(func(t *rapid.T) Message {
		m := Message{
			Type:       MessageType(rapid.IntRange(0, int(msgTypeCount)-1).Draw(t, "type")),
			From:       rapid.Uint64().Draw(t, "from"),
			To:         rapid.Uint64().Draw(t, "to"),
			Term:       rapid.Uint64().Draw(t, "term"),
			LogTerm:    rapid.Uint64().Draw(t, "logTerm"),
			Index:      rapid.Uint64().Draw(t, "index"),
			Commit:     rapid.Uint64().Draw(t, "commit"),
			Reject:     rapid.Bool().Draw(t, "reject"),
			RejectHint: rapid.Uint64().Draw(t, "hint"),
			Context:    rapid.OneOf(rapid.Just(uint64(0)), rapid.Uint64()).Draw(t, "context"),
			Transfer:   rapid.Bool().Draw(t, "transfer"),
		}
		if ents := rapid.SliceOfN(genEntry(), 0, 8).Draw(t, "entries"); len(ents) > 0 {
			m.Entries = ents
		}
		return m
	})
}

func TestMessageRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		m := genMessage().Draw(t, "m")
		prefix := rapid.SliceOfN(rapid.Byte(), 0, 8).Draw(t, "prefix")
		b, err := m.AppendBinary(bytes.Clone(prefix))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b[:len(prefix)], prefix) {
			t.Fatal("AppendBinary changed the bytes before it")
		}
		var got Message
		if err := got.UnmarshalBinary(b[len(prefix):]); err != nil {
			t.Fatalf("UnmarshalBinary: %v", err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Fatalf("round trip\n got %+v\nwant %+v", got, m)
		}
	})
}

// TestMessageSharedDecode checks that the sharing decoder decodes what the
// copying one does, and that each entry's data is capped at its own end,
// so appending to it cannot overwrite the entry after it.
func TestMessageSharedDecode(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		m := genMessage().Draw(t, "m")
		b, _ := m.AppendBinary(nil)
		var want, got Message
		if err := want.UnmarshalBinary(b); err != nil {
			t.Fatalf("UnmarshalBinary: %v", err)
		}
		if err := got.UnmarshalBinaryShared(b); err != nil {
			t.Fatalf("UnmarshalBinaryShared: %v", err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("shared decode\n got %+v\nwant %+v", got, want)
		}
		for i, e := range got.Entries {
			if cap(e.Data) != len(e.Data) {
				t.Fatalf("entry %d: data has capacity %d beyond its length %d", i, cap(e.Data), len(e.Data))
			}
		}
	})
}

func TestEntryRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		e := genEntry().Draw(t, "e")
		b, _ := e.AppendBinary(nil)
		if len(b) > e.EncodedSize() {
			t.Fatalf("encoded %d bytes, EncodedSize says at most %d", len(b), e.EncodedSize())
		}
		var got Entry
		if err := got.UnmarshalBinary(b); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, e) {
			t.Fatalf("round trip\n got %+v\nwant %+v", got, e)
		}
	})
}

func TestMessageDecodeRejects(t *testing.T) {
	valid, _ := (&Message{Type: MsgApp, From: 1, To: 2, Term: 3, Entries: logOf(1, 2)}).AppendBinary(nil)
	// A header claiming 2^40 entries in a handful of bytes.
	huge, _ := (&Message{Type: MsgApp}).AppendBinary(nil)
	huge = binary.AppendUvarint(huge[:len(huge)-1], 1<<40)
	tests := map[string][]byte{
		"empty":           {},
		"unknown type":    append([]byte{byte(msgTypeCount)}, valid[1:]...),
		"trailing byte":   append(bytes.Clone(valid), 0),
		"truncated":       valid[:len(valid)-1],
		"bad flags":       flip(valid, 8, 0x08),
		"zero context":    withContextByte(valid, 0),
		"absurd entries":  huge,
		"varint overflow": {byte(MsgApp), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
	}
	for name, b := range tests {
		t.Run(name, func(t *testing.T) {
			var m Message
			if err := m.UnmarshalBinary(b); !errors.Is(err, ErrCorrupt) {
				t.Errorf("UnmarshalBinary(%x) = %v, want ErrCorrupt", b, err)
			}
		})
	}
}

// withContextByte returns a copy of the MsgApp encoding b (flags at byte
// 8) claiming a Context whose one-byte varint is v.
func withContextByte(b []byte, v byte) []byte {
	c := bytes.Clone(b[:9])
	c[8] |= flagContext
	return append(append(c, v), b[9:]...)
}

func TestMessageEncodingWithoutContextUnchanged(t *testing.T) {
	// Messages without Context or Transfer encode as before either
	// existed: the flags byte is 0 or 1 and nothing follows it but the
	// entry count.
	m := Message{Type: MsgAppResp, From: 2, To: 1, Term: 3, Index: 4, Reject: true}
	got, _ := m.AppendBinary(nil)
	want := []byte{byte(MsgAppResp), 2, 1, 3, 0, 4, 0, 0, 1, 0}
	if !bytes.Equal(got, want) {
		t.Errorf("encoding = %x, want %x", got, want)
	}
	m = Message{Type: MsgHeartbeat, From: 1, To: 2, Term: 3, Context: 300, Transfer: true}
	got, _ = m.AppendBinary(nil)
	want = []byte{byte(MsgHeartbeat), 1, 2, 3, 0, 0, 0, 0, flagTransfer | flagContext, 0xac, 0x02, 0}
	if !bytes.Equal(got, want) {
		t.Errorf("encoding with context = %x, want %x", got, want)
	}
}

func TestNewMessageTypesKeepWireOrder(t *testing.T) {
	// The numeric values are the wire format: appended, never inserted.
	for typ, want := range map[MessageType]uint8{
		MsgPreVote: 0, MsgHeartbeatResp: 7, MsgTimeoutNow: 8, MsgReadIndex: 9, MsgReadIndexResp: 10,
	} {
		if uint8(typ) != want {
			t.Errorf("%v = %d, want %d", typ, uint8(typ), want)
		}
	}
}

// flip returns a copy of b with byte i set to v.
func flip(b []byte, i int, v byte) []byte {
	c := bytes.Clone(b)
	c[i] = v
	return c
}

func FuzzMessageDecode(f *testing.F) {
	for _, m := range []Message{
		{},
		{Type: MsgApp, From: 1, To: 2, Term: 3, Index: 4, LogTerm: 2, Commit: 3, Entries: logOf(2, 3)},
		{Type: MsgAppResp, From: 2, To: 1, Term: 3, Reject: true, RejectHint: 7, LogTerm: 1},
		{Type: MsgPreVote, From: 3, To: 1, Term: 1 << 40, Index: 1 << 33},
		{Type: MsgHeartbeat, From: 1, To: 2, Term: 3, Commit: 2, Context: 9},
		{Type: MsgHeartbeatResp, From: 2, To: 1, Term: 3, Context: 1 << 50},
		{Type: MsgVote, From: 2, To: 3, Term: 4, Index: 5, LogTerm: 3, Transfer: true},
		{Type: MsgTimeoutNow, From: 1, To: 2, Term: 3},
		{Type: MsgReadIndex, From: 2, To: 1, Term: 3, Context: 0xdeadbeef},
		{Type: MsgReadIndexResp, From: 1, To: 2, Term: 3, Index: 7, Context: 0xdeadbeef},
		{Type: MsgReadIndexResp, From: 1, To: 2, Term: 3, Reject: true, Context: 1},
	} {
		b, _ := m.AppendBinary(nil)
		f.Add(b)
	}
	f.Fuzz(checkMessageReencodes)
}

// checkMessageReencodes is the body of the message fuzz targets: whatever
// decodes must re-encode to bytes that decode to the same message, so the
// decoder ignored nothing. (The bytes may differ: a varint need not be
// minimal.)
func checkMessageReencodes(t *testing.T, b []byte) {
	var m, shared Message
	err := m.UnmarshalBinary(b)
	if errShared := shared.UnmarshalBinaryShared(b); (err == nil) != (errShared == nil) ||
		err == nil && !reflect.DeepEqual(shared, m) {
		t.Fatalf("%x: shared decode gives %+v (%v), copying decode %+v (%v)", b, shared, errShared, m, err)
	}
	if err != nil {
		return
	}
	again, _ := m.AppendBinary(nil)
	var m2 Message
	if err := m2.UnmarshalBinary(again); err != nil || !reflect.DeepEqual(m2, m) {
		t.Fatalf("%x decodes to %+v, which re-encodes to %x that decodes differently", b, m, again)
	}
}

func FuzzEntryDecode(f *testing.F) {
	for _, e := range logOf(1, 5) {
		b, _ := e.AppendBinary(nil)
		f.Add(b)
	}
	f.Add([]byte{1, 1, 3, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		var e Entry
		if err := e.UnmarshalBinary(b); err != nil {
			return
		}
		again, _ := e.AppendBinary(nil)
		var e2 Entry
		if err := e2.UnmarshalBinary(again); err != nil || !reflect.DeepEqual(e2, e) {
			t.Fatalf("re-encoding %x gives %x, which decodes to %+v, %v", b, again, e2, err)
		}
	})
}
