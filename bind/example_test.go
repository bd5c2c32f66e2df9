package bind_test

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/bifrost-go/bifrost/bind"
)

// isLeader tells code deep inside a state machine whether it runs on the
// raft leader. Only a few sub-machines care (subscriptions: only the
// leader notifies subscribers), so it is bound once rather than passed
// through every apply function.
var isLeader = bind.New(false)

// host applies committed commands to its sub-machines.
type host struct{ subs subscriptions }

func (h *host) apply(ctx context.Context, cmd string) { h.subs.changed(ctx, cmd) }

// subscriptions is a sub-machine that needs to know about leadership.
type subscriptions struct{}

func (subscriptions) changed(ctx context.Context, cmd string) {
	if !isLeader.Get(ctx) {
		fmt.Printf("%s: applied, follower stays quiet\n", cmd)
		return
	}
	fmt.Printf("%s: applied, leader notifies subscribers\n", cmd)
}

// The seed's use: "is this state machine running on the leader?" read
// deep inside the call chain, with no parameter threaded through it.
func Example_leader() {
	var h host
	ctx := context.Background()
	h.apply(ctx, "set x=1")
	h.apply(isLeader.Bind(ctx, true), "set x=2")
	h.apply(ctx, "set x=3") // the binding ended with its scope
	// Output:
	// set x=1: applied, follower stays quiet
	// set x=2: applied, leader notifies subscribers
	// set x=3: applied, follower stays quiet
}

// A nested Bind shadows the outer value; the outer context is unchanged.
func ExampleBinding_Bind() {
	term := bind.New[uint64](0)
	outer := term.Bind(context.Background(), 3)
	inner := term.Bind(outer, 4)
	fmt.Println(term.Get(context.Background()), term.Get(outer), term.Get(inner))
	// Output: 0 3 4
}

// With is the block form, like the original's with_bindings!.
func ExampleBinding_With() {
	isLeader.With(context.Background(), true, func(ctx context.Context) {
		fmt.Println("inside:", isLeader.Get(ctx))
	})
	fmt.Println("outside:", isLeader.Get(context.Background()))
	// Output:
	// inside: true
	// outside: false
}

// Lookup tells a value bound equal to the default from no binding.
func ExampleBinding_Lookup() {
	ctx := isLeader.Bind(context.Background(), false)
	fmt.Println(isLeader.Lookup(ctx))
	fmt.Println(isLeader.Lookup(context.Background()))
	// Output:
	// false true
	// false false
}

// changes collects the keys a request changed. Holders of the shared
// reference mutate it from many goroutines, so it guards itself.
type changes struct {
	mu   sync.Mutex // protects keys
	keys []string
}

func (c *changes) add(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.keys = append(c.keys, key)
}

// changed is bound per request; unbound (nil) means nobody is collecting.
var changed = bind.NewRef[changes](nil)

// put stores a value, recording the key if the caller collects changes.
func put(ctx context.Context, key string) {
	if c := changed.Get(ctx); c != nil {
		c.add(key)
	}
}

// A shared reference: every holder in the scope gets the same object, so
// work done in other goroutines is visible to the caller who bound it.
func ExampleRef() {
	var c changes
	ctx := changed.Bind(context.Background(), &c)
	var wg sync.WaitGroup
	for _, key := range []string{"b", "a", "c"} {
		wg.Go(func() { put(ctx, key) })
	}
	wg.Wait()
	put(context.Background(), "d") // unbound: not collected
	slices.Sort(c.keys)
	fmt.Println(c.keys)
	// Output: [a b c]
}
