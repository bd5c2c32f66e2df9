package chash

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
)

// A follower keeps the ring of a set of weighted servers that changes
// over time, one numbered version after another, and tells watchers what
// each version moved. Lookups read the current version through one
// atomic pointer: they never lock and never allocate, and a new version
// replaces the old one whole. Watchers are called in version order, none
// skipped, by the goroutine that applies the versions, after the new ring
// is in place.

// ErrNoRing is the error of a lookup before the first version of the ring
// arrived, or while it holds no server.
var ErrNoRing = errors.New("chash: no ring yet")

// ErrStaleVersion reports a version below the current one.
var ErrStaleVersion = errors.New("chash: version older than the ring's")

// RangeChange is what one server gained and lost when the ring moved to
// Version. Replaying a server's changes from the empty ring gives its
// ranges in the current ring.
type RangeChange struct {
	Version uint64
	Server  string
	Delta
}

// RingChange is a new version of the whole ring and what it moved for
// every server whose ranges changed.
type RingChange struct {
	Version uint64
	Ring    *Ring
	Deltas  map[string]Delta
}

// version is one version of a followed ring, with the servers' addresses.
type version struct {
	number uint64
	ring   *Ring
	addrs  map[string]string
}

// follower applies versions of a ring and calls watchers.
type follower struct {
	cfg     RingConfig
	current atomic.Pointer[version]

	mu      sync.Mutex // protects the following; held while watchers run, so they see versions in order
	servers map[string][]*func(RangeChange)
	rings   []*func(RingChange)
}

func newFollower(cfg RingConfig) (*follower, error) {
	if _, err := cfg.withDefaults(); err != nil {
		return nil, err
	}
	return &follower{cfg: cfg, servers: map[string][]*func(RangeChange){}}, nil
}

// apply makes the ring of weights version n, and calls the watchers of
// what it moved. addrs gives each server's address, if known. n may
// repeat the current version: one change of membership that moves many
// servers (a group deleted) may come as several steps of one version.
func (f *follower) apply(n uint64, weights map[string]uint64, addrs map[string]string) error {
	ring, err := NewRing(weights, f.cfg)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	prev := f.current.Load()
	if prev != nil && n < prev.number {
		return fmt.Errorf("%w: %d after %d", ErrStaleVersion, n, prev.number)
	}
	f.current.Store(&version{number: n, ring: ring, addrs: maps.Clone(addrs)})
	var deltas map[string]Delta
	if prev == nil {
		deltas = Diff(nil, ring)
	} else {
		deltas = Diff(prev.ring, ring)
	}
	// Servers' watchers first: a ring watcher then knows that every
	// server's change of this version has been told.
	for _, server := range slices.Sorted(maps.Keys(deltas)) {
		for _, w := range f.servers[server] {
			(*w)(RangeChange{Version: n, Server: server, Delta: deltas[server]})
		}
	}
	for _, w := range f.rings {
		(*w)(RingChange{Version: n, Ring: ring, Deltas: deltas})
	}
	return nil
}

// lookup returns the server owning h and its address.
func (f *follower) lookup(h uint64) (server, addr string, n uint64, err error) {
	v := f.current.Load()
	if v == nil {
		return "", "", 0, ErrNoRing
	}
	s, ok := v.ring.Lookup(h)
	if !ok {
		return "", "", v.number, ErrNoRing
	}
	return s, v.addrs[s], v.number, nil
}

// ring returns the current ring and its version, or nil before the first.
func (f *follower) ring() (*Ring, uint64) {
	v := f.current.Load()
	if v == nil {
		return nil, 0
	}
	return v.ring, v.number
}

// watchServer calls fn with every change of server's ranges from now on,
// the first one being its ranges in the current ring (from the empty
// ring), if it has any. The returned func stops the calls.
func (f *follower) watchServer(server string, fn func(RangeChange)) (stop func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if v := f.current.Load(); v != nil {
		if rs := v.ring.Ranges(server); len(rs) > 0 {
			fn(RangeChange{Version: v.number, Server: server, Delta: Delta{Gained: rs}})
		}
	}
	p := &fn
	f.servers[server] = append(f.servers[server], p)
	return func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.servers[server] = deleteFunc(f.servers[server], p)
		if len(f.servers[server]) == 0 {
			delete(f.servers, server)
		}
	}
}

// watchRing calls fn with every version of the ring from now on, the
// first one being the current ring as a change from the empty ring.
func (f *follower) watchRing(fn func(RingChange)) (stop func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if v := f.current.Load(); v != nil {
		fn(RingChange{Version: v.number, Ring: v.ring, Deltas: Diff(nil, v.ring)})
	}
	p := &fn
	f.rings = append(f.rings, p)
	return func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.rings = deleteFunc(f.rings, p)
	}
}

func deleteFunc[T any](ws []*T, p *T) []*T {
	for i, w := range ws {
		if w == p {
			return append(ws[:i:i], ws[i+1:]...)
		}
	}
	return ws
}
