package sm

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"iter"
	"time"

	"github.com/bifrost-go/bifrost/rpc"
)

// Errors of subscriptions.
var (
	// ErrCompacted is wrapped by the *CompactedError a subscriber gets
	// when events it had not seen fell out of the retention window.
	ErrCompacted = errors.New("sm: events compacted")
	// ErrSubscriptionGone: the subscription ended (its session expired,
	// or it was ended) while the subscriber still read it.
	ErrSubscriptionGone = errors.New("sm: subscription gone")
)

// CompactedError tells a subscriber that fell behind the window where to
// resync: read the state (it is at Index or later), then subscribe anew.
type CompactedError struct{ Index uint64 }

func (e *CompactedError) Error() string {
	return fmt.Sprintf("%v: resync from index %d", ErrCompacted, e.Index)
}

// Unwrap makes errors.Is(err, ErrCompacted) hold.
func (e *CompactedError) Unwrap() error { return ErrCompacted }

// Subscription is a kind of event a machine notifies, with a parameter
// K that subscribers choose (struct{} for none): the seed's
// "def sub on_key_inserted(k) -> V". Its key includes the machine and the
// function, so two subscriptions never collide.
type Subscription[K, E any] struct {
	fn
	key rpc.Codec[K]
	ev  rpc.Codec[E]
}

// NewSubscription returns the subscription called name of machine.
func NewSubscription[K, E any](machine, name string) *Subscription[K, E] {
	return &Subscription[K, E]{fn: newFn(machine, name), key: rpc.NewCodec[K](), ev: rpc.NewCodec[E]()}
}

// Notify records, from inside a command of s's machine, the event ev for
// the subscribers of s with parameter key. Every replica records it;
// subscribers receive it once the command applied, in log order. A
// command that fails notifies nothing.
func Notify[K, E any](a *Apply, s *Subscription[K, E], key K, ev E) error {
	if a.machine != s.machineID {
		return fmt.Errorf("sm: %s notified from another machine's command", s)
	}
	k, err := s.key.Append(nil, key)
	if err != nil {
		return err
	}
	p, err := s.ev.Append(nil, ev)
	if err != nil {
		return err
	}
	a.events = append(a.events, event{key: subKey{s.machineID, s.functionID, string(k)}, payload: p})
	return nil
}

// Event is one notification a subscriber receives.
type Event[E any] struct {
	ID    EventID
	Value E
}

// Stream is an open subscription: its events, in order, each once,
// from its registration on (or after the id OpenAfter named), across
// leader changes. Next is not safe for
// concurrent use; Close may be called from another goroutine.
type Stream[E any] struct {
	c       *Client
	id      uint64
	machine uint64
	fn      uint64
	ev      rpc.Codec[E]
	in      *inbox
}

// Open registers a subscription to s with parameter key and returns once
// every replica will record its events.
func (s *Subscription[K, E]) Open(ctx context.Context, c *Client, key K) (*Stream[E], error) {
	st, _, err := s.open(ctx, c, key, subscribePayload{})
	return st, err
}

// OpenAfter opens a stream of s with parameter key that resumes right
// after the event after: its events are those after that id, in order,
// each once, whichever client or member saw the earlier ones and however
// the leader changed since. s must be retained by its machine (Retain);
// an after not yet in the log is refused (a *RemoteError). If the window
// no longer holds the events after it, the stream's first Next fails
// with a *CompactedError. EventID{Index: i, Sub: math.MaxUint64} names
// the last event of entry i, whatever it was, and so resumes after the
// commands up to index i.
func (s *Subscription[K, E]) OpenAfter(ctx context.Context, c *Client, key K, after EventID) (*Stream[E], error) {
	st, _, err := s.open(ctx, c, key, subscribePayload{resume: true, after: after})
	return st, err
}

func (s *Subscription[K, E]) open(ctx context.Context, c *Client, key K, p subscribePayload) (*Stream[E], []byte, error) {
	k, err := s.key.Append(nil, key)
	if err != nil {
		return nil, nil, fmt.Errorf("sm: %s: encode key: %w", s, err)
	}
	p.key = k
	rep, err := c.framework(ctx, opSubscribe, s.machineID, s.functionID, p.appendBinary(nil))
	if err != nil {
		return nil, nil, err
	}
	data, err := result(rep)
	if err != nil {
		return nil, nil, err
	}
	id, n := binary.Uvarint(data)
	if n <= 0 {
		return nil, nil, fmt.Errorf("%w: subscription id", ErrCorrupt)
	}
	st := &Stream[E]{c: c, id: id, machine: s.machineID, fn: s.functionID, ev: s.ev}
	from := EventID{Index: id}
	if p.resume {
		from = p.after
	}
	st.in = c.lis.add(id, from)
	return st, data[n:], nil
}

// ReadAndOpen reads q with req and opens a subscription to s with
// parameter key in one command: the answer is the state exactly at the
// index where the stream starts, so the stream's first event is the
// first change after what the answer shows, and nothing falls between.
// q may be a query of any machine of the group.
func ReadAndOpen[Req, Resp, K, E any](ctx context.Context, c *Client, q *Query[Req, Resp], req Req,
	s *Subscription[K, E], key K) (Resp, *Stream[E], error) {
	var zero Resp
	payload, err := q.req.Append(nil, req)
	if err != nil {
		return zero, nil, fmt.Errorf("sm: %s: encode request: %w", q, err)
	}
	st, a, err := s.open(ctx, c, key, subscribePayload{queryMachine: q.machineID, queryFn: q.functionID, query: payload})
	if err != nil {
		return zero, nil, err
	}
	if len(a) == 0 {
		st.Close(ctx)
		return zero, nil, fmt.Errorf("%w: no query answer", ErrCorrupt)
	}
	data, err := result(parsedReply{status: a[0], data: a[1:]})
	if err == nil {
		var v Resp
		if v, err = q.resp.Decode(data); err == nil {
			return v, st, nil
		}
	}
	st.Close(ctx)
	return zero, nil, err
}

// Index is the log index of the registration: the stream holds the
// events of the commands after it (after the event it resumed from, for
// OpenAfter).
func (st *Stream[E]) Index() uint64 { return st.id }

// Next waits for the next event. It fails with ctx's error, a
// *CompactedError if the stream fell behind the retention window,
// ErrSubscriptionGone, or ErrClosed once the stream or its client
// closed.
func (st *Stream[E]) Next(ctx context.Context) (Event[E], error) {
	for {
		e, err, ok := st.c.lis.take(st.in)
		if ok {
			v, err := st.ev.Decode(e.payload)
			return Event[E]{ID: e.id, Value: v}, err
		}
		if err != nil {
			return Event[E]{}, err
		}
		select {
		case <-st.in.ready:
		case <-ctx.Done():
			return Event[E]{}, ctx.Err()
		}
	}
}

// Close ends the subscription on the group, best effort, even once ctx
// ended. A Next waiting returns ErrClosed.
func (st *Stream[E]) Close(ctx context.Context) {
	if st.c.lis.remove(st.id) {
		st.c.unsubscribe(ctx, st.machine, st.fn, st.id)
	}
}

// Subscribe opens a subscription to s with parameter key and yields its
// events (see Stream) until ctx ends, the stream fails, or the loop
// breaks; the subscription is then closed.
func (s *Subscription[K, E]) Subscribe(ctx context.Context, c *Client, key K) iter.Seq2[Event[E], error] {
	return func(yield func(Event[E], error) bool) {
		st, err := s.Open(ctx, c, key)
		if err != nil {
			yield(Event[E]{}, err)
			return
		}
		defer st.Close(ctx)
		for {
			ev, err := st.Next(ctx)
			if !yield(ev, err) || err != nil {
				return
			}
		}
	}
}

// Watch calls fn with each event of the subscription, as Subscribe
// yields them, until ctx ends (nil) or the subscription fails. This is
// the seed's callback: a slow fn holds back this subscription alone.
func (s *Subscription[K, E]) Watch(ctx context.Context, c *Client, key K, fn func(Event[E])) error {
	for ev, err := range s.Subscribe(ctx, c, key) {
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		fn(ev)
	}
	return nil
}

// unsubscribe ends a subscription, best effort, even once ctx ended.
func (c *Client) unsubscribe(ctx context.Context, machine, fn, id uint64) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	c.framework(ctx, opUnsubscribe, machine, fn, binary.AppendUvarint(nil, id))
}
