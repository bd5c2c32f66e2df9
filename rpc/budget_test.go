package rpc

import (
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
)

// TestByteBudgetFIFO checks that a large waiter at the head is served
// before small requests that arrive after it, even though they would fit.
func TestByteBudgetFIFO(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newByteBudget(10)
		never := make(chan struct{})
		if !b.acquire(4, never) {
			t.Fatal("first acquire failed")
		}
		order := make(chan int64, 2)
		take := func(n int64) {
			if b.acquire(n, never) {
				order <- n
			}
		}
		go take(10) // does not fit until the 4 bytes are back
		synctest.Wait()
		go take(2) // would fit, but waits behind the 10
		synctest.Wait()
		if len(order) != 0 {
			t.Fatalf("%d waiters served while the head does not fit", len(order))
		}
		b.release(4)
		if got := <-order; got != 10 {
			t.Fatalf("first served %d bytes, want the 10 at the head", got)
		}
		synctest.Wait()
		if len(order) != 0 {
			t.Fatal("a waiter was served while the budget was full")
		}
		b.release(10)
		if got := <-order; got != 2 {
			t.Fatalf("then served %d, want 2", got)
		}
		if got := b.held(); got != 2 {
			t.Errorf("held %d bytes, want 2", got)
		}
	})
}

// TestByteBudgetAbandon checks that a waiter that gives up holds nothing
// and no longer blocks those behind it.
func TestByteBudgetAbandon(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newByteBudget(10)
		never := make(chan struct{})
		b.acquire(8, never)
		quit := make(chan struct{})
		gaveUp := make(chan bool)
		go func() { gaveUp <- b.acquire(10, quit) }()
		synctest.Wait()
		small := make(chan bool)
		go func() { small <- b.acquire(2, never) }()
		synctest.Wait()
		close(quit)
		if <-gaveUp {
			t.Fatal("acquire reported success after done closed")
		}
		if !<-small {
			t.Fatal("the waiter behind an abandoned one was not served")
		}
		if got := b.held(); got != 10 {
			t.Errorf("held %d bytes, want 10", got)
		}
	})
}

// TestByteBudgetConcurrent has goroutines take and give back bytes at
// random: the bytes held never exceed the budget and every acquire is
// served.
func TestByteBudgetConcurrent(t *testing.T) {
	const size, workers, rounds = 16, 8, 300
	b := newByteBudget(size)
	never := make(chan struct{})
	var inUse atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds {
				n := int64(1 + (w*7+i*3)%size)
				b.acquire(n, never)
				if got := inUse.Add(n); got > size {
					t.Errorf("%d bytes in use, budget %d", got, size)
				}
				inUse.Add(-n)
				b.release(n)
			}
		}()
	}
	wg.Wait()
	if got := b.held(); got != 0 {
		t.Errorf("%d bytes held at the end", got)
	}
}
