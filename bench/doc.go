// Package bench holds the project's end-to-end benchmarks through real
// sockets: RPC calls against the standard library's net/rpc in the same
// run (BenchmarkCall), reads against commands on one raft group
// (BenchmarkReads) and snapshot install (BenchmarkSnapshotInstall). It has
// no code of its own; run it with
//
//	go test -run XXX -bench . -benchmem ./bench/
//
// Comparisons with third-party libraries live in bench/peers, a separate
// module, so that they never enter the library's dependency graph.
package bench
