package chash

import (
	"errors"
	"fmt"
	"math/bits"
)

// Defaults of RingConfig, chosen from the balance targets in the package
// documentation.
const (
	DefaultPoints    = 512
	DefaultMinPoints = 64
)

// maxRingPoints bounds the size of a ring whatever its weights and config:
// 4 Mi points are about 100 MiB of ring.
const maxRingPoints = 1 << 22

// maxServers bounds the servers of a ring, so that an owner fits in 16
// bits and a lookup reads less memory.
const maxServers = 1 << 16

// Errors returned by NewRing, wrapped with the offending server's name.
var (
	ErrZeroWeight    = errors.New("chash: zero weight")
	ErrEmptyName     = errors.New("chash: empty server name")
	ErrInvalidConfig = errors.New("chash: invalid ring config")
	ErrRingTooLarge  = errors.New("chash: ring too large")
)

// RingConfig sizes a ring. The zero value means the defaults.
type RingConfig struct {
	// Points is the number of points a server whose weight equals Unit
	// gets; a server of weight w gets ceil(Points*w/Unit) of them. More
	// points balance load better (the share of a server with p points
	// is off by about 1/sqrt(p)) and cost memory (about 21 bytes a point)
	// and cache misses. Unitless count; zero means DefaultPoints (512).
	Points int

	// MinPoints is the floor: no server gets fewer points, however
	// light, so that a light server's share is not left to a handful of
	// points. A floor above a server's proportional count gives it more
	// than its share. Unitless count; zero means DefaultMinPoints (64).
	MinPoints int

	// Unit is the weight that earns Points points, in the caller's unit
	// of weight. Zero means the largest power of two that is not above
	// the largest weight in the ring, so the heaviest server gets between
	// Points and 2*Points points whatever scale the weights are on
	// (megabytes, bytes, 2^40...). That derived unit changes only when
	// the largest weight crosses a power of two; a caller who wants a
	// join never to move keys between other servers, even then, fixes
	// Unit.
	Unit uint64
}

// withDefaults returns c with its zero fields set to the defaults.
func (c RingConfig) withDefaults() (RingConfig, error) {
	if c.Points < 0 || c.MinPoints < 0 {
		return c, fmt.Errorf("%w: negative point count", ErrInvalidConfig)
	}
	if c.Points == 0 {
		c.Points = DefaultPoints
	}
	if c.MinPoints == 0 {
		c.MinPoints = DefaultMinPoints
	}
	return c, nil
}

// unitFor returns the unit of weight: c.Unit when set, otherwise the
// largest power of two not above the heaviest weight.
func (c RingConfig) unitFor(weights map[string]uint64) uint64 {
	if c.Unit != 0 {
		return c.Unit
	}
	var heaviest uint64
	for _, w := range weights {
		heaviest = max(heaviest, w)
	}
	if heaviest == 0 {
		return 1
	}
	return 1 << (bits.Len64(heaviest) - 1)
}

// pointCount returns the number of points of a server of weight w, or
// false when it does not fit in a ring.
func (c RingConfig) pointCount(w, unit uint64) (int, bool) {
	hi, lo := bits.Mul64(uint64(c.Points), w)
	if hi >= unit {
		return 0, false
	}
	q, rem := bits.Div64(hi, lo, unit)
	if rem != 0 {
		q++
	}
	if q > maxRingPoints {
		return 0, false
	}
	return max(int(q), c.MinPoints), true
}
