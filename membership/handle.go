package membership

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bifrost-go/bifrost/rpc"
	"github.com/bifrost-go/bifrost/sm"
)

// MemberHandle is a server's registration with the cluster: one
// incarnation of one member, heartbeating to the raft leader until Close.
// It is safe for concurrent use.
type MemberHandle struct {
	c   *sm.Client
	cfg Config
	me  Member
	hb  *rpc.Method[heartbeat, heartbeatAnswer]

	ctx    context.Context // ends when heartbeats stop
	cancel context.CancelFunc
	done   chan struct{} // closed when the heartbeat loop ended
	// lastBeat is when the last heartbeat the leader heard was sent, in
	// Unix nanoseconds.
	lastBeat atomic.Int64
	silent   atomic.Bool // tests: send nothing, as if cut off

	mu     sync.Mutex // protects the following
	target string     // the member believed to lead
	err    error      // why heartbeats stopped before Close
	closed bool
}

// Join registers the server called name, reachable at addr, with the
// cluster c reaches: a new member, or, if a member of that name is there
// already, its new incarnation (a restart), which keeps its id and groups
// and replaces its address. It then heartbeats to the leader every
// cfg.HeartbeatInterval until Close, through cfg.Servers and cfg.Pool.
// Errors: ErrBadConfig, ErrBadRequest for an empty name, or c's.
func Join(ctx context.Context, c *sm.Client, name, addr string, cfg Config) (*MemberHandle, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if len(cfg.Servers) == 0 || cfg.Pool == nil {
		return nil, fmt.Errorf("%w: Join needs Servers and Pool", ErrBadConfig)
	}
	me, err := joinCmd.Do(ctx, c, request{Name: name, Addr: addr})
	if err != nil {
		return nil, fromRemote(err)
	}
	h := &MemberHandle{c: c, cfg: cfg, me: me, hb: heartbeatMethod(cfg.Group), done: make(chan struct{}),
		target: cfg.Servers[0]}
	h.cfg.Servers = slices.Clone(cfg.Servers)
	h.ctx, h.cancel = context.WithCancel(context.Background())
	go h.run()
	return h, nil
}

// ID returns the member's id.
func (h *MemberHandle) ID() MemberID { return h.me.ID }

// Member returns the member as it joined: id, name, address and this
// incarnation.
func (h *MemberHandle) Member() Member { return h.me }

// JoinGroup puts the member in group, which must exist (ErrNoGroup),
// with weight 1: JoinGroupWeighted(ctx, group, 1).
func (h *MemberHandle) JoinGroup(ctx context.Context, group string) error {
	return h.JoinGroupWeighted(ctx, group, 1)
}

// JoinGroupWeighted puts the member in group, which must exist
// (ErrNoGroup), with weight, at least 1 (ErrBadRequest). If the member
// is there already, it sets the weight, as SetWeight does: nothing
// happens for the same weight.
func (h *MemberHandle) JoinGroupWeighted(ctx context.Context, group string, weight uint64) error {
	return h.groupCommand(ctx, joinGroupCmd, group, weight)
}

// SetWeight sets the member's weight in group to weight, at least 1
// (ErrBadRequest); the member must be in the group (ErrNotInGroup).
// Nothing happens for the same weight; a change is announced as Weighted
// on the group's stream.
func (h *MemberHandle) SetWeight(ctx context.Context, group string, weight uint64) error {
	return h.groupCommand(ctx, setWeightCmd, group, weight)
}

// LeaveGroup takes the member out of group, and its weight there;
// nothing happens if it is not there.
func (h *MemberHandle) LeaveGroup(ctx context.Context, group string) error {
	return h.groupCommand(ctx, leaveGroupCmd, group, 0)
}

func (h *MemberHandle) groupCommand(ctx context.Context, c *sm.Command[request, struct{}], group string, weight uint64) error {
	if h.isClosed() {
		return ErrClosed
	}
	_, err := c.Do(ctx, h.c, request{ID: h.me.ID, Incarnation: h.me.Incarnation, Group: group, Weight: weight})
	return fromRemote(err)
}

// Done is closed when the member stops heartbeating: after Close, or when
// the cluster refused its heartbeats (Err).
func (h *MemberHandle) Done() <-chan struct{} { return h.done }

// Err returns why the member stopped heartbeating before Close, if it
// did: ErrStaleIncarnation once a newer incarnation of the same name
// joined, ErrUnknownMember once the member is not in the cluster.
func (h *MemberHandle) Err() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.err
}

// Close stops the heartbeats and leaves the cluster: the member leaves
// its groups and the cluster, and Left is announced. Calls after it fail
// with ErrClosed.
func (h *MemberHandle) Close(ctx context.Context) error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return ErrClosed
	}
	h.closed = true
	h.mu.Unlock()
	h.cancel()
	<-h.done
	_, err := leaveCmd.Do(ctx, h.c, request{ID: h.me.ID, Incarnation: h.me.Incarnation})
	return fromRemote(err)
}

func (h *MemberHandle) isClosed() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.closed
}

// run heartbeats every interval until Close or a refusal.
func (h *MemberHandle) run() {
	defer close(h.done)
	t := time.NewTicker(h.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		if !h.silent.Load() {
			if err := h.beat(); err != nil {
				h.mu.Lock()
				h.err = err
				h.mu.Unlock()
				h.cfg.Logger.Warn("membership: heartbeats refused", "member", h.me.String(), "err", err)
				return
			}
		}
		select {
		case <-h.ctx.Done():
			return
		case <-t.C:
		}
	}
}

// beat delivers one heartbeat to the leader within one interval,
// following the members' pointers to it; a heartbeat not delivered in
// time is given up, the next one comes on time. It returns an error only
// for a refusal that ends the member.
func (h *MemberHandle) beat() error {
	ctx, cancel := context.WithTimeout(h.ctx, h.cfg.HeartbeatInterval)
	defer cancel()
	pause := max(h.cfg.HeartbeatInterval/10, time.Millisecond)
	for {
		addr := h.targetAddr()
		sent := time.Now()
		ans, err := h.call(ctx, addr)
		switch {
		case err != nil:
			h.moveOn(addr, "")
		case ans.Status == hbOK:
			h.lastBeat.Store(sent.UnixNano())
			return nil
		case ans.Status == hbUnknown:
			return ErrUnknownMember
		case ans.Status == hbStale:
			return ErrStaleIncarnation
		case ans.Status == hbNotLeader && h.moveOn(addr, ans.Leader):
			continue // a fresh pointer: no need to wait
		}
		if ctx.Err() != nil || sleep(ctx, pause) != nil {
			return nil
		}
	}
}

// call sends one heartbeat to addr, giving it half an interval, so that
// a leader that hangs leaves time to try another member.
func (h *MemberHandle) call(ctx context.Context, addr string) (heartbeatAnswer, error) {
	ctx, cancel := context.WithTimeout(ctx, h.cfg.HeartbeatInterval/2)
	defer cancel()
	cl, err := h.cfg.Pool.Client(ctx, addr)
	if err != nil {
		return heartbeatAnswer{}, err
	}
	return h.hb.Call(ctx, cl, heartbeat{ID: h.me.ID, Incarnation: h.me.Incarnation})
}

func (h *MemberHandle) targetAddr() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.target
}

// moveOn picks the member to ask after addr: the leader a follower
// pointed at, or the next server. It reports whether it took a pointer.
func (h *MemberHandle) moveOn(addr, hint string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if hint != "" && hint != addr {
		h.target = hint
		return true
	}
	i := slices.Index(h.cfg.Servers, addr) // -1 for a pointer's address: the first server
	h.target = h.cfg.Servers[(i+1)%len(h.cfg.Servers)]
	return false
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
