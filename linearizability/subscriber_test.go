package linearizability

import (
	"context"
	"errors"
	"fmt"
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
}

// subscriber follows the changes of the Value, of the Number or of a
// Map key through a stream that ReadAndOpen opens at the index of the
// read it answers (for a Map key, its inserts, beside the stream of its
// removals opened just before), on an sm.Client and rpc connections of
// its own, and records every event.
// Its events are checked against the history (checkStream) once the
// cluster healed and it caught up with a final linearizable read.
type subscriber struct {
	idx  int    // its index among the clients, after the clients'
	key  string // valueKey, numberKey or a Map key
	h    *History
	pool *rpc.Pool
	sm   *sm.Client

	mu     sync.Mutex // protects the following
	opened bool
	start  Output // the state the stream starts from
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
	prev := start
	for i := range events {
		if !events[i].removed {
			events[i].old = prev
		}
		prev = events[i].new
	}
	return events
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

// now returns what the subscriber recorded so far, in log order.
func (s *subscriber) now() (opened bool, start Output, events []change, err error) {
	events = s.ordered()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opened, s.start, events, s.err
}

// last returns the state the stream has reached.
func (s *subscriber) last() (Output, bool) {
	opened, start, events, _ := s.now()
	if len(events) > 0 {
		return events[len(events)-1].new, opened
	}
	return start, opened
}

// catchUp reads the object linearizably, on a healed cluster, and waits
// until the stream reaches that state, within limit of fake time. It
// returns the state read.
func (s *subscriber) catchUp(limit time.Duration) (Output, error) {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	kind := OpMapGet
	switch s.key {
	case valueKey:
		kind = OpValueGet
	case numberKey:
		kind = OpNumberGet
	}
	final, err := perform(ctx, s.sm, sm.Linearizable, Input{Kind: kind, Key: s.key})
	if err != nil {
		return Output{}, fmt.Errorf("subscriber %d: final read: %w", s.idx, err)
	}
	for {
		if got, opened := s.last(); opened && got == final {
			return final, nil
		}
		if _, _, _, err := s.now(); err != nil {
			return final, fmt.Errorf("subscriber %d: the stream failed: %w", s.idx, err)
		}
		if sleep(ctx, tickInterval) != nil {
			got, opened := s.last()
			return final, fmt.Errorf("subscriber %d: the stream (open: %t) reached %+v, not the final state %+v, within %v",
				s.idx, opened, got, final, limit)
		}
	}
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
