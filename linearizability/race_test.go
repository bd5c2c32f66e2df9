//go:build race

package linearizability

// sizeFactor is smaller under the race detector, which slows every
// message and apply several times: the scenarios keep their shape with
// fewer clients and shorter phases.
const sizeFactor = 0.75

// runsPerScenario is how many seeds each scenario runs by default.
const runsPerScenario = 2
