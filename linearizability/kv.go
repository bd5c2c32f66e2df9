package linearizability

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/bifrost-go/bifrost/sm"
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

// ErrCorrupt reports bytes that are not a valid request, answer or
// snapshot.
var ErrCorrupt = errors.New("linearizability: corrupt encoding")

// The functions of the "kv" machine, shared by the servers' hosts and the
// clients. Put and Append are commands: the client's sm session makes
// each call apply once, however often it is retried. Get is a query, in
// whichever read mode the caller names.
var (
	Put    = sm.NewCommand[Pair, struct{}](machineName, "put")
	Append = sm.NewCommand[Pair, struct{}](machineName, "append")
	Get    = sm.NewQuery[string, Reading](machineName, "get")
)

const machineName = "kv"

// Pair is the request of Put and Append.
type Pair struct{ Key, Value string }

// AppendBinary appends the pair's encoding to b: key and value, each
// prefixed by its length as a uvarint.
func (p Pair) AppendBinary(b []byte) ([]byte, error) {
	return appendString(appendString(b, p.Key), p.Value), nil
}

// UnmarshalBinary decodes what AppendBinary encoded.
func (p *Pair) UnmarshalBinary(b []byte) error {
	d := decoder{b: b}
	v := Pair{Key: d.string(), Value: d.string()}
	if err := d.finish(); err != nil {
		return err
	}
	*p = v
	return nil
}

// Reading is the answer of Get: the value, and the log index the
// replica's state was at when it read it.
type Reading struct {
	Value string
	Index uint64
}

// AppendBinary appends the reading's encoding to b: the value prefixed by
// its length, then the index, as uvarints.
func (r Reading) AppendBinary(b []byte) ([]byte, error) {
	return binary.AppendUvarint(appendString(b, r.Value), r.Index), nil
}

// UnmarshalBinary decodes what AppendBinary encoded.
func (r *Reading) UnmarshalBinary(b []byte) error {
	d := decoder{b: b}
	v := Reading{Value: d.string(), Index: d.uvarint()}
	if err := d.finish(); err != nil {
		return err
	}
	*r = v
	return nil
}

// KV is the state of a replicated key-value store: a string per key, which
// Put sets, Append extends and Get returns. It is an sm.Snapshotter; its
// Machine carries it on a server's sm.Host, which applies commands one at
// a time in log order. Exactly-once execution is the host's (its client
// sessions), not the store's. A KV is safe for concurrent use: besides
// the host, a test reads it to compare replicas.
type KV struct {
	mu   sync.Mutex // protects data
	data map[string]string
}

// NewKV returns an empty store.
func NewKV() *KV { return &KV{data: map[string]string{}} }

// Machine returns the "kv" machine over kv, for one server's host.
func (kv *KV) Machine() *sm.Machine {
	m := sm.NewMachine(machineName, kv)
	sm.HandleCommand(m, Put, kv.put)
	sm.HandleCommand(m, Append, kv.append)
	sm.HandleQuery(m, Get, kv.get)
	return m
}

func (kv *KV) put(_ *sm.Apply, p Pair) (struct{}, error) {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	kv.data[p.Key] = p.Value
	return struct{}{}, nil
}

func (kv *KV) append(_ *sm.Apply, p Pair) (struct{}, error) {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	kv.data[p.Key] += p.Value
	return struct{}{}, nil
}

func (kv *KV) get(r *sm.Read, key string) (Reading, error) {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	return Reading{Value: kv.data[key], Index: r.Applied}, nil
}

// Data returns a copy of the data, for comparing replicas.
func (kv *KV) Data() map[string]string {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	return maps.Clone(kv.data)
}

// Snapshot encodes the data: the number of keys, then each key and its
// value in key order, so that equal states encode equally.
func (kv *KV) Snapshot() ([]byte, error) {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	b := binary.AppendUvarint(nil, uint64(len(kv.data)))
	for _, k := range slices.Sorted(maps.Keys(kv.data)) {
		b = appendString(appendString(b, k), kv.data[k])
	}
	return b, nil
}

// Restore replaces the data with a snapshot's; nil is the empty store.
func (kv *KV) Restore(snap []byte) error {
	data := map[string]string{}
	if snap != nil {
		d := decoder{b: snap}
		for n := d.count(); n > 0 && d.err == nil; n-- {
			k := d.string()
			data[k] = d.string()
		}
		if err := d.finish(); err != nil {
			return err
		}
	}
	kv.mu.Lock()
	defer kv.mu.Unlock()
	kv.data = data
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

// finish reports the first error, or trailing bytes.
func (d *decoder) finish() error {
	if d.err == nil && len(d.b) > 0 {
		d.err = fmt.Errorf("%w: %d trailing bytes", ErrCorrupt, len(d.b))
	}
	return d.err
}
