package sm

import "github.com/bifrost-go/bifrost/internal/metrics"

// LagBuckets are the upper bounds, in log entries, of HostStats'
// subscription lag.
var LagBuckets = []float64{0, 1, 4, 16, 64, 256, 1024, 4096, 16384, 65536}

// HostStats counts what a host has applied and delivered.
type HostStats struct {
	// CommandsApplied counts the commands whose handler ran, whether it
	// answered or failed.
	CommandsApplied uint64
	// SubscriptionLag is how far subscribers were behind, in log
	// entries, each time this member answered a poll as leader: for
	// each subscription polled, from the oldest event waiting for it to
	// the newest event recorded, both included; 0 with none waiting.
	SubscriptionLag metrics.HistogramSnapshot
}

// hostCounters are a host's HostStats as it keeps them.
type hostCounters struct {
	commands metrics.Counter
	lag      *metrics.Histogram
}

func newHostCounters() hostCounters { return hostCounters{lag: metrics.NewHistogram(LagBuckets)} }

// Stats returns the host's counts so far.
func (h *Host) Stats() HostStats {
	return HostStats{CommandsApplied: h.stats.commands.Load(), SubscriptionLag: h.stats.lag.Snapshot()}
}

// observeLag records the lag of each subscription a poll answers; the
// caller holds the read lock.
func (h *Host) observeLag(res []subEvents) {
	for _, r := range res {
		switch {
		case r.status != stOK:
		case len(r.events) == 0:
			h.stats.lag.Observe(0)
		default:
			newest := h.subs.events[len(h.subs.events)-1].id.Index
			h.stats.lag.Observe(float64(newest - r.events[0].id.Index + 1))
		}
	}
}

// ServerStats counts the calls a group's service answered on one member.
type ServerStats struct {
	// Reads counts the queries by read mode: Linearizable, Lease and
	// Follower. ReadsRefused counts those of them refused because the
	// read index could not be had (no leader, lost leadership, timeout).
	Reads        [3]uint64
	ReadsRefused uint64
	// Commands counts the commands, subscribes, unsubscribes and
	// keep-alives of clients received; a follower answers them with the
	// leader's address.
	Commands uint64
	// Polls counts the subscribers' polls.
	Polls uint64
}

// serverCounters are a Server's ServerStats as it keeps them.
type serverCounters struct {
	reads                    [3]metrics.Counter
	refused, commands, polls metrics.Counter
}

// Stats returns the service's counts so far.
func (s *Server) Stats() ServerStats {
	c := &s.counters
	return ServerStats{Reads: [3]uint64{c.reads[Linearizable].Load(), c.reads[Lease].Load(), c.reads[Follower].Load()},
		ReadsRefused: c.refused.Load(), Commands: c.commands.Load(), Polls: c.polls.Load()}
}

// countRead counts a read of mode, if it is one.
func (c *serverCounters) countRead(mode ReadMode) {
	if int(mode) < len(c.reads) {
		c.reads[mode].Inc()
	}
}
