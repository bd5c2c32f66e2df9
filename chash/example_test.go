package chash_test

import (
	"fmt"

	"github.com/bifrost-go/bifrost/chash"
)

func ExampleNewRing() {
	// Weights in any unit, here megabytes of memory.
	r, err := chash.NewRing(map[string]uint64{"a": 4096, "b": 4096, "c": 8192}, chash.RingConfig{})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(r.Servers())
	_, err = chash.NewRing(map[string]uint64{"d": 0}, chash.RingConfig{})
	fmt.Println(err)
	// Output:
	// [a b c]
	// chash: zero weight: server "d"
}

func ExampleRing_LookupString() {
	r, _ := chash.NewRing(map[string]uint64{"a": 1, "b": 1, "c": 2}, chash.RingConfig{})
	for _, key := range []string{"user:1", "user:2", "user:42"} {
		server, _ := r.LookupString(key)
		fmt.Println(key, "->", server)
	}
	// A hash computed once can be looked up in many rings.
	server, _ := r.Lookup(chash.HashString("user:42"))
	fmt.Println(server)
	// Output:
	// user:1 -> b
	// user:2 -> b
	// user:42 -> c
	// c
}

func ExampleRing_Ranges() {
	// Two points a server keeps the example short; real rings use the
	// default of hundreds.
	cfg := chash.RingConfig{Points: 2, MinPoints: 1}
	r, _ := chash.NewRing(map[string]uint64{"a": 1, "b": 1}, cfg)
	for _, s := range r.Servers() {
		for _, g := range r.Ranges(s) {
			fmt.Printf("%s [%#016x, %#016x]\n", s, g.Start, g.End)
		}
	}
	// Output:
	// a [0x3d6ee02c132067d9, 0x8a2a47c0cb95d71d]
	// a [0x8df04d0e6f993704, 0xe3f97b4013e27f6b]
	// b [0x0000000000000000, 0x3d6ee02c132067d8]
	// b [0x8a2a47c0cb95d71e, 0x8df04d0e6f993703]
	// b [0xe3f97b4013e27f6c, 0xffffffffffffffff]
}

func ExampleDiff() {
	cfg := chash.RingConfig{Points: 2, MinPoints: 1}
	prev, _ := chash.NewRing(map[string]uint64{"a": 1, "b": 1}, cfg)
	next, _ := chash.NewRing(map[string]uint64{"a": 1, "b": 1, "c": 1}, cfg)
	deltas := chash.Diff(prev, next)
	for _, s := range next.Servers() {
		for _, g := range deltas[s].Lost {
			fmt.Printf("%s loses [%#016x, %#016x]\n", s, g.Start, g.End)
		}
		for _, g := range deltas[s].Gained {
			fmt.Printf("%s gains [%#016x, %#016x]\n", s, g.Start, g.End)
		}
	}
	// Output:
	// a loses [0x8df04d0e6f993704, 0xd6b0c5d5a8097050]
	// b loses [0x0000000000000000, 0x38b9b87b2a877eb7]
	// b loses [0xe3f97b4013e27f6c, 0xffffffffffffffff]
	// c gains [0x0000000000000000, 0x38b9b87b2a877eb7]
	// c gains [0x8df04d0e6f993704, 0xd6b0c5d5a8097050]
	// c gains [0xe3f97b4013e27f6c, 0xffffffffffffffff]
}
