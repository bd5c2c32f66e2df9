// Package chash is weighted consistent hashing: a ring that maps keys to
// servers so that a change of servers moves few keys, and tells each
// server which hashes it gained and lost.
//
// # The ring
//
// Every hash is a 64-bit number, and the ring is a sorted array of 64-bit
// points read as a circle: the owner of a hash is the owner of the first
// point at or after it, and a hash above the last point goes round to the
// first. Each server has many points, at the FNV-1a hash of its
// length-prefixed name and a fixed-width replica number, so its share of
// the circle is the sum of many small arcs and comes out close to its
// share of the points. Keys are hashed by HashString, which reads eight
// bytes at a time: a lookup pays for its key's hash every time, a point's
// hash is paid once a ring. A Ring is a value: NewRing builds it from weights,
// it never changes, and any number of goroutines may read it; a change of
// membership builds a new Ring.
//
//	r, err := chash.NewRing(map[string]uint64{"a": 1, "b": 1, "c": 2}, chash.RingConfig{})
//	server, ok := r.LookupString("user:42")
//
// # How many points
//
// A server of weight w gets max(MinPoints, ceil(Points*w/Unit)) points.
// The count depends on the server's own weight and the unit only, never
// on who else is in the ring, so a server that joins takes keys from the
// others and no key moves between two servers that stayed. The unit is by
// default the largest power of two not above the heaviest weight: weights
// may be in any unit (megabytes, bytes) without making the ring huge, the
// heaviest server gets between Points and 2*Points points, and the unit
// changes only when the heaviest weight crosses a power of two. A caller
// that must never see that fixes RingConfig.Unit.
//
// The share of a server with p points is off by about 1/sqrt(p) of
// itself, and a ring of n servers is n times bigger: the lookup reads the
// ring in one random place, so a ring too big for the caches is slow.
// The default, 512 points for a server of the unit's weight, is the
// smallest power of two that keeps the largest of 10, 100 and 1000 equal
// servers within 1.10, 1.15 and 1.30 of the mean with room to spare,
// while a ring of 1000 servers stays at a few megabytes. It is a quarter
// of the original bifrost's 2048 points, which were shared by the whole
// ring; here the count is per server, so that joins do not move the
// others' points. The floor, 64 points by default, keeps a light server's
// share from resting on a handful of points.
//
// Points that land on the same hash (a 2^-64 event) are ordered by server
// name, so the server first by name owns the position and rings built
// from the same weights are identical whatever the order of the map.
// Fingerprint hashes the points and their owners so that members can
// check cheaply that they agree.
//
// # Lookups
//
// A binary search over the points is the reference. The fast path cuts
// the hash space into lines of six points on average and keeps each line
// in one 64-byte cache line: sixteen slots, each a 15-bit key (the top of
// a point's offset into its line) and a 16-bit owner. A lookup finds the
// line with one multiply, reads that cache line and nothing else, and
// counts the keys below the hash four at a time in the lanes of a word,
// without a branch; the next slot names the owner. A hash whose key ties
// with that point's, or that lies above every point of a line with no
// free slot, is left to the binary search, about once in 3000 lookups. The
// table costs about 11 bytes a point beside the points and owners, 21 in
// all. Lookups allocate nothing.
//
// # Ranges
//
// Ranges lists the arcs of the hash space a server owns, as inclusive
// ranges that never wrap round (an arc across the top is two ranges).
// Diff compares two rings and gives each server whose arcs changed the
// ranges it gained and lost; every hash that moves is lost by exactly its
// old owner and gained by exactly its new one. A nil ring is the empty
// ring, so Diff(nil, r) gives every server its ranges in r, and replaying
// the deltas of a sequence of rings from the empty ring gives the ranges
// of the last. A server that gains a range loads that data; one that
// loses a range may drop it.
//
// # Following a membership group
//
// ConsistentHashing is the ring of one membership group: its servers are
// the group's online members, by name, with their weights in the group.
// It reads the group and subscribes to its events in one step
// (membership.Observer.WatchGroup), then builds a new Ring for every
// event, versioned by the membership version, and swaps it in whole, so
// every client that has applied the same version holds the same ring and
// a lookup never waits. Nothing polls: a member that joins, leaves, goes
// offline, comes back or changes weight reaches every ring through the
// group's ordered stream. WatchServerRangeChanged tells a server what
// each version gained and lost for it, in version order, starting from
// its ranges in the current ring; replaying its changes from the empty
// ring gives its ranges now. A stream that fell behind the retention
// window is replaced by a fresh read, whose one change spans the versions
// missed, exactly. HashObject places any value by a deterministic
// encoding of it, so equal values land on the same server in every
// process.
//
//	ch, err := chash.NewMember(ctx, handle, observer, 3, chash.Config{Group: "cache"})
//	server, err := ch.LookupString("user:42") // server.Name, server.Addr
//	stop := ch.WatchServerRangeChanged("cache-1", func(c chash.RangeChange) { load(c.Gained); drop(c.Lost) })
//
// # Why not jump hash
//
// Jump consistent hash (Lamping and Veach) needs no memory and balances
// perfectly, but it maps keys to bucket numbers 0..n-1: servers have no
// weights, and only the last bucket can leave without moving keys between
// the others. A server cannot be told which ranges of keys it gained,
// because a bucket's keys are not ranges of anything. The ring costs
// memory and a little balance and buys weights, arbitrary joins and
// leaves, and range watches.
package chash
