// Package peers holds the benchmarks that measure bifrost against the
// libraries it is held to (see the "Numbers the project is held to" table
// in the design notes). It is a separate module so that the peers'
// dependencies never reach the main module's go.mod.
//
// Everything lives in _test.go files; run the benchmarks as described in
// README.md.
package peers
