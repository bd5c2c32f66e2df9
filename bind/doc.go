// Package bind carries bindings on a [context.Context]: variables with a
// default value that a caller can rebind for the scope of a call, so code
// deep in the call chain can read them without a parameter threaded
// through every function in between.
//
// The Rust original binds values to the current thread inside a block
// (def_bindings!, with_bindings!). Go has no thread identity, so a binding
// rides on the context instead: it follows a request across goroutines,
// and it unwinds by scope because the parent context never changes.
//
// Define a binding once, with its default:
//
//	var IsLeader = bind.New(false)
//
// Bind a value for a scope, and read it anywhere below:
//
//	ctx = IsLeader.Bind(ctx, true)
//	...
//	if IsLeader.Get(ctx) { notifySubscribers() }
//
// Outside the scope, and in any context that never bound it, Get returns
// the default. A nested Bind shadows the outer value only for the contexts
// derived from it. Goroutines holding different contexts never see each
// other's values.
//
// There are two kinds of binding, as in the original:
//
//   - [Binding] holds a plain value, copied on every Get. Use it for small
//     values such as bool, uint64 or a role enum.
//   - [Ref] holds a shared reference: every Get in a scope returns the same
//     pointer, so holders share one object and nothing is copied. See its
//     documentation for the concurrency contract.
//
// Get and Lookup never allocate. Their cost grows with the number of
// context layers between the reader and the nearest Bind of that binding,
// as with any context value; a run of consecutive binds is walked in a
// loop, not one call per layer. Bind allocates one small context.
//
// A Binding and a Ref are safe for concurrent use: they hold nothing but
// their key and default, and never change after New or NewRef.
package bind
