package rpc

import (
	"sync"
	"sync/atomic"
)

// byteBudget is a first-in first-out semaphore of bytes: the server's
// budget of request bytes in flight, shared by all its connections.
// Waiters are served strictly in arrival order, so a large request
// waiting at the head is never overtaken by a stream of small ones; a
// request of at most the budget's size is therefore always admitted
// once enough earlier requests have released theirs. While nobody
// waits, taking and giving back bytes is a compare-and-swap, with no
// lock shared by the connections.
type byteBudget struct {
	size    int64        // bytes in all
	free    atomic.Int64 // bytes not held
	waiting atomic.Int32 // len(waiters), readable without mu

	mu      sync.Mutex    // protects the following
	waiters []*budgetWait // in arrival order; the head is served first
}

// budgetWait is one reader waiting for bytes.
type budgetWait struct {
	n     int64
	ready chan struct{} // closed when the bytes are granted
}

func newByteBudget(size int64) *byteBudget {
	b := &byteBudget{size: size}
	b.free.Store(size)
	return b
}

// acquire takes n bytes, waiting behind earlier waiters while they do not
// fit. It reports false, holding nothing, if done closes first.
func (b *byteBudget) acquire(n int64, done <-chan struct{}) bool {
	if b.waiting.Load() == 0 && b.take(n) {
		return true
	}
	w := &budgetWait{n: n, ready: make(chan struct{})}
	b.mu.Lock()
	b.waiters = append(b.waiters, w)
	b.waiting.Add(1)
	b.grantLocked() // the bytes may have come back before waiting was seen
	b.mu.Unlock()
	select {
	case <-w.ready:
		return true
	case <-done:
		return b.abandon(w)
	}
}

// take takes n bytes if they are free.
func (b *byteBudget) take(n int64) bool {
	for {
		free := b.free.Load()
		if free < n {
			return false
		}
		if b.free.CompareAndSwap(free, free-n) {
			return true
		}
	}
}

// abandon withdraws w. If its bytes were granted meanwhile they are
// given back; either way the waiters behind it may now fit.
func (b *byteBudget) abandon(w *budgetWait) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	select {
	case <-w.ready:
		b.free.Add(w.n)
	default:
		for i, x := range b.waiters {
			if x == w {
				b.waiters = append(b.waiters[:i], b.waiters[i+1:]...)
				b.waiting.Add(-1)
				break
			}
		}
	}
	b.grantLocked()
	return false
}

// release gives back n bytes and wakes the waiters that now fit. The
// bytes are added before waiting is read, and a new waiter counts itself
// before it looks at the free bytes, so one of the two always serves it.
func (b *byteBudget) release(n int64) {
	b.free.Add(n)
	if b.waiting.Load() > 0 {
		b.mu.Lock()
		b.grantLocked()
		b.mu.Unlock()
	}
}

// grantLocked serves waiters from the head while they fit.
func (b *byteBudget) grantLocked() {
	for len(b.waiters) > 0 && b.take(b.waiters[0].n) {
		w := b.waiters[0]
		b.waiters[0] = nil
		b.waiters = b.waiters[1:]
		b.waiting.Add(-1)
		close(w.ready)
	}
}

// held returns the bytes currently held.
func (b *byteBudget) held() int64 { return b.size - b.free.Load() }
