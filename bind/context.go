package bind

import (
	"context"
	"fmt"
	"reflect"
)

// bindCtx is the context Bind returns. It keeps the value inline rather
// than boxed in an interface, so Bind allocates once and Lookup can tell a
// bound nil interface from no binding at all.
type bindCtx[T any] struct {
	frame
	val T
}

// frame is the part of a bindCtx that does not depend on T. Consecutive
// binds link their frames through up, so a read walks a run of bindings
// in a loop instead of one nested Value call per layer.
type frame struct {
	context.Context // the parent

	key  *key
	up   *frame // the parent's frame if the parent is a bindCtx, else nil
	self any    // the *bindCtx[T] that holds this frame, for Lookup
}

// framed is implemented by every bindCtx, whatever its T.
type framed interface{ bindFrame() *frame }

// newBindCtx binds v to k below parent, linking to the parent's frame
// when the parent is itself a bindCtx.
func newBindCtx[T any](parent context.Context, k *key, v T) *bindCtx[T] {
	c := &bindCtx[T]{frame: frame{Context: parent, key: k}, val: v}
	c.self = c
	if p, ok := parent.(framed); ok {
		c.up = p.bindFrame()
	}
	return c
}

// bindFrame returns the frame of c, whatever its T.
func (c *bindCtx[T]) bindFrame() *frame { return &c.frame }

// Value returns the bindCtx bound to k, so that Lookup can read its typed
// value without boxing it. It walks the run of bindings above c, then
// hands keys bound nowhere in it to the context above the run. A key that
// is not a *key leaves kp nil, which matches no frame: Bind never stores
// a nil key.
func (c *bindCtx[T]) Value(k any) any {
	kp, _ := k.(*key)
	for f := &c.frame; ; f = f.up {
		if f.key == kp {
			return f.self
		}
		if f.up == nil {
			return f.Context.Value(k)
		}
	}
}

// String names the context chain for debugging, in the manner of the
// standard library's contexts. It prints the type bound, not the value,
// which may be large or private.
func (c *bindCtx[T]) String() string {
	return contextName(c.Context) + ".Bind(" + reflect.TypeFor[T]().String() + ")"
}

// contextName returns the String of ctx if it has one, or its type.
func contextName(ctx context.Context) string {
	if s, ok := ctx.(fmt.Stringer); ok {
		return s.String()
	}
	return fmt.Sprintf("%T", ctx)
}
