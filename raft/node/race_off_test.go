//go:build !race

package node

// raceEnabled is true when the race detector is on; load tests run fewer
// rounds under it.
const raceEnabled = false
