package linearizability

import (
	"slices"
	"sync"
	"time"
)

// Input is what a client asked of the store.
type Input struct {
	Kind  OpKind
	Key   string
	Value string // for Put and Append
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
	Output string // the value a Get returned
	// Detail is free text for reports: which server answered, at which
	// log index.
	Detail string
	// Pending says the operation never returned: the client gave up, so
	// it may or may not have taken effect. Return is then zero.
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

// Return records that operation id returned output (the value read, for
// a Get; empty otherwise). An operation returns at most once.
func (h *History) Return(id int, output string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.clock++
	op := &h.ops[id]
	if !op.Pending {
		panic("linearizability: operation returned twice")
	}
	op.Pending, op.Output, op.Return, op.ReturnTime = false, output, h.clock, time.Now()
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
