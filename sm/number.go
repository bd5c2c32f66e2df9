package sm

import (
	"context"
	"encoding/binary"
	"fmt"
	"iter"
	"sync"
)

// Number is a replicated int64: Get, Add and CompareAndSwap.
type Number struct {
	name    string
	add     *Command[int64, int64]
	cas     *Command[Swap, bool]
	get     *Query[struct{}, int64]
	changed *Subscription[struct{}, Change[int64]]
}

// Swap is a compare-and-swap request: set New if the current value is
// Old.
type Swap struct{ Old, New int64 }

// NewNumber declares the number machine called name.
func NewNumber(name string) *Number {
	return &Number{name: name, add: NewCommand[int64, int64](name, "add"),
		cas: NewCommand[Swap, bool](name, "compare_and_swap"), get: NewQuery[struct{}, int64](name, "get"),
		changed: NewSubscription[struct{}, Change[int64]](name, "on_changed")}
}

// Machine returns a new machine holding the number, 0 at first.
func (n *Number) Machine() *Machine {
	st := &numberState{}
	m := NewMachine(n.name, st)
	HandleCommand(m, n.add, func(a *Apply, d int64) (int64, error) {
		v := st.update(func(v int64) int64 { return v + d })
		return v, n.notify(a, v-d, v)
	})
	HandleCommand(m, n.cas, func(a *Apply, s Swap) (bool, error) {
		swapped := false
		st.update(func(v int64) int64 {
			if v != s.Old {
				return v
			}
			swapped = true
			return s.New
		})
		if !swapped {
			return false, nil
		}
		return true, n.notify(a, s.Old, s.New)
	})
	HandleQuery(m, n.get, func(*Read, struct{}) (int64, error) { return st.update(nil), nil })
	return m
}

func (n *Number) notify(a *Apply, old, new int64) error {
	if old == new {
		return nil
	}
	return Notify(a, n.changed, struct{}{}, Change[int64]{old, new})
}

// OnChanged yields every change of the number from now on.
func (n *Number) OnChanged(ctx context.Context, c *Client) iter.Seq2[Event[Change[int64]], error] {
	return n.changed.Subscribe(ctx, c, struct{}{})
}

// Add adds d and returns the new value.
func (n *Number) Add(ctx context.Context, c *Client, d int64) (int64, error) {
	return n.add.Do(ctx, c, d)
}

// CompareAndSwap sets new if the value is old, and reports whether it did.
func (n *Number) CompareAndSwap(ctx context.Context, c *Client, old, new int64) (bool, error) {
	return n.cas.Do(ctx, c, Swap{old, new})
}

// Changed is the number's on_changed subscription.
func (n *Number) Changed() *Subscription[struct{}, Change[int64]] { return n.changed }

// ReadAndOpen reads the number and opens a stream of its changes at the
// same index: the first change is the one after the number returned.
func (n *Number) ReadAndOpen(ctx context.Context, c *Client) (int64, *Stream[Change[int64]], error) {
	return ReadAndOpen(ctx, c, n.get, struct{}{}, n.changed, struct{}{})
}

// Get reads the number linearizably.
func (n *Number) Get(ctx context.Context, c *Client) (int64, error) {
	return n.get.Read(ctx, c, struct{}{})
}

// GetAs reads the number in the given mode.
func (n *Number) GetAs(ctx context.Context, c *Client, mode ReadMode) (int64, error) {
	return n.get.ReadAs(ctx, c, mode, struct{}{})
}

type numberState struct {
	mu sync.Mutex // protects v
	v  int64
}

// update replaces the value with f of it (unless f is nil) and returns it.
func (s *numberState) update(f func(int64) int64) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f != nil {
		s.v = f(s.v)
	}
	return s.v
}

func (s *numberState) Snapshot() ([]byte, error) {
	return binary.AppendVarint(nil, s.update(nil)), nil
}

func (s *numberState) Restore(data []byte) error {
	var v int64
	if data != nil {
		var n int
		if v, n = binary.Varint(data); n <= 0 || n != len(data) {
			return fmt.Errorf("%w: number", ErrCorrupt)
		}
	}
	s.update(func(int64) int64 { return v })
	return nil
}

// AppendBinary and UnmarshalBinary give Swap the codec's fast path.
func (s *Swap) AppendBinary(b []byte) ([]byte, error) {
	return binary.AppendVarint(binary.AppendVarint(b, s.Old), s.New), nil
}

// UnmarshalBinary decodes what AppendBinary wrote.
func (s *Swap) UnmarshalBinary(p []byte) error {
	d := decoder{b: p}
	s.Old, s.New = d.varint(), d.varint()
	return d.done()
}
