package sm

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bifrost-go/bifrost/bind"
	"github.com/bifrost-go/bifrost/raft"
)

// HostConfig configures a Host. The zero value of every field means its
// default.
type HostConfig struct {
	// SessionTimeout is how long, in the leader's time stamped into the
	// log, a client session lives without a command. An expired client
	// gets ErrSessionExpired for a command it sends after that. Default
	// 60s.
	SessionTimeout time.Duration
	// RetainEvents is how many recent events every replica keeps at
	// least for subscribers (at most a quarter more; the same on every
	// member): one that falls further behind is told to resync
	// (ErrCompacted). Default 10000.
	RetainEvents int
	// RetainBytes bounds the same window by size: it keeps at most about
	// this many bytes of events (payloads and keys; a quarter more before
	// it trims), however few events that is. It keeps a map of large
	// values from holding RetainEvents of them. The same on every
	// member. Default 64 MiB.
	RetainBytes int
	// Logger receives what the host has to say. Default: discard.
	Logger *slog.Logger
}

// window is the event window's limit.
func (cfg HostConfig) window() windowLimit {
	return windowLimit{events: cfg.RetainEvents, bytes: cfg.RetainBytes}
}

// Defaults of HostConfig.
const (
	DefaultSessionTimeout = 60 * time.Second
	DefaultRetainEvents   = 10000
	DefaultRetainBytes    = 64 << 20
)

// Host carries the state machines of one raft group: it is the group's
// node.StateMachine and node.Snapshotter. Commands apply one at a time in
// log order, under the write lock; queries run under the read lock, so
// they run concurrently with each other on every replica but never with
// an apply. The host also keeps the framework's own replicated state,
// client sessions, in the log's order and in its snapshots.
type Host struct {
	cfg      HostConfig
	machines map[uint64]*Machine
	stats    hostCounters // stats.go

	mu       sync.RWMutex // protects the following
	applied  uint64       // the index of the last entry applied or restored
	clock    int64        // the latest leader time applied, Unix nanoseconds
	sessions sessions
	subs     subscriptions
	wake     chan struct{} // closed and replaced when events are recorded

	// leading reports whether the member this host runs on leads its
	// group; Serve sets it. Apply binds it for handlers (Leading).
	leading atomic.Pointer[func() bool]
}

// Leading is bound, in the context of an Apply, to whether the member
// applying the command led the group as it applied it. Every replica
// applies the same commands to the same state, and only the leader
// delivers events; a handler may read it to steer effects outside the
// replicated state (a timer the leader alone keeps, say), never the
// state itself, or replicas diverge.
var Leading = bind.New(false)

var (
	leadingCtx   = Leading.Bind(context.Background(), true)
	followingCtx = context.Background()
)

func (h *Host) applyContext() context.Context {
	if f := h.leading.Load(); f != nil && (*f)() {
		return leadingCtx
	}
	return followingCtx
}

// NewHost returns a host carrying machines. A machine whose name repeats
// another's or hashes into the framework's range, or whose functions
// were registered wrongly, is an error.
func NewHost(cfg HostConfig, machines ...*Machine) (*Host, error) {
	if cfg.SessionTimeout < 0 {
		return nil, fmt.Errorf("sm: negative session timeout")
	}
	if cfg.RetainEvents < 0 || cfg.RetainBytes < 0 {
		return nil, fmt.Errorf("sm: negative event retention")
	}
	cfg.SessionTimeout = cmp.Or(cfg.SessionTimeout, DefaultSessionTimeout)
	cfg.RetainEvents = cmp.Or(cfg.RetainEvents, DefaultRetainEvents)
	cfg.RetainBytes = cmp.Or(cfg.RetainBytes, DefaultRetainBytes)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	h := &Host{cfg: cfg, machines: map[uint64]*Machine{}, sessions: newSessions(),
		subs: newSubscriptions(cfg.window()), wake: make(chan struct{}), stats: newHostCounters()}
	for _, m := range machines {
		if m.err != nil {
			return nil, m.err
		}
		if _, dup := h.machines[m.id]; dup {
			return nil, fmt.Errorf("%w: machine %q", ErrDuplicate, m.name)
		}
		h.machines[m.id] = m
	}
	return h, nil
}

// State returns the state of the machine called name that the host
// carries, as given to NewMachine: for code on the same member that
// works beside the machine (membership's failure detector reads the
// members it must watch), never to change it outside a command.
func (h *Host) State(name string) (Snapshotter, bool) {
	m := h.machines[machineID(name)]
	if m == nil || m.name != name {
		return nil, false
	}
	return m.state, true
}

// Applied returns the index of the last log entry the host applied.
func (h *Host) Applied() uint64 {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.applied
}

// Apply applies one committed entry (node.StateMachine). It returns the
// answer to the client that sent it.
func (h *Host) Apply(e raft.Entry) []byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.applied = e.Index
	if e.Type != raft.EntryNormal {
		return nil
	}
	ent, err := decodeEntry(e.Data)
	if err != nil {
		// Every replica refuses the same bytes the same way.
		h.cfg.Logger.Warn("sm: undecodable entry", "index", e.Index, "err", err)
		return answer(stFailed, []byte(err.Error()))
	}
	h.clock = max(h.clock, ent.time)
	h.subs.dropClients(h.sessions.expire(h.clock, h.cfg.SessionTimeout))
	switch ent.op {
	case opOpenSession:
		h.sessions.open(e.Index, h.clock)
		a := binary.AppendUvarint([]byte{stOK}, e.Index)
		return binary.AppendUvarint(a, uint64(h.cfg.SessionTimeout))
	case opCloseSession:
		h.sessions.close(ent.req.client)
		h.subs.dropClients([]uint64{ent.req.client})
		return answer(stOK, nil)
	case opSubmit:
		return h.run(e, ent) // a member's own command: no session
	}
	return h.applyCommand(e, ent)
}

// applyCommand runs a command once per session and sequence number: a
// retry gets the answer the first attempt got.
func (h *Host) applyCommand(e raft.Entry, ent entry) []byte {
	r := ent.req
	s := h.sessions.get(r.client)
	if s == nil {
		return answer(stSessionExpired, nil)
	}
	s.last = h.clock
	if a, done := s.answered(r.seq, r.low); done {
		return a
	}
	a := h.run(e, ent)
	s.record(r.seq, a)
	return a
}

// run calls the command's handler, or registers or ends a subscription.
func (h *Host) run(e raft.Entry, ent entry) []byte {
	r := ent.req
	switch ent.op {
	case opSubscribe:
		return h.subscribe(e.Index, r)
	case opUnsubscribe:
		id, _ := binary.Uvarint(r.payload)
		h.subs.remove(id)
		return answer(stOK, nil)
	case opKeepAlive:
		return answer(stOK, nil) // applyCommand renewed the session
	}
	m := h.machines[r.machine]
	if m == nil || m.cmds[r.fn] == nil {
		return answer(stNoFunction, nil)
	}
	ctx := h.applyContext()
	apply := &Apply{Index: e.Index, Term: e.Term, Time: time.Unix(0, h.clock), machine: r.machine, ctx: ctx}
	resp, err := m.cmds[r.fn](apply, r.payload)
	h.stats.commands.Inc()
	if err != nil {
		return answer(stFailed, []byte(err.Error()))
	}
	h.recordEvents(ctx, e.Index, apply.events)
	return answer(stOK, resp)
}

// subscribe registers a subscription, with the entry's index as its id,
// and runs the query the subscriber asked for with it, if any: the
// answer is the state exactly as the stream starts, the one after which
// its first event comes. The answer is the id, then the query's answer.
// A stream that resumes starts after the event it names instead, which
// only a retained subscription can do: the window holds all its events,
// listened to or not. Whether that event is still in the window is for
// the polls to tell, as the window moves on.
func (h *Host) subscribe(index uint64, r request) []byte {
	p, err := decodeSubscribe(r.payload)
	if err != nil {
		return answer(stFailed, []byte(err.Error()))
	}
	reg := &registration{id: index, client: r.client, key: subKey{r.machine, r.fn, string(p.key)}, from: EventID{Index: index}}
	if p.resume {
		switch {
		case !h.retains(reg.key):
			return answer(stFailed, []byte("sm: resume of a subscription that is not retained"))
		case p.after.Index >= index:
			return answer(stFailed, []byte(fmt.Sprintf("sm: resume after event %d-%d, not in the log yet", p.after.Index, p.after.Sub)))
		}
		reg.from = p.after
	}
	h.subs.add(reg)
	a := binary.AppendUvarint([]byte{stOK}, index)
	if p.queryMachine != 0 {
		a = append(a, h.runQuery(index, p.queryMachine, p.queryFn, p.query)...)
	}
	return a
}

// recordEvents keeps the events a command notified that someone listens
// to, and, on the leader (the only member that delivers), wakes the
// subscribers waiting. A member that leads by the time a subscriber asks
// finds the events recorded before it led; only later ones need a wake.
func (h *Host) recordEvents(ctx context.Context, index uint64, evs []event) {
	kept := false
	for i, ev := range evs {
		ev.id = EventID{Index: index, Sub: uint64(i)}
		kept = h.subs.record(ev, h.retains(ev.key)) || kept
	}
	if kept && Leading.Get(ctx) {
		close(h.wake)
		h.wake = make(chan struct{})
	}
}

// retains reports whether every event of k's subscription is recorded,
// listened to or not (Retain).
func (h *Host) retains(k subKey) bool {
	m := h.machines[k.machine]
	return m != nil && m.retained[k.fn]
}

// query runs a query under the read lock. minApplied, if not zero, is the
// index the state must have reached (a follower read).
func (h *Host) query(machine, fn, minApplied uint64, payload []byte) (applied uint64, a []byte) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.applied < minApplied {
		return h.applied, answer(stBehind, nil)
	}
	return h.applied, h.runQuery(h.applied, machine, fn, payload)
}

// runQuery runs a query handler; the caller holds the lock.
func (h *Host) runQuery(applied, machine, fn uint64, payload []byte) []byte {
	m := h.machines[machine]
	if m == nil || m.qrys[fn] == nil {
		return answer(stNoFunction, nil)
	}
	resp, err := m.qrys[fn](&Read{Applied: applied}, payload)
	if err != nil {
		return answer(stFailed, []byte(err.Error()))
	}
	return answer(stOK, resp)
}

// snapshotVersion is the first byte of a host snapshot. Version 1 lacks
// the event a registration starts after; Restore still reads it.
const snapshotVersion = 2

// Snapshot encodes the host's whole state (node.Snapshotter): the
// framework's clock and sessions, then every machine's snapshot, in id
// order.
func (h *Host) Snapshot() ([]byte, error) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	b := []byte{snapshotVersion}
	b = binary.AppendVarint(b, h.clock)
	b = h.sessions.appendBinary(b)
	b = h.subs.appendBinary(b)
	ids := slices.Sorted(maps.Keys(h.machines))
	b = binary.AppendUvarint(b, uint64(len(ids)))
	for _, id := range ids {
		data, err := h.machines[id].state.Snapshot()
		if err != nil {
			return nil, fmt.Errorf("sm: snapshot of machine %q: %w", h.machines[id].name, err)
		}
		b = appendBytes(binary.AppendUvarint(b, id), data)
	}
	return b, nil
}

// Restore replaces the host's state with a snapshot's (node.Snapshotter).
// A snapshot naming a machine this host does not carry is refused: its
// state would be lost. A failed restore may leave machines restored in
// part; the node stops on it.
func (h *Host) Restore(meta raft.SnapshotMeta, data []byte) error {
	if len(data) == 0 || data[0] != snapshotVersion && data[0] != 1 {
		return fmt.Errorf("%w: snapshot version", ErrCorrupt)
	}
	d := decoder{b: data[1:]}
	clock := d.varint()
	sess, err := decodeSessions(&d)
	if err != nil {
		return err
	}
	subs := decodeSubscriptions(&d, h.cfg.window(), data[0] != 1)
	states := map[uint64][]byte{}
	for n := d.count(); n > 0 && d.err == nil; n-- {
		id := d.uvarint()
		states[id] = d.bytes()
	}
	if err := d.done(); err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.restoreMachines(states); err != nil {
		return err
	}
	h.applied, h.clock, h.sessions, h.subs = meta.Index, clock, sess, subs
	close(h.wake) // the window changed under waiting subscribers
	h.wake = make(chan struct{})
	return nil
}

// ErrUnknownMachine reports a snapshot holding a machine the host lacks.
var ErrUnknownMachine = errors.New("sm: snapshot holds a machine this host does not carry")

func (h *Host) restoreMachines(states map[uint64][]byte) error {
	for id := range states {
		if h.machines[id] == nil {
			return fmt.Errorf("%w: id %d", ErrUnknownMachine, id)
		}
	}
	for id, m := range h.machines {
		if err := m.state.Restore(states[id]); err != nil {
			return fmt.Errorf("sm: restore machine %q: %w", m.name, err)
		}
	}
	return nil
}

// events answers a poll: the events of subs after the ids they name, or
// nil and a channel closed when more are recorded.
func (h *Host) events(subs []pollSub, most int) ([]byte, <-chan struct{}) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	res, found := h.subs.collect(subs, most, h.applied)
	if !found {
		return nil, h.wake
	}
	h.observeLag(res)
	return reply(stOK, h.applied, appendPollAnswer(nil, res)), nil
}
