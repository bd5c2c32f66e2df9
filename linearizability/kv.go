package linearizability

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/bifrost-go/bifrost/raft"
)

// OpKind names an operation on the key-value store.
type OpKind uint8

// The operations of the store. Put and Append change it and go through the
// log; Get reads it.
const (
	OpGet OpKind = iota + 1
	OpPut
	OpAppend
)

// String names the operation for histories and test failures.
func (k OpKind) String() string {
	switch k {
	case OpGet:
		return "Get"
	case OpPut:
		return "Put"
	case OpAppend:
		return "Append"
	}
	return fmt.Sprintf("OpKind(%d)", uint8(k))
}

// ErrCorrupt reports bytes that are not a valid command, result or
// snapshot.
var ErrCorrupt = errors.New("linearizability: corrupt encoding")

// Command is one client request as it travels through the raft log.
// Client and Seq identify it for exactly-once execution (thesis 6.3): a
// client numbers its requests 1, 2, 3, ... and retries a request with the
// same Seq until it hears an answer, and the store applies each number
// once.
type Command struct {
	Kind   OpKind
	Client uint64 // unique per client, non-zero
	Seq    uint64 // the client's request number, from 1
	Key    string
	Value  string // for Put and Append
}

// AppendBinary appends the command's encoding to b: the kind byte, client
// and sequence number as uvarints, then key and value each prefixed by
// its length as a uvarint.
func (c Command) AppendBinary(b []byte) ([]byte, error) {
	b = append(b, byte(c.Kind))
	b = binary.AppendUvarint(b, c.Client)
	b = binary.AppendUvarint(b, c.Seq)
	b = appendString(b, c.Key)
	return appendString(b, c.Value), nil
}

// UnmarshalBinary decodes what AppendBinary encoded.
func (c *Command) UnmarshalBinary(b []byte) error {
	d := decoder{b: b}
	kind := OpKind(d.byte())
	cmd := Command{Kind: kind, Client: d.uvarint(), Seq: d.uvarint(), Key: d.string(), Value: d.string()}
	if err := d.finish(); err != nil {
		return err
	}
	if kind < OpGet || kind > OpAppend {
		return fmt.Errorf("%w: unknown operation %d", ErrCorrupt, kind)
	}
	*c = cmd
	return nil
}

// Result is the store's answer to a Command, as Apply encodes it.
type Result struct {
	// Duplicate says the store had already applied this client's request
	// Seq (a retry): it changed nothing and repeats the first answer.
	Duplicate bool
	// Value is what a Get read.
	Value string
}

// Status bytes that open an encoded Result.
const (
	statusApplied   byte = 1
	statusDuplicate byte = 2
)

func (r Result) appendBinary(b []byte) []byte {
	status := statusApplied
	if r.Duplicate {
		status = statusDuplicate
	}
	return append(append(b, status), r.Value...)
}

// DecodeResult decodes the value that KV.Apply returned.
func DecodeResult(b []byte) (Result, error) {
	if len(b) == 0 || (b[0] != statusApplied && b[0] != statusDuplicate) {
		return Result{}, fmt.Errorf("%w: bad result", ErrCorrupt)
	}
	return Result{Duplicate: b[0] == statusDuplicate, Value: string(b[1:])}, nil
}

// session is what the store remembers of one client: the last request it
// applied and that request's answer, to repeat to a retry.
type session struct {
	seq    uint64
	result Result
}

// KV is a replicated key-value store: a node.StateMachine (and
// node.Snapshotter) whose commands are encoded Commands. The table of
// client sessions that makes retries exactly-once is part of the
// replicated state, so every replica, and every snapshot, agrees on which
// requests were applied. Sessions never expire: a test's clients are few.
// A KV is safe for concurrent use: Apply runs on a node's driver while
// readers call Get.
type KV struct {
	mu       sync.Mutex // protects the following
	data     map[string]string
	sessions map[uint64]session
	applied  uint64 // the index of the last command applied
}

// NewKV returns an empty store.
func NewKV() *KV {
	return &KV{data: map[string]string{}, sessions: map[uint64]session{}}
}

// Apply applies one committed entry and returns a command's encoded
// Result. A no-op, a configuration entry or a malformed command changes
// nothing but the applied index and yields nil.
func (kv *KV) Apply(e raft.Entry) []byte {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	kv.applied = e.Index
	var c Command
	if e.Type != raft.EntryNormal {
		return nil
	}
	if err := c.UnmarshalBinary(e.Data); err != nil {
		return nil
	}
	return kv.apply(c).appendBinary(nil)
}

// apply executes c unless its session shows it already ran.
func (kv *KV) apply(c Command) Result {
	s, seen := kv.sessions[c.Client]
	if seen && c.Seq <= s.seq {
		// A retry of the last request repeats its answer; an older one
		// cannot be waited for any more (the client moved on), so any
		// answer does.
		r := Result{Duplicate: true}
		if c.Seq == s.seq {
			r.Value = s.result.Value
		}
		return r
	}
	var r Result
	switch c.Kind {
	case OpGet:
		r.Value = kv.data[c.Key]
	case OpPut:
		kv.data[c.Key] = c.Value
	case OpAppend:
		kv.data[c.Key] += c.Value
	}
	kv.sessions[c.Client] = session{seq: c.Seq, result: r}
	return r
}

// Get returns the value of key as of the last command applied.
func (kv *KV) Get(key string) string {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	return kv.data[key]
}

// GetAt returns the value of key and the index of the last command
// applied, read together.
func (kv *KV) GetAt(key string) (value string, applied uint64) {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	return kv.data[key], kv.applied
}

// State returns the index of the last command applied and a copy of the
// data at that index, for comparing replicas.
func (kv *KV) State() (applied uint64, data map[string]string) {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	return kv.applied, maps.Clone(kv.data)
}

// Snapshot encodes the whole replicated state: the data and the
// sessions, in key order so that equal states encode equally. The index
// it is at is the snapshot's own (raft.SnapshotMeta).
func (kv *KV) Snapshot() ([]byte, error) {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	b := binary.AppendUvarint(nil, uint64(len(kv.data)))
	for _, k := range slices.Sorted(maps.Keys(kv.data)) {
		b = appendString(appendString(b, k), kv.data[k])
	}
	b = binary.AppendUvarint(b, uint64(len(kv.sessions)))
	for _, id := range slices.Sorted(maps.Keys(kv.sessions)) {
		s := kv.sessions[id]
		b = binary.AppendUvarint(binary.AppendUvarint(b, id), s.seq)
		b = appendString(b, string(s.result.appendBinary(nil)))
	}
	return b, nil
}

// Restore replaces the state with a snapshot's, taken at meta.Index.
func (kv *KV) Restore(meta raft.SnapshotMeta, snap []byte) error {
	d := decoder{b: snap}
	data := map[string]string{}
	for n := d.count(); n > 0 && d.err == nil; n-- {
		k := d.string()
		data[k] = d.string()
	}
	sessions := map[uint64]session{}
	for n := d.count(); n > 0 && d.err == nil; n-- {
		id, seq := d.uvarint(), d.uvarint()
		sessions[id] = session{seq: seq, result: d.result()}
	}
	if err := d.finish(); err != nil {
		return err
	}
	kv.mu.Lock()
	defer kv.mu.Unlock()
	kv.applied, kv.data, kv.sessions = meta.Index, data, sessions
	return nil
}

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// decoder reads the encodings above; the first error sticks and every
// later read returns a zero value.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = fmt.Errorf("%w: truncated", ErrCorrupt)
	}
	d.b = nil
}

func (d *decoder) byte() byte {
	if len(d.b) == 0 {
		d.fail()
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads a length that must fit in what is left: each counted item
// takes at least one byte.
func (d *decoder) count() uint64 {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail()
		return 0
	}
	return n
}

func (d *decoder) string() string {
	n := d.count()
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *decoder) result() Result {
	r, err := DecodeResult([]byte(d.string()))
	if err != nil && d.err == nil {
		d.err = err
	}
	return r
}

// finish reports the first error, or trailing bytes.
func (d *decoder) finish() error {
	if d.err == nil && len(d.b) > 0 {
		d.err = fmt.Errorf("%w: %d trailing bytes", ErrCorrupt, len(d.b))
	}
	return d.err
}
