//go:build !race

package linearizability

// sizeFactor scales the scenarios' fake durations and client counts.
const sizeFactor = 1.0

// runsPerScenario is how many seeds each scenario runs by default.
const runsPerScenario = 13

// tcpRunsPerScenario is how many seeds each real-TCP scenario runs by
// default.
const tcpRunsPerScenario = 2
