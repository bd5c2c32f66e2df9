//go:build race

package linearizability

// sizeFactor is smaller under the race detector, which slows every
// message and apply several times: the scenarios keep their shape with
// fewer clients and shorter phases.
const sizeFactor = 0.75

// runsPerScenario is how many seeds each scenario runs by default. One
// under the race detector: every cut connection starts goroutines anew,
// and the detector keeps the stack of each for the life of the process,
// running out of room at a few hundred thousand. make test runs the full
// count without it.
const runsPerScenario = 1

// tcpRunsPerScenario is how many seeds each real-TCP scenario runs by
// default under the race detector.
const tcpRunsPerScenario = 1
