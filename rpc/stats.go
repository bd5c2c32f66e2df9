package rpc

import (
	"maps"
	"sync/atomic"

	"github.com/bifrost-go/bifrost/internal/metrics"
)

// ServerStats counts the calls a server has answered since it was made.
type ServerStats struct {
	// Calls counts the requests read from connections; Errors those
	// answered with an error, the handler's or the server's (no such
	// method, shutting down, deadline passed).
	Calls, Errors uint64
	// LocalCalls counts the calls through LocalClient; LocalErrors
	// those whose handler returned an error.
	LocalCalls, LocalErrors uint64
	// Notifications counts the one-way requests read from connections.
	Notifications uint64
	// InFlight is the number of requests from connections running now.
	InFlight int64
	// Services holds the same counts by the name of the service called,
	// for the services added to the server; calls of a service it does
	// not have count in the totals alone.
	Services map[string]ServiceStats
}

// ServiceStats counts the calls of one service.
type ServiceStats struct {
	Calls, Errors, LocalCalls, LocalErrors uint64
}

// serverCounters are a server's ServerStats as its connections keep
// them: atomic adds, no lock.
type serverCounters struct {
	total    serviceCounters
	inFlight metrics.Gauge
	notified metrics.Counter
	// services are copied on write by AddService, which serialises
	// writers; readers look up without a lock.
	services atomic.Pointer[map[uint64]*serviceCounters]
}

// serviceCounters are the counts of one service, or of all.
type serviceCounters struct {
	name                                   string
	calls, errors, localCalls, localErrors metrics.Counter
}

// addService starts counting svc's calls; the caller holds regMu.
func (c *serverCounters) addService(svc *Service) {
	next := map[uint64]*serviceCounters{}
	if old := c.services.Load(); old != nil {
		next = maps.Clone(*old)
	}
	next[svc.id] = &serviceCounters{name: svc.name}
	c.services.Store(&next)
}

// service returns the counters of the service with id, or nil.
func (c *serverCounters) service(id uint64) *serviceCounters {
	if m := c.services.Load(); m != nil {
		return (*m)[id]
	}
	return nil
}

// countCall counts a request for service read from a connection.
func (s *Server) countCall(service uint64) {
	s.counters.total.calls.Inc()
	if sc := s.counters.service(service); sc != nil {
		sc.calls.Inc()
	}
}

// countError counts a request for service from a connection answered
// with an error.
func (s *Server) countError(service uint64) {
	s.counters.total.errors.Inc()
	if sc := s.counters.service(service); sc != nil {
		sc.errors.Inc()
	}
}

// countLocal counts an in-process call of service, and whether it failed.
func (s *Server) countLocal(service uint64, failed bool) {
	s.counters.total.countLocal(failed)
	if sc := s.counters.service(service); sc != nil {
		sc.countLocal(failed)
	}
}

func (c *serviceCounters) countLocal(failed bool) {
	c.localCalls.Inc()
	if failed {
		c.localErrors.Inc()
	}
}

// Stats returns the server's counts so far.
func (s *Server) Stats() ServerStats {
	c := &s.counters
	st := ServerStats{Calls: c.total.calls.Load(), Errors: c.total.errors.Load(), LocalCalls: c.total.localCalls.Load(),
		LocalErrors: c.total.localErrors.Load(), Notifications: c.notified.Load(), InFlight: c.inFlight.Load(),
		Services: map[string]ServiceStats{}}
	if m := c.services.Load(); m != nil {
		for _, sc := range *m {
			st.Services[sc.name] = ServiceStats{Calls: sc.calls.Load(), Errors: sc.errors.Load(),
				LocalCalls: sc.localCalls.Load(), LocalErrors: sc.localErrors.Load()}
		}
	}
	return st
}
