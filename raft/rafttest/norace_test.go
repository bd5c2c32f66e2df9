//go:build !race

package rafttest

// defaultSeeds is how many seeds TestRandomSchedules runs by default.
const defaultSeeds = 1000
