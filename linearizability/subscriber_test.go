package linearizability

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/bifrost-go/bifrost/rpc"
	"github.com/bifrost-go/bifrost/sm"
)

// change is one event of a subscriber's stream, as the state before and
// after, and when it arrived on the history's logical clock.
type change struct {
	old, new Output
	at       int64
	// id and removed place the event of a Map key among those of its
	// two streams, inserts and removals.
	id      sm.EventID
	removed bool
	// key is the Map key of an event of the stream of every key.
	key string
}

// everyKey names the subscriber to every key of the Map (Changed),
// whose stream is split and checked key by key.
const everyKey = "every key"

// subscriber follows the changes of the Value, of the Number, of a Map
// key or of every key of the Map (everyKey, with ReadAllAndOpen) through
// a stream that ReadAndOpen opens at the index of the read it answers
// (for a Map key, its inserts, beside the stream of its removals opened
// just before), on an sm.Client and rpc connections of its own, and
// records every event.
// Its events are checked against the history (checkStream) once the
// cluster healed and it caught up with a final linearizable read.
type subscriber struct {
	idx  int    // its index among the clients, after the clients'
	key  string // valueKey, numberKey, a Map key or everyKey
	h    *History
	pool *rpc.Pool
	sm   *sm.Client

	mu     sync.Mutex // protects the following
	opened bool
	start  Output // the state the stream starts from
	// startAll is, for everyKey, each present key's state at open.
	startAll map[string]Output
	// call and ret bracket the ReadAndOpen that opened the stream.
	call, ret int64
	from      uint64 // the index the inserts' stream of a Map key starts after
	events    []change
	err       error // how the stream failed, if it did
}

// newSubscriber returns a subscriber to key whose client cfg describes,
// with a pool that dials with dial.
func newSubscriber(dial func(context.Context, string) (net.Conn, error), cfg sm.ClientConfig, h *History,
	idx int, key string) (*subscriber, error) {
	s := &subscriber{idx: idx, key: key, h: h}
	pool, err := rpc.NewPool(rpc.ClientConfig{Dial: dial})
	if err != nil {
		return nil, err
	}
	cfg.Pool, s.pool = pool, pool
	s.sm, err = sm.NewClient(cfg)
	return s, err
}

// run opens the stream, trying again until it opens, and records its
// events until ctx ends or the stream fails.
func (s *subscriber) run(ctx context.Context) {
	for ctx.Err() == nil {
		call := s.h.Now()
		var err error
		switch s.key {
		case valueKey:
			err = s.follow(ctx, call, s.openValue)
		case numberKey:
			err = s.follow(ctx, call, s.openNumber)
		case everyKey:
			err = s.followEvery(ctx, call)
		default:
			err = s.followKey(ctx, call)
		}
		if err == nil || ctx.Err() != nil {
			return
		}
		if s.failed(err) {
			return
		}
	}
}

// failed records err if the stream had opened, which ends the
// subscriber: a stream that breaks is a failure, one that did not open
// is tried again.
func (s *subscriber) failed(err error) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.opened {
		s.err = err
	}
	return s.opened
}

// next is one event of an open stream, converted.
type next func(context.Context) (change, error)

// follow opens a stream with open and records its events.
func (s *subscriber) follow(ctx context.Context, call int64, open func(context.Context) (Output, next, func(), error)) error {
	start, nextEvent, closeStream, err := open(ctx)
	if err != nil {
		return err
	}
	defer closeStream()
	s.mu.Lock()
	s.opened, s.start, s.call, s.ret = true, start, call, s.h.Now()
	s.mu.Unlock()
	for {
		ch, err := nextEvent(ctx)
		if err != nil {
			return err
		}
		s.record(ch)
	}
}

// record notes that ch arrived.
func (s *subscriber) record(ch change) {
	ch.at = s.h.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, ch)
}

// followKey follows a Map key: it opens the stream of its removals,
// then reads it and opens the stream of its inserts at that read's
// index, and records the events of both until one fails. Merged in
// event-id (log) order, the removals after that index and the inserts
// are every change of the key.
func (s *subscriber) followKey(ctx context.Context, call int64) error {
	removed, err := testMap.KeyRemoved().Open(ctx, s.sm, s.key)
	if err != nil {
		return err
	}
	defer removed.Close(context.Background())
	v, ok, inserted, err := testMap.ReadKeyAndOpen(ctx, s.sm, s.key)
	if err != nil {
		return err
	}
	defer inserted.Close(context.Background())
	s.mu.Lock()
	s.opened, s.start, s.call, s.ret, s.from = true, Output{Value: v, Found: ok}, call, s.h.Now(), inserted.Index()
	s.mu.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, 2) // one from each reader, which then ends without waiting
	var wg sync.WaitGroup
	read := func(st *sm.Stream[string], wasRemoved bool) {
		for {
			ev, err := st.Next(ctx)
			if err != nil {
				errs <- err
				return
			}
			ch := change{id: ev.ID, removed: wasRemoved, new: Output{Value: ev.Value, Found: true}}
			if wasRemoved {
				ch.old, ch.new = ch.new, Output{}
			}
			s.record(ch)
		}
	}
	wg.Go(func() { read(removed, true) })
	wg.Go(func() { read(inserted, false) })
	err = <-errs
	cancel()
	wg.Wait()
	return err
}

// followEvery follows every key of the Map: it reads all of it and
// opens the stream of every change at that read's index, and records
// the events, each as the new state of its key (a removal's old state
// is the value it carries; an insert's is filled in by chain).
func (s *subscriber) followEvery(ctx context.Context, call int64) error {
	pairs, st, err := testMap.ReadAllAndOpen(ctx, s.sm)
	if err != nil {
		return err
	}
	defer st.Close(context.Background())
	start := map[string]Output{}
	for _, p := range pairs {
		start[p.K] = Output{Value: p.V, Found: true}
	}
	s.mu.Lock()
	s.opened, s.startAll, s.call, s.ret = true, start, call, s.h.Now()
	s.mu.Unlock()
	for {
		ev, err := st.Next(ctx)
		if err != nil {
			return err
		}
		s.record(mapChange(ev))
	}
}

// mapChange converts an event of the stream of every key.
func mapChange(ev sm.Event[sm.MapChange[string, string]]) change {
	ch := change{id: ev.ID, key: ev.Value.K, removed: ev.Value.Removed, new: Output{Value: ev.Value.V, Found: true}}
	if ch.removed {
		ch.old, ch.new = ch.new, Output{}
	}
	return ch
}

// chain fills in the old state of the inserts among a Map key's events,
// in log order, from start: the state the changes before each left.
func chain(start Output, events []change) []change {
	prev := start
	for i := range events {
		if !events[i].removed {
			events[i].old = prev
		}
		prev = events[i].new
	}
	return events
}

// splitByKey turns the stream of every key into one stream per key
// (sorted), each with the key's events in the order they came: a key's
// first event changes its state at open (absent if start lacks it), and
// each next one the state the one before left. final holds each key's
// final state (absent if it lacks it); the keys are those of start,
// events and final.
func splitByKey(start map[string]Output, call, ret int64, events []change, final map[string]Output) []stream {
	byKey := map[string][]change{}
	for k := range start {
		byKey[k] = nil
	}
	for k := range final {
		byKey[k] = nil
	}
	for _, e := range events {
		byKey[e.key] = append(byKey[e.key], e)
	}
	var out []stream
	for _, k := range slices.Sorted(maps.Keys(byKey)) {
		out = append(out, stream{key: k, split: true, start: start[k], call: call, ret: ret,
			events: chain(start[k], byKey[k]), final: final[k]})
	}
	return out
}

// ordered returns the events as changes in log order. Those of a Map
// key are merged from its two streams by event id, the removals from
// before the inserts' stream opened left out, and an insert's old state
// is the one the changes before it left.
func (s *subscriber) ordered() []change {
	s.mu.Lock()
	events, start, from := slices.Clone(s.events), s.start, s.from
	s.mu.Unlock()
	if s.key == valueKey || s.key == numberKey {
		return events
	}
	slices.SortFunc(events, func(a, b change) int { return a.id.Compare(b.id) })
	events = slices.DeleteFunc(events, func(e change) bool { return e.id.Index <= from })
	return chain(start, events)
}

func (s *subscriber) openValue(ctx context.Context) (Output, next, func(), error) {
	v, st, err := testValue.ReadAndOpen(ctx, s.sm)
	if err != nil {
		return Output{}, nil, nil, err
	}
	return Output{Value: v}, func(ctx context.Context) (change, error) {
		ev, err := st.Next(ctx)
		return change{old: Output{Value: ev.Value.Old}, new: Output{Value: ev.Value.New}}, err
	}, func() { st.Close(context.Background()) }, nil
}

func (s *subscriber) openNumber(ctx context.Context) (Output, next, func(), error) {
	n, st, err := testNumber.ReadAndOpen(ctx, s.sm)
	if err != nil {
		return Output{}, nil, nil, err
	}
	return Output{N: n}, func(ctx context.Context) (change, error) {
		ev, err := st.Next(ctx)
		return change{old: Output{N: ev.Value.Old}, new: Output{N: ev.Value.New}}, err
	}, func() { st.Close(context.Background()) }, nil
}

// streams returns what the subscriber recorded so far, as the streams
// of its objects (for everyKey, one per key), each ending at its final
// state in final.
func (s *subscriber) streams(final map[string]Output) []stream {
	if s.key == everyKey {
		s.mu.Lock()
		start, call, ret, events := maps.Clone(s.startAll), s.call, s.ret, slices.Clone(s.events)
		s.mu.Unlock()
		return splitByKey(start, call, ret, events, final)
	}
	events := s.ordered()
	s.mu.Lock()
	defer s.mu.Unlock()
	return []stream{{key: s.key, start: s.start, call: s.call, ret: s.ret, events: events, final: final[s.key]}}
}

// reached returns the state each of the subscriber's objects has
// reached on its stream, whether the stream opened, and how it failed.
func (s *subscriber) reached() (map[string]Output, bool, error) {
	got := map[string]Output{}
	for _, st := range s.streams(nil) {
		got[st.key] = st.last()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return got, s.opened, s.err
}

// last returns the state the stream reached.
func (st stream) last() Output {
	if len(st.events) > 0 {
		return st.events[len(st.events)-1].new
	}
	return st.start
}

// catchUp reads the subscriber's objects linearizably, on a healed
// cluster, and waits until the stream reaches that state, within limit
// of fake time. It returns the states read, by object.
func (s *subscriber) catchUp(limit time.Duration) (map[string]Output, error) {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	final, err := s.finalRead(ctx)
	if err != nil {
		return nil, fmt.Errorf("subscriber %d: final read: %w", s.idx, err)
	}
	for {
		got, opened, err := s.reached()
		if opened && sameStates(got, final) {
			return final, nil
		}
		if err != nil {
			return final, fmt.Errorf("subscriber %d: the stream failed: %w", s.idx, err)
		}
		if sleep(ctx, tickInterval) != nil {
			return final, fmt.Errorf("subscriber %d: the stream (open: %t) reached %+v, not the final state %+v, within %v",
				s.idx, opened, got, final, limit)
		}
	}
}

// finalRead reads each of the subscriber's objects linearizably.
func (s *subscriber) finalRead(ctx context.Context) (map[string]Output, error) {
	final := map[string]Output{}
	for _, in := range s.finalReads() {
		out, err := perform(ctx, s.sm, sm.Linearizable, in)
		if err != nil {
			return nil, err
		}
		final[in.Key] = out
	}
	return final, nil
}

func (s *subscriber) finalReads() []Input {
	switch s.key {
	case valueKey:
		return []Input{{Kind: OpValueGet, Key: valueKey}}
	case numberKey:
		return []Input{{Kind: OpNumberGet, Key: numberKey}}
	case everyKey:
		return s.everyKeyReads()
	}
	return []Input{{Kind: OpMapGet, Key: s.key}}
}

// everyKeyReads are the gets of every Map key the history or the
// stream names.
func (s *subscriber) everyKeyReads() []Input {
	keys := map[string]bool{}
	for _, op := range s.h.Operations() {
		if op.Input.Key != valueKey && op.Input.Key != numberKey {
			keys[op.Input.Key] = true
		}
	}
	for _, st := range s.streams(nil) {
		keys[st.key] = true
	}
	var reads []Input
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		reads = append(reads, Input{Kind: OpMapGet, Key: k})
	}
	return reads
}

// sameStates reports whether a and b hold the same state of every
// object either names, an object one lacks being in its zero state
// (for a Map key, absent).
func sameStates(a, b map[string]Output) bool {
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	for k, v := range b {
		if a[k] != v {
			return false
		}
	}
	return true
}

// close ends the subscriber's session and connections.
func (s *subscriber) close(ctx context.Context) error {
	err := s.sm.Close(ctx)
	s.pool.Close()
	if errors.Is(err, sm.ErrClosed) {
		return nil
	}
	return err
}
