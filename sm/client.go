package sm

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bifrost-go/bifrost/raft/node"
	"github.com/bifrost-go/bifrost/rpc"
)

// Errors of the client.
var (
	// ErrSessionExpired: the host forgot the client's session, after
	// HostConfig.SessionTimeout without a command. The command was not
	// applied in this attempt; if it had been sent before, an earlier
	// attempt may have applied it. The client opens a new session for
	// the next command.
	ErrSessionExpired = errors.New("sm: session expired")
	// ErrNoFunction: the replica carries no such machine or function.
	ErrNoFunction = errors.New("sm: no such machine or function")
	// ErrTooLarge: the command does not fit in one log entry.
	ErrTooLarge = errors.New("sm: command too large")
	// ErrOutcomeUnknown is node.ErrOutcomeUnknown: a command whose
	// context ended after it was sent may or may not apply.
	ErrOutcomeUnknown = node.ErrOutcomeUnknown
)

// RemoteError is an error a machine's handler returned, as its text.
type RemoteError struct{ Message string }

func (e *RemoteError) Error() string { return e.Message }

// ClientConfig says how a Client reaches a group.
type ClientConfig struct {
	// Group names the raft group whose host the client calls. Required.
	Group string
	// Servers are the rpc addresses of the group's members. Required;
	// the client learns the leader's from their answers.
	Servers []string
	// Pool dials the servers. Required.
	Pool *rpc.Pool
	// RetryBackoff is the first wait before trying again after a member
	// could not answer; it doubles up to MaxBackoff. Default 10ms.
	RetryBackoff time.Duration
	// MaxBackoff bounds the wait between attempts. Default 1s.
	MaxBackoff time.Duration
	// AttemptTimeout bounds one attempt at one member: a member that
	// has not answered by then (hung, or behind a partition that drops
	// packets without breaking the connection) is left for the next one.
	// A command's attempt may still apply there; the session makes the
	// retry safe. A subscriber's poll gets a second more, the most the
	// leader holds it. A call whose context can never end may be given
	// up to a quarter more (see attemptClock). Default 3s.
	AttemptTimeout time.Duration
}

// Client calls the machines of one group: commands go to the leader,
// found and followed by the client, and are retried with backoff until
// they apply, exactly once thanks to the client's session; queries go
// to the leader (linearizable and lease reads) or to any member
// (follower reads). It is safe for concurrent use.
type Client struct {
	cfg  ClientConfig
	m    methods
	lis  *listener
	last atomic.Pointer[lastConn]
	// attempts bounds the attempts of calls whose context cannot end
	attempts attemptClock

	mu       sync.Mutex // protects the following
	closed   bool
	session  uint64        // the client id of the session, 0 before one is open
	timeout  time.Duration // the session's timeout, as the host said
	lastSent time.Time     // when the client last sent a command
	opening  chan struct{}
	seq      uint64              // the last sequence number handed out
	inflight map[uint64]struct{} // sequence numbers waiting for answers
	low      uint64              // the lowest of them, when there are any
	target   string              // the member believed to lead
	seen     uint64              // the highest log index an answer spoke for
}

// NewClient returns a client of cfg.Group.
func NewClient(cfg ClientConfig) (*Client, error) {
	if cfg.Group == "" || len(cfg.Servers) == 0 || cfg.Pool == nil {
		return nil, errors.New("sm: client needs Group, Servers and Pool")
	}
	cfg.RetryBackoff = cmp.Or(cfg.RetryBackoff, 10*time.Millisecond)
	cfg.MaxBackoff = cmp.Or(cfg.MaxBackoff, time.Second)
	cfg.AttemptTimeout = cmp.Or(cfg.AttemptTimeout, 3*time.Second)
	if cfg.RetryBackoff < 0 || cfg.MaxBackoff < 0 || cfg.AttemptTimeout < 0 {
		return nil, errors.New("sm: negative client backoff or timeout")
	}
	cfg.Servers = slices.Clone(cfg.Servers)
	c := &Client{cfg: cfg, m: newMethods(cfg.Group), inflight: map[uint64]struct{}{},
		target: cfg.Servers[0], timeout: DefaultSessionTimeout}
	c.lis = newListener(c)
	return c, nil
}

// Seen returns the highest log index the client has seen an answer for:
// a follower read waits for a replica that has applied it.
func (c *Client) Seen() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.seen
}

// Do runs the command with req and returns its answer. Errors: ctx's
// (wrapping ErrOutcomeUnknown once the command was sent), ErrSessionExpired,
// ErrNoFunction, ErrTooLarge, or a *RemoteError from the handler.
func (c *Command[Req, Resp]) Do(ctx context.Context, cl *Client, req Req) (Resp, error) {
	resp, _, err := c.DoIndex(ctx, cl, req)
	return resp, err
}

// DoIndex is Do, and also returns the log index of the entry that
// answered: the command took effect at that index or, if an earlier
// attempt of it was applied and this one found its answer in the
// session, before it. Events the command caused have ids at or below it,
// so a stream opened after it starts past them.
func (c *Command[Req, Resp]) DoIndex(ctx context.Context, cl *Client, req Req) (Resp, uint64, error) {
	var zero Resp
	payload, err := c.req.Append(nil, req)
	if err != nil {
		return zero, 0, fmt.Errorf("sm: %s: encode request: %w", c, err)
	}
	rep, err := cl.framework(ctx, opCommand, c.machineID, c.functionID, payload)
	if err != nil {
		return zero, 0, err
	}
	data, err := result(rep)
	if err != nil {
		return zero, 0, err
	}
	resp, err := c.resp.Decode(data)
	return resp, rep.index, err
}

// Read runs the query linearizably.
func (q *Query[Req, Resp]) Read(ctx context.Context, cl *Client, req Req) (Resp, error) {
	return q.ReadAs(ctx, cl, Linearizable, req)
}

// ReadAs runs the query in the given mode.
func (q *Query[Req, Resp]) ReadAs(ctx context.Context, cl *Client, mode ReadMode, req Req) (Resp, error) {
	var zero Resp
	payload, err := q.req.Append(nil, req)
	if err != nil {
		return zero, fmt.Errorf("sm: %s: encode request: %w", q, err)
	}
	data, err := cl.query(ctx, mode, q.machineID, q.functionID, payload)
	if err != nil {
		return zero, err
	}
	return q.resp.Decode(data)
}

// framework sends one request of op in the client's session until it
// applies: a command, or a subscription's start or end. A request that
// finds its session expired and cannot have applied before, as no
// attempt of it may have reached a log, goes again in a new session.
// The final answer may still be a failure: result says which.
func (c *Client) framework(ctx context.Context, op byte, machine, fn uint64, payload []byte) (parsedReply, error) {
	for attempt := 0; ; attempt++ {
		session, err := c.ensureSession(ctx)
		if err != nil {
			return parsedReply{}, err
		}
		seq, low := c.begin()
		r := request{client: session, seq: seq, low: low, machine: machine, fn: fn, payload: payload}
		rep, uncertain, err := c.callTracked(ctx, c.m.command, r.appendBinary([]byte{op}), false)
		c.end(session, seq)
		if err != nil {
			return parsedReply{}, fmt.Errorf("%w: %w", ErrOutcomeUnknown, err)
		}
		if rep.status == stSessionExpired {
			c.forgetSession(session)
			if !uncertain && attempt == 0 {
				continue
			}
		}
		return rep, nil
	}
}

func (c *Client) query(ctx context.Context, mode ReadMode, machine, fn uint64, payload []byte) ([]byte, error) {
	var minApplied uint64 // only a follower read waits for what the client saw
	if mode == Follower {
		minApplied = c.Seen()
	}
	req := binary.AppendUvarint([]byte{byte(mode)}, minApplied)
	req = binary.AppendUvarint(req, machine)
	req = binary.AppendUvarint(req, fn)
	rep, err := c.call(ctx, c.m.query, append(req, payload...), mode == Follower)
	if err != nil {
		return nil, err
	}
	return result(rep)
}

// result turns a final answer into the caller's result.
func result(rep parsedReply) ([]byte, error) {
	switch rep.status {
	case stOK:
		return rep.data, nil
	case stFailed:
		return nil, &RemoteError{Message: string(rep.data)}
	case stSessionExpired:
		return nil, ErrSessionExpired
	case stNoFunction:
		return nil, ErrNoFunction
	case stTooLarge:
		return nil, fmt.Errorf("%w: %s", ErrTooLarge, rep.data)
	}
	return nil, fmt.Errorf("%w: answer status %d", ErrCorrupt, rep.status)
}

// call sends req to the member believed to lead (or, with anyMember,
// to members in turn) until one gives a final answer or ctx ends.
func (c *Client) call(ctx context.Context, m *rpc.Method[[]byte, []byte], req []byte, anyMember bool) (parsedReply, error) {
	rep, _, err := c.callTracked(ctx, m, req, anyMember)
	return rep, err
}

// callTracked is call, and reports whether an attempt may have taken
// effect without the client hearing of it: one whose connection failed,
// or whose answer was stUnknown.
func (c *Client) callTracked(ctx context.Context, m *rpc.Method[[]byte, []byte], req []byte, anyMember bool) (_ parsedReply, uncertain bool, _ error) {
	if c.isClosed() {
		return parsedReply{}, false, ErrClosed
	}
	backoff := c.cfg.RetryBackoff
	attempt := c.cfg.AttemptTimeout
	if m == c.m.poll {
		attempt += pollWait
	}
	behind := 0 // members in a row that had not reached the client's index
	for {
		addr := c.targetAddr()
		rep, err := c.send(ctx, m, addr, req, attempt)
		uncertain = uncertain || err != nil || rep.status == stUnknown
		switch {
		case ctx.Err() != nil:
			return parsedReply{}, uncertain, ctx.Err()
		case err != nil, rep.status == stUnavailable, rep.status == stUnknown:
			c.moveOn(addr, "")
		case rep.status == stNotLeader:
			if c.moveOn(addr, string(rep.data)) {
				continue // a fresh hint: no need to wait
			}
		case rep.status == stBehind && anyMember:
			c.moveOn(addr, "")
			if behind++; behind < len(c.cfg.Servers) {
				continue // another member may have caught up
			}
			behind = 0 // every one is behind: wait before the next round
		default:
			c.saw(rep.index)
			return rep, uncertain, nil
		}
		if err := sleep(ctx, jitter(backoff)); err != nil {
			return parsedReply{}, uncertain, err
		}
		backoff = min(2*backoff, c.cfg.MaxBackoff)
	}
}

// lastConn is the connection of the last call, kept so that calls to
// the same member skip the pool's lock.
type lastConn struct {
	addr string
	cl   *rpc.Client
}

// conn returns the rpc client of addr: the last one used while it is
// the same member's and unbroken, the pool's otherwise.
func (c *Client) conn(ctx context.Context, addr string) (*rpc.Client, error) {
	if last := c.last.Load(); last != nil && last.addr == addr {
		select {
		case <-last.cl.Done():
		default:
			return last.cl, nil
		}
	}
	cl, err := c.cfg.Pool.Client(ctx, addr)
	if err == nil {
		c.last.Store(&lastConn{addr: addr, cl: cl})
	}
	return cl, err
}

// send makes one attempt at addr, within timeout.
func (c *Client) send(ctx context.Context, m *rpc.Method[[]byte, []byte], addr string, req []byte, timeout time.Duration) (parsedReply, error) {
	if ctx.Done() == nil && timeout == c.cfg.AttemptTimeout {
		ctx = c.attempts.context(timeout)
	} else if d, ok := ctx.Deadline(); !ok || time.Until(d) > timeout {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	cl, err := c.conn(ctx, addr)
	if err != nil {
		return parsedReply{}, err
	}
	a, err := m.Call(ctx, cl, req)
	if err != nil {
		return parsedReply{}, err
	}
	return parseReply(a)
}

// attemptClock gives the attempts of calls whose context can never end
// (context.Background, say) one deadline context between them, renewed
// every quarter of the timeout, in place of a context, a timer and their
// registration with the connection each: at 64 callers that saved about
// a tenth of a command's time. An attempt so bounded ends between one
// and one and a quarter timeouts after it began.
type attemptClock struct {
	mu    sync.Mutex // serializes renewals
	epoch atomic.Pointer[attemptEpoch]
}

// attemptEpoch is the context handed out until renew.
type attemptEpoch struct {
	ctx   context.Context
	renew time.Time
	// cancel is never called before the deadline: attempts begun near
	// the end of the epoch still hold ctx. The deadline releases it.
	cancel context.CancelFunc
}

// context returns the context that bounds an attempt beginning now.
func (a *attemptClock) context(timeout time.Duration) context.Context {
	now := time.Now()
	if e := a.epoch.Load(); e != nil && now.Before(e.renew) {
		return e.ctx
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if e := a.epoch.Load(); e != nil && now.Before(e.renew) {
		return e.ctx // another attempt renewed it
	}
	ctx, cancel := context.WithDeadline(context.Background(), now.Add(timeout+timeout/4))
	a.epoch.Store(&attemptEpoch{ctx: ctx, renew: now.Add(timeout / 4), cancel: cancel})
	return ctx
}

func (c *Client) targetAddr() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.target
}

// moveOn picks the next member to try after addr: the hinted leader, or
// the next server. It reports whether the hint was a new target.
func (c *Client) moveOn(addr, hint string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.target != addr {
		return true // another call moved on already
	}
	if hint != "" && hint != addr {
		c.target = hint
		return true
	}
	i := slices.Index(c.cfg.Servers, addr)
	c.target = c.cfg.Servers[(i+1)%len(c.cfg.Servers)]
	return false
}

func (c *Client) saw(index uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seen = max(c.seen, index)
}

// ensureSession returns the client's session, opening one if it has none.
func (c *Client) ensureSession(ctx context.Context) (uint64, error) {
	for {
		c.mu.Lock()
		if c.session != 0 {
			id := c.session
			c.mu.Unlock()
			return id, nil
		}
		if wait := c.opening; wait != nil {
			c.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return 0, ctx.Err()
			}
		}
		c.opening = make(chan struct{})
		c.mu.Unlock()
		id, timeout, err := c.openSession(ctx)
		c.mu.Lock()
		c.session = id
		if err == nil {
			c.timeout = timeout
		}
		close(c.opening)
		c.opening = nil
		c.mu.Unlock()
		if err != nil {
			return 0, err
		}
	}
}

// openSession opens a session; a retry of a lost answer may open two,
// and the other one expires unused.
func (c *Client) openSession(ctx context.Context) (id uint64, timeout time.Duration, err error) {
	rep, err := c.call(ctx, c.m.open, nil, false)
	if err != nil {
		return 0, 0, err
	}
	data, err := result(rep)
	if err != nil {
		return 0, 0, err
	}
	d := decoder{b: data}
	id, timeout = d.uvarint(), time.Duration(d.uvarint())
	if err := d.done(); err != nil || id == 0 || timeout <= 0 {
		return 0, 0, fmt.Errorf("%w: session id", ErrCorrupt)
	}
	return id, timeout, nil
}

func (c *Client) forgetSession(id uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.session == id {
		c.session, c.seq = 0, 0
		clear(c.inflight)
	}
}

// begin hands out the next sequence number and the lowest one still
// waiting for its answer.
func (c *Client) begin() (seq, low uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lastSent = time.Now()
	c.seq++
	if len(c.inflight) == 0 {
		c.low = c.seq
	}
	c.inflight[c.seq] = struct{}{}
	return c.seq, c.low
}

// end forgets seq of session; the lowest in flight moves up past the
// numbers done, each passed once, so this costs O(1) a command on
// average. The numbers of a session forgotten since mean nothing now.
func (c *Client) end(session, seq uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if session != c.session {
		return
	}
	delete(c.inflight, seq)
	for len(c.inflight) > 0 && c.low < c.seq {
		if _, waiting := c.inflight[c.low]; waiting {
			return
		}
		c.low++
	}
}

// quietFor reports whether the client has a session and sent no command
// for d.
func (c *Client) quietFor(d time.Duration) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.session != 0 && time.Since(c.lastSent) >= d
}

// keepAliveEvery is how often a client that only listens renews its
// session: four times per timeout, so that one lost renewal or a slow
// commit does not let it expire.
func (c *Client) keepAliveEvery() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.timeout / 4
}

func (c *Client) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// Close ends the client's streams and closes its session, so that the
// host forgets it, and its subscriptions, before it expires. Calls after
// it fail with ErrClosed. A ctx that ends first cuts Close short; the
// session then expires on its own.
func (c *Client) Close(ctx context.Context) error {
	err := c.lis.close(ctx)
	c.mu.Lock()
	id := c.session
	c.session = 0
	c.mu.Unlock()
	if id != 0 && err == nil {
		r := request{client: id}
		_, err = c.call(ctx, c.m.close, r.appendBinary(nil), false)
	}
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	return err
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

// jitter spreads retries of many clients over [d/2, d).
func jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d/2+1)
}
