package sm

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// A client listens for the events of all its streams with one goroutine
// and one poll to the leader at a time, which names every stream that
// has room and the last event it got. The leader answers as soon as any
// of them has events, so it holds one waiting call per listening client,
// however many subscriptions the client has. Each stream queues what
// arrived for it; a stream whose reader does not keep up stops being
// asked for once its queue is full, and so falls behind alone, in the
// group's retention window, while the others go on.

// ErrClosed is the error of a stream, or of a client's calls, after it
// was closed.
var ErrClosed = errors.New("sm: closed")

// Bounds of a stream's queue: at maxQueued events it is left out of
// polls until its reader brings it down to resumeQueued.
const (
	maxQueued    = 1024
	resumeQueued = maxQueued / 2
)

// inbox is the client's side of one stream.
type inbox struct {
	after  EventID // the last event received
	queue  []event // received, not yet taken
	err    error   // the stream's end, once its queue is taken
	paused bool    // left out of polls until the queue drains
	ready  chan struct{}
}

// signal wakes the stream's reader, if it waits.
func (in *inbox) signal() {
	select {
	case in.ready <- struct{}{}:
	default:
	}
}

// listener polls the leader for the events of a client's streams.
type listener struct {
	c *Client

	mu      sync.Mutex // protects the following
	streams map[uint64]*inbox
	running bool               // the poll loop runs
	cancel  context.CancelFunc // ends the poll in flight, so the next names the streams as they are
	closed  bool
	quit    context.Context // ends at close, and with it every call of the loop
	stop    context.CancelFunc
	wake    chan struct{} // capacity 1: a stream has room again, or the client closed
	done    chan struct{} // closed when the poll loop ends; replaced as it starts
}

func newListener(c *Client) *listener {
	l := &listener{c: c, streams: map[uint64]*inbox{}, wake: make(chan struct{}, 1), done: make(chan struct{})}
	l.quit, l.stop = context.WithCancel(context.Background())
	close(l.done)
	return l
}

// add starts listening for subscription id, for the events after the
// id from.
func (l *listener) add(id uint64, from EventID) *inbox {
	in := &inbox{after: from, ready: make(chan struct{}, 1)}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		in.err = ErrClosed
		return in
	}
	l.streams[id] = in
	if !l.running {
		l.running = true
		l.done = make(chan struct{})
		go l.run(l.done)
	}
	l.restartPollLocked()
	return in
}

// remove stops listening for id and reports whether it was listened to.
func (l *listener) remove(id uint64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	in := l.streams[id]
	if in == nil {
		return false
	}
	delete(l.streams, id)
	in.queue, in.err = nil, ErrClosed
	in.signal()
	if len(l.streams) == 0 {
		l.restartPollLocked() // the loop ends rather than wait for the poll
	}
	return true
}

// take returns the next event of in, or its end, or neither.
func (l *listener) take(in *inbox) (e event, err error, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(in.queue) == 0 {
		return event{}, in.err, false
	}
	e, in.queue[0] = in.queue[0], event{}
	in.queue = in.queue[1:]
	if in.paused && len(in.queue) <= resumeQueued {
		in.paused = false
		l.restartPollLocked()
	}
	return e, nil, true
}

// restartPollLocked ends the poll in flight, so that the next one asks
// for a stream it left out; or wakes the loop if it waits for room.
func (l *listener) restartPollLocked() {
	if l.cancel != nil {
		l.cancel()
	}
	l.poke()
}

func (l *listener) poke() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// close ends every stream and the loop's calls, and waits for the poll
// loop to end, or for ctx to.
func (l *listener) close(ctx context.Context) error {
	l.mu.Lock()
	l.closed = true
	l.stop()
	for id, in := range l.streams {
		delete(l.streams, id)
		in.queue, in.err = nil, ErrClosed
		in.signal()
	}
	l.restartPollLocked()
	done := l.done
	l.mu.Unlock()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// run polls until no stream is left, keeping the session alive.
func (l *listener) run(done chan struct{}) {
	defer close(done)
	for {
		ctx, cancel, subs, ok := l.next()
		if !ok {
			return
		}
		if len(subs) == 0 {
			l.idle(ctx)
		} else if rep, err := l.c.call(ctx, l.c.m.poll, appendPoll(nil, subs), false); err == nil {
			l.deliver(subs, rep)
		}
		cancel()
		l.keepAlive()
	}
}

// next returns the streams to poll for, none if every stream is full,
// and the poll's context; or false once there is no stream left.
func (l *listener) next() (context.Context, context.CancelFunc, []pollSub, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.streams) == 0 || l.closed {
		l.running = false
		l.cancel = nil
		return nil, nil, nil, false
	}
	// A poll ends by the time the session needs renewing, however long
	// the leader would let it wait.
	ctx, cancel := context.WithTimeout(l.quit, l.c.keepAliveEvery())
	l.cancel = cancel
	var subs []pollSub
	for id, in := range l.streams {
		if !in.paused && in.err == nil {
			subs = append(subs, pollSub{id: id, after: in.after})
		}
	}
	return ctx, cancel, subs, true
}

// idle waits, with every stream full, for one to have room again, or for
// the poll's context to end, when the session needs renewing.
func (l *listener) idle(ctx context.Context) {
	select {
	case <-l.wake:
	case <-ctx.Done():
	}
}

// deliver hands a poll's answer to the streams it asked for.
func (l *listener) deliver(subs []pollSub, rep parsedReply) {
	data, err := result(rep)
	var res []subEvents
	if err == nil {
		res, err = decodePollAnswer(data)
	}
	if err == nil && len(res) != len(subs) {
		err = fmt.Errorf("%w: poll answer for %d subscriptions, %d asked", ErrCorrupt, len(res), len(subs))
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, p := range subs {
		in := l.streams[p.id]
		if in == nil {
			continue // closed meanwhile
		}
		switch {
		case err != nil:
			in.err = err
		case res[i].status == stCompacted:
			in.err = &CompactedError{Index: rep.index}
		case res[i].status == stNoSubscription:
			in.err = ErrSubscriptionGone
		}
		if err == nil {
			for _, e := range res[i].events {
				if e.id.Compare(in.after) > 0 {
					in.queue = append(in.queue, e)
					in.after = e.id
				}
			}
		}
		in.paused = len(in.queue) >= maxQueued
		if len(in.queue) > 0 || in.err != nil {
			in.signal()
		}
	}
}

// keepAlive renews the client's session if it sent nothing for a while:
// a client that only listens still needs its session, which holds its
// subscriptions.
func (l *listener) keepAlive() {
	if !l.c.quietFor(l.c.keepAliveEvery()) {
		return
	}
	ctx, cancel := context.WithTimeout(l.quit, l.c.keepAliveEvery())
	defer cancel()
	l.c.framework(ctx, opKeepAlive, 0, 0, nil)
}
