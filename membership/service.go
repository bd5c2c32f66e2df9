package membership

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bifrost-go/bifrost/raft"
	"github.com/bifrost-go/bifrost/raft/node"
	"github.com/bifrost-go/bifrost/rpc"
	"github.com/bifrost-go/bifrost/sm"
)

// Service runs, on one member of the raft group, the heartbeat service
// and, while that member leads, the failure detector. Serve starts it;
// Close stops its goroutines.
//
// Two goroutines drive the detector. The ticker watches the node's role
// and term, notices its own pauses, and asks the detector for due
// transitions; the proposer puts them, or a new leader's barrier, through
// the log with sm.Submit, one batch at a time, so the ticker never waits
// on a commit and its gaps measure the process's pauses alone.
type Service struct {
	cfg Config
	srv *sm.Server
	st  *state

	ctx    context.Context // ends at Close
	cancel context.CancelFunc
	kick   chan struct{} // capacity 1: a heartbeat brought a member back, tick now
	work   chan job      // capacity 1: to the proposer, which has at most one job
	wg     sync.WaitGroup
	frozen atomic.Pointer[chan struct{}] // tests: the detector stalls until it closes

	mu       sync.Mutex // protects the following
	det      *detector
	term     uint64 // the term the detector leads or catches up in; 0 for none
	busy     bool   // the proposer has a job
	lastTick time.Time
	closed   bool
}

// job is the proposer's work: a batch of transitions, or for a nil batch
// the barrier of a new leader in term.
type job struct {
	term  uint64
	batch marks
}

// heartbeatMethod is the member's side of the heartbeat service of group.
func heartbeatMethod(group string) *rpc.Method[heartbeat, heartbeatAnswer] {
	return rpc.NewMethod[heartbeat, heartbeatAnswer]("membership."+group, "heartbeat")
}

// Serve starts membership on this member of the raft group s serves: it
// registers the heartbeat service "membership." + cfg.Group on srv (the
// rpc server s is served on) and starts the failure detector, which acts
// while this member leads. s's host must carry the membership Machine;
// one Service per host.
func Serve(srv *rpc.Server, s *sm.Server, cfg Config) (*Service, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	st, err := stateOf(s)
	if err != nil {
		return nil, err
	}
	svc := &Service{cfg: cfg, srv: s, st: st, det: newDetector(cfg.Timeout, cfg.Grace),
		kick: make(chan struct{}, 1), work: make(chan job, 1)}
	if !st.svc.CompareAndSwap(nil, svc) {
		return nil, fmt.Errorf("membership: group %q is served already on this host", cfg.Group)
	}
	rs := rpc.NewService("membership." + cfg.Group)
	if _, err := rpc.Register(rs, "heartbeat", svc.heartbeat); err != nil {
		st.svc.Store(nil)
		return nil, err
	}
	if err := srv.AddService(rs); err != nil {
		st.svc.Store(nil)
		return nil, fmt.Errorf("membership: serve group %q: %w", cfg.Group, err)
	}
	svc.ctx, svc.cancel = context.WithCancel(context.Background())
	svc.wg.Add(2)
	go svc.run()
	go svc.propose()
	return svc, nil
}

// stateOf finds the state of the membership machine of s's host.
func stateOf(s *sm.Server) (*state, error) {
	v, ok := s.Host().State(machineName)
	st, isState := v.(*state)
	if !ok || !isState {
		return nil, fmt.Errorf("%w: the host carries no membership machine", ErrBadConfig)
	}
	return st, nil
}

// Close stops the detector and waits for its goroutines. The heartbeat
// service stays registered on the rpc server and answers ErrClosed.
func (s *Service) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	s.st.svc.CompareAndSwap(s, nil)
	return nil
}

// heartbeat answers a member's heartbeat: the leader records it, a
// follower points at the leader.
func (s *Service) heartbeat(ctx context.Context, hb heartbeat) (heartbeatAnswer, error) {
	if err := s.waitFrozen(ctx); err != nil {
		return heartbeatAnswer{}, err
	}
	st := s.srv.Node().Status()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return heartbeatAnswer{}, ErrClosed
	}
	if st.Role != raft.RoleLeader {
		s.mu.Unlock()
		return heartbeatAnswer{Status: hbNotLeader, Leader: st.LeaderAddr}, nil
	}
	status, wake := s.heard(hb, time.Now())
	s.mu.Unlock()
	if wake {
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
	return heartbeatAnswer{Status: status}, nil
}

// heard gives the detector a heartbeat. One the detector cannot place,
// while it leads, it checks against the state: a member the state holds
// at that incarnation is tracked afresh rather than refused, whatever
// the detector missed, so that a member is told ErrUnknownMember or
// ErrStaleIncarnation only when the replicated state says so.
func (s *Service) heard(hb heartbeat, now time.Time) (status byte, wake bool) {
	status, wake = s.det.Heartbeat(hb.ID, hb.Incarnation, now)
	if status == hbOK || !s.det.Ready() {
		return status, wake
	}
	if m, ok := s.st.find(hb.ID); ok && m.Incarnation == hb.Incarnation {
		s.cfg.Logger.Warn("membership: detector had lost track of a member", "group", s.cfg.Group, "member", m.String())
		s.det.Track(m, now)
		return s.det.Heartbeat(hb.ID, hb.Incarnation, now)
	}
	return status, wake
}

// observe hears, on the leader, the changes of the cluster an apply
// announced.
func (s *Service) observe(evs []Event) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range evs {
		if e.Group == "" && s.det.Ready() {
			s.cfg.Logger.Info("membership: member "+e.Kind.String(), "group", s.cfg.Group, "member", e.Member.String(), "version", e.Version)
		}
		s.det.Observe(e, now)
	}
}

// run is the ticker.
func (s *Service) run() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.tickEvery())
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		case <-s.kick:
		}
		if s.waitFrozen(s.ctx) != nil {
			return
		}
		s.tick(time.Now())
	}
}

// tick hands due work to the proposer: the barrier of a new leader,
// then batches of transitions; after a pause of its own, it first gives
// every member the grace.
func (s *Service) tick(now time.Time) {
	st := s.srv.Node().Status()
	s.mu.Lock()
	defer s.mu.Unlock()
	gap := now.Sub(s.lastTick)
	paused := !s.lastTick.IsZero() && gap > s.cfg.pauseAfter()
	s.lastTick = now
	if !s.followLocked(st) {
		return
	}
	if paused {
		s.cfg.Logger.Warn("membership: the detector was paused; every member gets the grace", "group", s.cfg.Group, "gap", gap, "grace", s.cfg.Grace)
		s.det.Resume(now)
	}
	if s.busy {
		return
	}
	if ts := s.det.Tick(now); len(ts) > 0 {
		s.logDue(ts, now)
		s.sendLocked(job{term: s.term, batch: ts})
	}
}

// followLocked follows the node's role and term, and reports whether the
// detector leads, caught up. A new term starts over with a barrier.
func (s *Service) followLocked(st node.Status) bool {
	if st.Role != raft.RoleLeader {
		if s.term != 0 {
			s.cfg.Logger.Info("membership: detector stops: not leading", "group", s.cfg.Group, "term", s.term)
			s.det.Follow()
			s.term = 0
		}
		return false
	}
	if st.Term != s.term {
		s.det.Follow()
		s.term = st.Term
	}
	if !s.det.Ready() {
		s.sendLocked(job{term: s.term}) // until it applies
		return false
	}
	return true
}

// logDue says why the detector proposes ts.
func (s *Service) logDue(ts []Transition, now time.Time) {
	for _, t := range ts {
		s.cfg.Logger.Debug("membership: proposing", "group", s.cfg.Group, "member", t.ID, "incarnation", t.Incarnation,
			"online", t.Online, "heard", s.det.Heard(t.ID, now))
	}
}

func (s *Service) sendLocked(j job) {
	if s.busy {
		return
	}
	s.busy = true
	s.work <- j // never blocks: the proposer's one job is done
}

// propose is the proposer.
func (s *Service) propose() {
	defer s.wg.Done()
	for {
		select {
		case <-s.ctx.Done():
			return
		case j := <-s.work:
			s.do(j)
		}
	}
}

// do proposes one job and tells the detector how it went. A barrier that
// applied means this leader has applied its whole log: the detector
// starts over the state as it is.
func (s *Service) do(j job) {
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.Timeout)
	_, err := sm.Submit(ctx, s.srv, markCmd, j.batch)
	cancel()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.busy = false
	switch {
	case j.batch != nil:
		s.det.Settle(j.batch)
		if err != nil {
			s.cfg.Logger.Warn("membership: transitions not proposed", "group", s.cfg.Group, "count", len(j.batch), "err", err)
		}
	case err != nil:
		s.cfg.Logger.Debug("membership: barrier failed", "group", s.cfg.Group, "term", j.term, "err", err)
	case j.term == s.term:
		members := s.st.all()
		s.det.Lead(time.Now(), members)
		s.cfg.Logger.Info("membership: detector leads", "group", s.cfg.Group, "term", j.term, "members", len(members), "grace", s.cfg.Grace)
	}
}

// detecting reports whether the detector leads, caught up.
func (s *Service) detecting() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.det.Ready()
}

// waitFrozen waits while a test holds the detector frozen.
func (s *Service) waitFrozen(ctx context.Context) error {
	ch := s.frozen.Load()
	if ch == nil {
		return nil
	}
	select {
	case <-*ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.ctx.Done():
		return ErrClosed
	}
}

// freeze stalls the detector's goroutines and the heartbeat service, as
// a pause of the whole process would, until the returned func is called
// (tests).
func (s *Service) freeze() (resume func()) {
	ch := make(chan struct{})
	s.frozen.Store(&ch)
	return func() { s.frozen.Store(nil); close(ch) }
}
