package sm

import (
	"context"
	"iter"
	"sync"

	"github.com/bifrost-go/bifrost/rpc"
)

// Value is a replicated value of type T: Set and Get. Declare it once, by
// name, where both servers and clients see it; each server's host carries
// its Machine.
type Value[T any] struct {
	name    string
	set     *Command[T, T]
	get     *Query[struct{}, T]
	changed *Subscription[struct{}, Change[T]]
	codec   rpc.Codec[T]
}

// Change is a value replaced: what it was and what it became.
type Change[T any] struct{ Old, New T }

// NewValue declares the value machine called name.
func NewValue[T any](name string) *Value[T] {
	return &Value[T]{name: name, set: NewCommand[T, T](name, "set"), get: NewQuery[struct{}, T](name, "get"),
		changed: NewSubscription[struct{}, Change[T]](name, "on_changed"), codec: rpc.NewCodec[T]()}
}

// Machine returns a new machine holding the value, zero at first, for a
// server's host.
func (v *Value[T]) Machine() *Machine {
	st := &valueState[T]{codec: v.codec}
	m := NewMachine(v.name, st)
	HandleCommand(m, v.set, func(a *Apply, x T) (T, error) {
		st.mu.Lock()
		defer st.mu.Unlock()
		old := st.v
		st.v = x
		return old, Notify(a, v.changed, struct{}{}, Change[T]{old, x})
	})
	HandleQuery(m, v.get, func(_ *Read, _ struct{}) (T, error) {
		st.mu.Lock()
		defer st.mu.Unlock()
		return st.v, nil
	})
	return m
}

// Set replaces the value with x and returns the one it replaced.
func (v *Value[T]) Set(ctx context.Context, c *Client, x T) (old T, err error) {
	return v.set.Do(ctx, c, x)
}

// Get reads the value linearizably.
func (v *Value[T]) Get(ctx context.Context, c *Client) (T, error) {
	return v.get.Read(ctx, c, struct{}{})
}

// OnChanged yields every change of the value from now on (see
// Subscription.Subscribe).
func (v *Value[T]) OnChanged(ctx context.Context, c *Client) iter.Seq2[Event[Change[T]], error] {
	return v.changed.Subscribe(ctx, c, struct{}{})
}

// Changed is the value's on_changed subscription.
func (v *Value[T]) Changed() *Subscription[struct{}, Change[T]] { return v.changed }

// ReadAndOpen reads the value and opens a stream of its changes at the
// same index: the first change is the one after the value returned.
func (v *Value[T]) ReadAndOpen(ctx context.Context, c *Client) (T, *Stream[Change[T]], error) {
	return ReadAndOpen(ctx, c, v.get, struct{}{}, v.changed, struct{}{})
}

// GetAs reads the value in the given mode.
func (v *Value[T]) GetAs(ctx context.Context, c *Client, mode ReadMode) (T, error) {
	return v.get.ReadAs(ctx, c, mode, struct{}{})
}

// valueState is the state of a Value machine. Its own lock keeps the
// host's snapshot, which runs beside queries, from racing with them.
type valueState[T any] struct {
	codec rpc.Codec[T]
	mu    sync.Mutex // protects v
	v     T
}

func (s *valueState[T]) Snapshot() ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.codec.Append(nil, s.v)
}

func (s *valueState[T]) Restore(data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var zero T
	if data == nil {
		s.v = zero
		return nil
	}
	v, err := s.codec.Decode(data)
	s.v = v
	return err
}
