// Package etcd benchmarks bifrost against an embedded etcd cluster doing
// the same work. It is a module of its own, apart from bench/peers:
// etcd's dependencies upgrade go.etcd.io/bbolt, the store under the
// hashicorp/raft benchmark there, and keeping them apart keeps those
// figures comparable.
//
// Everything lives in _test.go files; see README.md.
package etcd
