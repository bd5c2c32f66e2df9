//go:build race

package rafttest

// defaultSeeds is smaller under the race detector, which slows the
// single-goroutine simulation about tenfold and finds nothing in it.
const defaultSeeds = 100
