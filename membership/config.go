package membership

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/bifrost-go/bifrost/rpc"
)

// Config configures both sides of membership: Serve, on every member of
// the raft group, and Join, on every server that registers. The zero value
// of every timing field means its default; both sides must use the same
// timings.
type Config struct {
	// Group is the sm group whose host carries the membership machine.
	// Serve finds the machine there; the heartbeat service is
	// "membership." + Group, so several groups share one rpc server.
	// Required.
	Group string
	// Servers are the rpc addresses of the group's members, where Join
	// sends heartbeats; Pool dials them. Both are those of the sm client
	// passed to Join (sm.Client does not tell them). Required by Join;
	// Serve ignores them.
	Servers []string
	Pool    *rpc.Pool

	// HeartbeatInterval is how often a member heartbeats to the raft
	// leader. Default 500ms.
	HeartbeatInterval time.Duration
	// Timeout is how long the leader waits without a heartbeat before it
	// proposes a member offline. At least twice HeartbeatInterval, so that
	// one lost heartbeat never takes a member offline. Default 3s.
	Timeout time.Duration
	// Grace is the deadline a leader gives every online member when it
	// starts to lead and when it notices it was paused itself: no member
	// goes offline before Grace has passed since. At least
	// HeartbeatInterval. Default Timeout.
	Grace time.Duration
	// Logger receives the leader's transitions and failures. Default:
	// discard.
	Logger *slog.Logger
}

// Defaults of Config.
const (
	DefaultHeartbeatInterval = 500 * time.Millisecond
	DefaultTimeout           = 3 * time.Second
)

// ErrBadConfig reports a Config that cannot be used.
var ErrBadConfig = errors.New("membership: bad config")

func (c Config) withDefaults() (Config, error) {
	if c.HeartbeatInterval < 0 || c.Timeout < 0 || c.Grace < 0 {
		return c, fmt.Errorf("%w: negative duration", ErrBadConfig)
	}
	if c.Group == "" {
		return c, fmt.Errorf("%w: no Group", ErrBadConfig)
	}
	c.HeartbeatInterval = cmp.Or(c.HeartbeatInterval, DefaultHeartbeatInterval)
	c.Timeout = cmp.Or(c.Timeout, DefaultTimeout)
	c.Grace = cmp.Or(c.Grace, c.Timeout)
	if c.Timeout < 2*c.HeartbeatInterval {
		return c, fmt.Errorf("%w: Timeout %v is less than twice HeartbeatInterval %v", ErrBadConfig, c.Timeout, c.HeartbeatInterval)
	}
	if c.Grace < c.HeartbeatInterval {
		return c, fmt.Errorf("%w: Grace %v is less than HeartbeatInterval %v", ErrBadConfig, c.Grace, c.HeartbeatInterval)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// tickEvery is the period of the leader's detector: a quarter of the
// heartbeat interval, so that an expired member is noticed well within
// one heartbeat.
func (c Config) tickEvery() time.Duration { return max(c.HeartbeatInterval/4, time.Millisecond) }

// pauseAfter is the gap between two of its ticks that tells the leader it
// was paused itself (GC, SIGSTOP, a starved process): one heartbeat
// interval, but at most half of what a live member's deadline can lag
// (Timeout - HeartbeatInterval), so that any pause long enough to expire
// a live member is noticed.
func (c Config) pauseAfter() time.Duration {
	return max(2*c.tickEvery(), min(c.HeartbeatInterval, (c.Timeout-c.HeartbeatInterval)/2))
}
