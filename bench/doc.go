// Package bench holds the project's end-to-end benchmarks: whole calls
// through real sockets, compared with the standard library in the same
// run. It has no code of its own; run it with
//
//	go test -run XXX -bench . -benchmem ./bench/
//
// Comparisons with third-party libraries live in bench/peers, a separate
// module, so that they never enter the library's dependency graph.
package bench
