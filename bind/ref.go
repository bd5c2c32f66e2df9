package bind

// Ref is a binding of a shared reference, the original's second kind,
// where every read hands out another reference to one object (an Arc in
// Rust). Every Get in a scope returns the same *T: holders share the
// object and nothing is copied, so Ref suits maps, buffers, collectors
// and other values too large or too stateful to copy.
//
// The concurrency contract:
//
//   - Binding and reading a Ref is safe for concurrent use, like any
//     [Binding].
//   - The package does not synchronize access to the *T. A bound context
//     may travel to many goroutines, so either treat the object as
//     read-only once it is bound (the contract of Rust's Arc), or make T
//     safe for concurrent use (sync/atomic types, or a struct whose
//     methods hold its mutex) when holders mutate it.
//   - The default is shared by every unbound reader in the program. Keep
//     it nil or never mutate it; a mutable default is global state.
//   - Binding nil is allowed and shadows the default: Get returns nil in
//     that scope. Holders of a Ref whose default is nil check for nil.
//
// Create one with [NewRef]. Its methods are those of [Binding], with
// *T for T.
type Ref[T any] struct {
	Binding[*T]
}

// NewRef returns a reference binding whose value is def wherever it is
// not bound. def may be nil.
func NewRef[T any](def *T) *Ref[T] {
	return &Ref[T]{Binding: *New(def)}
}
