package chash

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/bifrost-go/bifrost/membership"
	"github.com/bifrost-go/bifrost/sm"
)

// ConsistentHashing is the ring of one membership group, kept current by
// the group's events: the seed's consistent hashing. Its servers are the
// group's online members, by name, with their weights in the group; a
// member that joins, leaves, goes offline, comes back or changes weight
// changes the ring, pushed by membership (no polling), and every client
// that has seen the same membership version holds the same ring. Lookups
// read the current ring through one atomic pointer: they never lock and
// never allocate (LookupObject allocates to encode). It is safe for
// concurrent use.
type ConsistentHashing struct {
	cfg    Config
	obs    *membership.Observer
	f      *follower
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex // protects the following
	members map[membership.MemberID]membership.Member
	err     error // why following stopped, if it did
}

// Config configures a ConsistentHashing.
type Config struct {
	// Group is the membership group whose ring this is. Required.
	Group string
	// Ring configures the ring's points. The zero value is the default.
	Ring RingConfig
	// Logger receives what following the group has to say. Default:
	// discard.
	Logger *slog.Logger
}

// Server is where a lookup sends a key: a member's name (the ring's
// server) and its address.
type Server struct {
	Name, Addr string
}

// ErrStopped is the error of SetWeight after Close, or once following the
// group failed for good.
var ErrStopped = errors.New("chash: stopped following the group")

// New returns the ring of cfg.Group as the observer sees it, for a
// client that only looks up: it reads the group's members and subscribes
// to its events in one step, so no change falls between. Lookups fail
// with ErrNoRing while no member of the group is online.
func New(ctx context.Context, obs *membership.Observer, cfg Config) (*ConsistentHashing, error) {
	if cfg.Group == "" {
		return nil, errors.New("chash: Config.Group is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	f, err := newFollower(cfg.Ring)
	if err != nil {
		return nil, err
	}
	ch := &ConsistentHashing{cfg: cfg, obs: obs, f: f, done: make(chan struct{})}
	stream, err := ch.resync(ctx)
	if err != nil {
		return nil, err
	}
	run, cancel := context.WithCancel(context.Background())
	ch.cancel = cancel
	go ch.follow(run, stream)
	return ch, nil
}

// NewMember joins the member of h to cfg.Group with weight, then returns
// the group's ring as New does: the seed's member-side constructor.
func NewMember(ctx context.Context, h *membership.MemberHandle, obs *membership.Observer, weight uint64, cfg Config) (*ConsistentHashing, error) {
	if err := h.JoinGroupWeighted(ctx, cfg.Group, weight); err != nil {
		return nil, err
	}
	return New(ctx, obs, cfg)
}

// resync reads the group and opens its stream at the same index, and
// makes what it read the current ring.
func (ch *ConsistentHashing) resync(ctx context.Context) (*sm.Stream[membership.Event], error) {
	members, version, stream, err := ch.obs.WatchGroup(ctx, ch.cfg.Group)
	if err != nil {
		return nil, fmt.Errorf("chash: watch group %q: %w", ch.cfg.Group, err)
	}
	ch.mu.Lock()
	ch.members = map[membership.MemberID]membership.Member{}
	for _, m := range members {
		ch.members[m.ID] = m
	}
	ch.mu.Unlock()
	if err := ch.rebuild(version); err != nil {
		stream.Close(ctx)
		return nil, err
	}
	return stream, nil
}

// follow applies the group's events until Close. A stream that fell
// behind the retention window, or lost its session, is replaced by a
// fresh read: its one ring change spans the versions missed.
func (ch *ConsistentHashing) follow(ctx context.Context, stream *sm.Stream[membership.Event]) {
	defer close(ch.done)
	defer func() { stream.Close(context.WithoutCancel(ctx)) }()
	for {
		ev, err := stream.Next(ctx)
		if err == nil {
			err = ch.apply(ev.Value)
		}
		switch {
		case ctx.Err() != nil:
			ch.stop(ErrStopped)
			return
		case errors.Is(err, sm.ErrCompacted), errors.Is(err, sm.ErrSubscriptionGone):
			ch.cfg.Logger.Info("chash: resync with the group", "group", ch.cfg.Group, "err", err)
			stream.Close(ctx)
			if stream, err = ch.resync(ctx); err != nil {
				ch.stop(err)
				return
			}
		case err != nil:
			ch.stop(err)
			return
		}
	}
}

func (ch *ConsistentHashing) stop(err error) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.err == nil {
		ch.err = err
	}
	if !errors.Is(err, ErrStopped) {
		ch.cfg.Logger.Warn("chash: stopped following the group", "group", ch.cfg.Group, "err", err)
	}
}

// apply changes the members as ev says and rebuilds the ring.
func (ch *ConsistentHashing) apply(ev membership.Event) error {
	ch.mu.Lock()
	switch ev.Kind {
	case membership.Left:
		delete(ch.members, ev.Member.ID)
	default: // joined, online, offline, weighted: the member as it is now
		ch.members[ev.Member.ID] = ev.Member
	}
	ch.mu.Unlock()
	return ch.rebuild(ev.Version)
}

// rebuild makes the ring of the online members version n.
func (ch *ConsistentHashing) rebuild(n uint64) error {
	ch.mu.Lock()
	weights := map[string]uint64{}
	addrs := map[string]string{}
	for _, m := range ch.members {
		if m.Online && m.Weight > 0 {
			weights[m.Name], addrs[m.Name] = m.Weight, m.Addr
		}
	}
	ch.mu.Unlock()
	return ch.f.apply(n, weights, addrs)
}

// Lookup returns the server owning hash h.
func (ch *ConsistentHashing) Lookup(h uint64) (Server, error) {
	name, addr, _, err := ch.f.lookup(h)
	return Server{Name: name, Addr: addr}, err
}

// LookupString returns the server owning key.
func (ch *ConsistentHashing) LookupString(key string) (Server, error) {
	return ch.Lookup(HashString(key))
}

// LookupObject returns the server owning v, by the hash of its
// deterministic encoding (HashObject).
func (ch *ConsistentHashing) LookupObject(v any) (Server, error) {
	h, err := HashObject(v)
	if err != nil {
		return Server{}, err
	}
	return ch.Lookup(h)
}

// Ring returns the current ring and the membership version it is at; a
// nil ring before the first.
func (ch *ConsistentHashing) Ring() (*Ring, uint64) { return ch.f.ring() }

// SetWeight sets the weight of the member called server in the group,
// through the log: every client's ring follows once it applies.
func (ch *ConsistentHashing) SetWeight(ctx context.Context, server string, weight uint64) error {
	ch.mu.Lock()
	id, found, err := membership.MemberID(0), false, ch.err
	for _, m := range ch.members {
		if m.Name == server {
			id, found = m.ID, true
		}
	}
	ch.mu.Unlock()
	switch {
	case err != nil:
		return fmt.Errorf("%w: %w", ErrStopped, err)
	case !found:
		return fmt.Errorf("chash: no member %q in group %q", server, ch.cfg.Group)
	}
	return ch.obs.SetWeight(ctx, ch.cfg.Group, id, weight)
}

// WatchServerRangeChanged calls fn with every change of the hash ranges
// server owns, in version order: first its ranges in the current ring,
// as gained from the empty ring, then what each new version gains and
// loses for it. Replaying the changes from the empty ring gives its
// ranges in the current ring. fn runs on the goroutine that follows the
// group: a slow fn delays this client's ring, never the group. The
// returned func stops the calls.
func (ch *ConsistentHashing) WatchServerRangeChanged(server string, fn func(RangeChange)) (stop func()) {
	return ch.f.watchServer(server, fn)
}

// WatchRing calls fn with every version of the ring, as
// WatchServerRangeChanged does for one server.
func (ch *ConsistentHashing) WatchRing(fn func(RingChange)) (stop func()) {
	return ch.f.watchRing(fn)
}

// Close stops following the group; lookups go on answering from the last
// ring.
func (ch *ConsistentHashing) Close() {
	ch.cancel()
	<-ch.done
}
