package chash

import (
	"encoding/binary"
	"fmt"
	"slices"
)

// Ring maps 64-bit hashes to servers. It is immutable once built and safe
// for concurrent use; lookups allocate nothing.
type Ring struct {
	servers []string // sorted; owners index into it
	counts  []int    // points of each server, parallel to servers

	// points are the positions, sorted, ties ordered by owner and so by
	// name; index holds their owners.
	points []uint64
	index  lookupTable

	fingerprint uint64
}

// point is a position and its owner while a ring is built.
type point struct {
	hash  uint64
	owner uint32
}

// NewRing builds the ring of servers with the given weights. A nil or
// empty map gives an empty ring. It returns an error wrapping
// ErrEmptyName or ErrZeroWeight (with the server's name) for a bad entry,
// ErrInvalidConfig for a bad config, and ErrRingTooLarge when the points
// would not fit.
func NewRing(weights map[string]uint64, cfg RingConfig) (*Ring, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	servers, err := sortedServers(weights)
	if err != nil {
		return nil, err
	}
	counts, err := pointCounts(servers, weights, cfg)
	if err != nil {
		return nil, err
	}
	r := &Ring{servers: servers, counts: counts}
	var owners []uint16
	r.points, owners = splitPoints(placePoints(servers, counts))
	r.index = newLookupTable(r.points, owners)
	r.fingerprint = r.computeFingerprint()
	return r, nil
}

// sortedServers checks the entries of weights and returns the names in
// order, so errors and owner indexes do not depend on map order.
func sortedServers(weights map[string]uint64) ([]string, error) {
	servers := make([]string, 0, len(weights))
	for name := range weights {
		servers = append(servers, name)
	}
	slices.Sort(servers)
	for _, name := range servers {
		if name == "" {
			return nil, fmt.Errorf("%w: weight %d", ErrEmptyName, weights[name])
		}
		if weights[name] == 0 {
			return nil, fmt.Errorf("%w: server %q", ErrZeroWeight, name)
		}
	}
	if len(servers) > maxServers {
		return nil, fmt.Errorf("%w: %d servers", ErrRingTooLarge, len(servers))
	}
	return servers, nil
}

// pointCounts returns the number of points of each server.
func pointCounts(servers []string, weights map[string]uint64, cfg RingConfig) ([]int, error) {
	unit := cfg.unitFor(weights)
	counts := make([]int, len(servers))
	total := 0
	for i, name := range servers {
		n, ok := cfg.pointCount(weights[name], unit)
		total += n
		if !ok || total > maxRingPoints {
			return nil, fmt.Errorf("%w: server %q with weight %d", ErrRingTooLarge, name, weights[name])
		}
		counts[i] = n
	}
	return counts, nil
}

// placePoints returns every server's points, sorted by position and then
// by owner, so that equal positions are broken by name and any insertion
// order gives the same ring.
func placePoints(servers []string, counts []int) []point {
	total := 0
	for _, n := range counts {
		total += n
	}
	pts := make([]point, 0, total)
	for s, name := range servers {
		prefix := pointPrefix(name)
		for i := range counts[s] {
			pts = append(pts, point{pointHash(prefix, uint32(i)), uint32(s)})
		}
	}
	sortPoints(pts)
	return pts
}

// splitPoints returns the positions and the owners of pts.
func splitPoints(pts []point) ([]uint64, []uint16) {
	points := make([]uint64, len(pts))
	owners := make([]uint16, len(pts))
	for i, p := range pts {
		points[i], owners[i] = p.hash, uint16(p.owner)
	}
	return points, owners
}

// owner returns the server index owning point i; i == len(r.points)
// stands for the first point, where a hash above every point wraps to.
func (r *Ring) owner(i int) int {
	return r.index.ownerAt(i)
}

// computeFingerprint hashes the server names and every point with its
// owner, in order.
func (r *Ring) computeFingerprint() uint64 {
	var buf [12]byte
	binary.BigEndian.PutUint64(buf[:8], uint64(len(r.servers)))
	h := fnv1a(fnvOffset, buf[:8])
	for _, name := range r.servers {
		binary.BigEndian.PutUint64(buf[:8], uint64(len(name)))
		h = fnv1a(fnv1a(h, buf[:8]), name)
	}
	for i, p := range r.points {
		binary.BigEndian.PutUint64(buf[:8], p)
		binary.BigEndian.PutUint32(buf[8:], uint32(r.owner(i)))
		h = fnv1a(h, buf[:])
	}
	return fmix64(h)
}

// Lookup returns the server that owns hash h: the owner of the first
// point at or after h, going round past the top of the hash space to the
// first point. ok is false only for an empty ring.
func (r *Ring) Lookup(h uint64) (server string, ok bool) {
	if len(r.points) == 0 {
		return // a bare return keeps Lookup within the inliner's budget
	}
	i, _ := r.index.owner(h)
	return r.servers[i], true
}

// LookupString returns the server that owns key, Lookup(HashString(key)).
func (r *Ring) LookupString(key string) (server string, ok bool) {
	return r.Lookup(HashString(key))
}

// Servers returns the names of the servers in the ring, sorted.
func (r *Ring) Servers() []string {
	return slices.Clone(r.servers)
}

// Fingerprint returns a hash of the ring's servers, points and owners,
// so members can check cheaply that they built the same ring. Equal
// rings have equal fingerprints in every process and release.
func (r *Ring) Fingerprint() uint64 {
	return r.fingerprint
}

// pointsOf returns the number of points of server, zero if it is not in
// the ring.
func (r *Ring) pointsOf(server string) int {
	i, found := slices.BinarySearch(r.servers, server)
	if !found {
		return 0
	}
	return r.counts[i]
}
