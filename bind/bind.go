package bind

import "context"

// key identifies one binding in a context. Every New allocates a fresh
// key, so two bindings of the same type never collide. The field keeps the
// size non-zero: pointers to distinct zero-size values may be equal.
type key struct{ _ byte }

// Binding is a variable bound on a context, with a default for contexts
// that never bound it. Create one with [New]; the zero Binding reads as
// the zero value of T and cannot be bound.
type Binding[T any] struct {
	key *key
	def T
}

// New returns a binding whose value is def wherever it is not bound.
func New[T any](def T) *Binding[T] {
	return &Binding[T]{key: new(key), def: def}
}

// Get returns the value bound on ctx, or the default if ctx, or any
// context it derives from, never bound b. A nil ctx reads as the default.
// Get never allocates.
func (b *Binding[T]) Get(ctx context.Context) T {
	v, _ := b.Lookup(ctx)
	return v
}

// Lookup is like Get and also reports whether the value was bound, which
// tells a bound value equal to the default from no binding at all.
func (b *Binding[T]) Lookup(ctx context.Context) (T, bool) {
	if ctx == nil {
		return b.def, false
	}
	if c, ok := ctx.Value(b.key).(*bindCtx[T]); ok {
		return c.val, true
	}
	return b.def, false
}

// Bind returns a context derived from parent in which b is bound to v.
// Readers of the new context and of every context derived from it see v
// until a nested Bind shadows it; parent and its other children still see
// the old value. Bind panics if parent is nil, as [context.WithValue]
// does, or if b is the zero Binding.
func (b *Binding[T]) Bind(parent context.Context, v T) context.Context {
	if parent == nil {
		panic("bind: cannot bind on a nil parent context")
	}
	if b.key == nil {
		panic("bind: zero Binding cannot be bound; create it with New")
	}
	return newBindCtx(parent, b.key, v)
}

// With calls f with a context in which b is bound to v: the block form of
// Bind, like the original's with_bindings!. The binding ends when f
// returns, unless f hands its context on to something that outlives it.
func (b *Binding[T]) With(parent context.Context, v T, f func(ctx context.Context)) {
	f(b.Bind(parent, v))
}
