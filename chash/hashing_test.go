package chash

// Normalize and Subtract lend the range helpers of ranges_test.go to
// hashing_cluster_test.go, which runs on bifrost Nodes and so sits in
// package chash_test: package chash cannot import bifrost.
var (
	Normalize = normalize
	Subtract  = subtract
)
