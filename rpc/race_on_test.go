//go:build race

package rpc

// raceEnabled is true when the race detector is on; it makes sync.Pool
// drop items at random, so allocation counts mean nothing.
const raceEnabled = true
