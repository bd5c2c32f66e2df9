package linearizability

import (
	"fmt"
	"slices"
	"sync"
	"time"
)

// OpKind names an operation on one of sm's built-in machines.
type OpKind uint8

// The operations the tests run: on a key of a Map, on a Value and on a
// Number. Gets are queries; the others are commands and go through the
// log.
const (
	OpMapGet OpKind = iota + 1
	OpMapInsert
	OpMapRemove
	OpMapCompareAndSwap
	OpValueGet
	OpValueSet
	OpNumberGet
	OpNumberAdd
	OpNumberCompareAndSwap
)

var opNames = map[OpKind]string{
	OpMapGet: "map.get", OpMapInsert: "map.insert", OpMapRemove: "map.remove",
	OpMapCompareAndSwap: "map.compare_and_swap", OpValueGet: "value.get", OpValueSet: "value.set",
	OpNumberGet: "number.get", OpNumberAdd: "number.add", OpNumberCompareAndSwap: "number.compare_and_swap",
}

// String names the operation for histories and test failures.
func (k OpKind) String() string {
	if s, ok := opNames[k]; ok {
		return s
	}
	return fmt.Sprintf("OpKind(%d)", uint8(k))
}

// IsRead reports whether the operation changes nothing.
func (k OpKind) IsRead() bool { return k == OpMapGet || k == OpValueGet || k == OpNumberGet }

// Input is what a client asked. Key names the object the operation is
// on: a key of the Map, or the Value's or the Number's own name, so
// that operations on different objects, which are independent, can be
// checked apart.
type Input struct {
	Kind OpKind
	Key  string
	// Value is what a Map insert or a Value set writes, and the new
	// value of a Map compare-and-swap.
	Value string
	// Old is the value a Map compare-and-swap expects.
	Old string
	// N is a Number add's delta, or the new value of its
	// compare-and-swap; OldN is the value that compare-and-swap expects.
	N, OldN int64
}

// Output is what an operation returned; each kind fills its own
// fields and leaves the others zero.
type Output struct {
	// Value and Found: what a Map key held (for a get) or held before
	// (insert, remove); Value alone: what the Value holds (get) or held
	// before (set).
	Value string
	Found bool
	// Swapped: whether a compare-and-swap swapped.
	Swapped bool
	// N is what the Number holds (get) or holds after (add).
	N int64
}

// Operation is one client operation as a History recorded it.
//
// Call and Return are logical timestamps from one counter that the
// History advances under its lock: Call is taken before the operation is
// sent and Return after its answer arrived, so whenever one operation
// returned before another was called, its Return is below the other's
// Call. That is exactly the real-time order a linearizability checker
// needs, and unlike a fake clock, which stands still while goroutines
// run, it never makes two ordered operations look concurrent.
type Operation struct {
	Client int // the client's index, from 0
	Input  Input
	Output Output
	// Detail is free text for reports: which server answered, at which
	// log index.
	Detail string
	// Pending says the operation never returned: the client gave up
	// (a timeout, a broken connection), so it may or may not have taken
	// effect, at any time after its call. Return is then zero.
	Pending      bool
	Call, Return int64
	// CallTime and ReturnTime are the clock's readings, for reports.
	CallTime, ReturnTime time.Time
}

// History records the operations of concurrent clients. It is safe for
// concurrent use.
type History struct {
	mu    sync.Mutex // protects the following
	clock int64
	ops   []Operation
}

// Invoke records that client is about to send in, and returns the
// operation's id for Return.
func (h *History) Invoke(client int, in Input) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.clock++
	h.ops = append(h.ops, Operation{Client: client, Input: in, Pending: true,
		Call: h.clock, CallTime: time.Now()})
	return len(h.ops) - 1
}

// Return records that operation id returned out. An operation returns
// at most once.
func (h *History) Return(id int, out Output) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.clock++
	op := &h.ops[id]
	if !op.Pending {
		panic("linearizability: operation returned twice")
	}
	op.Pending, op.Output, op.Return, op.ReturnTime = false, out, h.clock, time.Now()
}

// Annotate sets the Detail of operation id.
func (h *History) Annotate(id int, detail string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ops[id].Detail = detail
}

// Now returns the current logical time: every operation invoked from now
// on has a later Call, every one that returned already an earlier Return.
func (h *History) Now() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.clock++
	return h.clock
}

// Operations returns a copy of the operations recorded so far, in the
// order they were invoked.
func (h *History) Operations() []Operation {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.ops)
}
