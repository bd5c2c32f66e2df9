package sm

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/bifrost-go/bifrost/raft"
	"github.com/bifrost-go/bifrost/raft/node"
	"github.com/bifrost-go/bifrost/rpc"
)

// The rpc service of a group's host is "sm." + group, so many hosts
// (groups) share one rpc server. Its methods take and answer []byte:
//
//	open:    nothing -> answer (the new client id)
//	close:   request of the client (its id alone counts) -> answer
//	command: op (command, subscribe, unsubscribe, keep-alive), request (envelope.go) -> answer
//	query:   mode, minimum index, machine, function, payload -> answer
//	poll:    subscriptions, each its id and the last event id seen -> answer (per subscription: status, events)
//
// An answer is a status byte, the log index it speaks for as an unsigned
// varint (0 when none), then the status's data.

// methods are the typed names of a group's service methods.
type methods struct {
	open, close, command, query, poll *rpc.Method[[]byte, []byte]
}

func newMethods(group string) methods {
	svc := "sm." + group
	return methods{open: rpc.NewMethod[[]byte, []byte](svc, "open"),
		close:   rpc.NewMethod[[]byte, []byte](svc, "close"),
		command: rpc.NewMethod[[]byte, []byte](svc, "command"),
		query:   rpc.NewMethod[[]byte, []byte](svc, "query"),
		poll:    rpc.NewMethod[[]byte, []byte](svc, "poll")}
}

// Read modes of a query.
type ReadMode byte

const (
	// Linearizable reads see every command that completed before the
	// read began: the replica confirms the read index with the leader
	// (node.Node.ReadIndex). The default.
	Linearizable ReadMode = iota
	// Lease reads are linearizable while clocks drift within the bound
	// node.Config's lease assumes (node.Node.LeaseRead).
	Lease
	// Follower reads are the seed's: any replica whose state has reached
	// the highest index the client has seen answers at once. Possibly
	// stale, never going back for one client.
	Follower
)

// Server is the host of a group served on one member: it answers the
// group's clients there (any member answers queries; commands go to the
// leader, and a follower answers with the leader's address), and lets
// the member issue commands of its own (Submit).
type Server struct {
	host     *Host
	node     *node.Node
	counters serverCounters // stats.go
}

// Serve registers the service of the host of group, running on n, on
// srv, and returns it.
func Serve(srv *rpc.Server, group string, h *Host, n *node.Node) (*Server, error) {
	s := &Server{host: h, node: n}
	leading := s.Leading
	if !h.leading.CompareAndSwap(nil, &leading) {
		return nil, fmt.Errorf("sm: serve group %q: the host is served already", group)
	}
	svc := rpc.NewService("sm." + group)
	for name, f := range map[string]rpc.Handler[[]byte, []byte]{
		"open": s.open, "close": s.close, "command": s.command, "query": s.query, "poll": s.poll} {
		if _, err := rpc.Register(svc, name, f); err != nil {
			return nil, err
		}
	}
	if err := srv.AddService(svc); err != nil {
		return nil, fmt.Errorf("sm: serve group %q: %w", group, err)
	}
	return s, nil
}

// Leading reports whether this member leads the group now.
func (s *Server) Leading() bool { return s.node.Status().Role == raft.RoleLeader }

// Host returns the host served.
func (s *Server) Host() *Host { return s.host }

// Node returns the raft node the host runs on.
func (s *Server) Node() *node.Node { return s.node }

// ErrNotLeader is Submit's error on a member that does not lead.
var ErrNotLeader = raft.ErrNotLeader

// Submit runs command c with req through the log from this member, which
// must lead, outside any client session, and returns its answer once it
// applied here. It is how a leader issues commands of its own (the
// membership's online and offline marks): since no session dedupes
// them, such a command must be idempotent, as a retry after
// ErrOutcomeUnknown may apply it twice. Errors: ErrNotLeader, ctx's
// (wrapping ErrOutcomeUnknown once proposed), ErrTooLarge, ErrNoFunction
// or a *RemoteError from the handler.
func Submit[Req, Resp any](ctx context.Context, s *Server, c *Command[Req, Resp], req Req) (Resp, error) {
	var zero Resp
	payload, err := c.req.Append(nil, req)
	if err != nil {
		return zero, fmt.Errorf("sm: %s: encode request: %w", c, err)
	}
	r := request{machine: c.machineID, fn: c.functionID, payload: payload}
	if !s.Leading() {
		return zero, ErrNotLeader
	}
	_, a, err := s.proposeEntry(ctx, opSubmit, r.appendBinary(nil))
	if errors.Is(err, raft.ErrProposalTooLarge) {
		return zero, fmt.Errorf("%w: %w", ErrTooLarge, err)
	}
	if err != nil {
		return zero, err
	}
	rep := parsedReply{status: a[0], data: a[1:]}
	data, err := result(rep)
	if err != nil {
		return zero, err
	}
	return c.resp.Decode(data)
}

func (s *Server) open(ctx context.Context, _ []byte) ([]byte, error) {
	return s.propose(ctx, opOpenSession, nil), nil
}

func (s *Server) close(ctx context.Context, req []byte) ([]byte, error) {
	if _, err := decodeRequest(req); err != nil {
		return reply(stFailed, 0, []byte(err.Error())), nil
	}
	return s.propose(ctx, opCloseSession, req), nil
}

func (s *Server) command(ctx context.Context, req []byte) ([]byte, error) {
	// A client's op; opSubmit, outside sessions, is the members' own.
	if len(req) == 0 || req[0] != opCommand && req[0] != opSubscribe && req[0] != opUnsubscribe && req[0] != opKeepAlive {
		return reply(stFailed, 0, []byte("sm: bad command op")), nil
	}
	s.counters.commands.Inc()
	if _, err := decodeRequest(req[1:]); err != nil {
		return reply(stFailed, 0, []byte(err.Error())), nil
	}
	return s.propose(ctx, req[0], req[1:]), nil
}

// pollWait bounds how long a poll waits for events before it answers
// with none, so that a subscriber notices a leader that went away.
const pollWait = time.Second

// maxPollEvents bounds the events of one answer.
const maxPollEvents = 1024

// poll answers a subscriber with the events of its subscriptions after
// the ids it saw, waiting for some if there are none yet. A client asks
// for all its subscriptions in one poll, so the leader holds one waiting
// call per listening client, not one per subscription. Only the leader
// delivers: it has applied at least as far as any replica it could send
// the subscriber to next, so a subscriber never sees the window go back.
func (s *Server) poll(ctx context.Context, req []byte) ([]byte, error) {
	subs, err := decodePoll(req)
	if err != nil {
		return reply(stFailed, 0, []byte(err.Error())), nil
	}
	s.counters.polls.Inc()
	wait := time.NewTimer(pollWait)
	defer wait.Stop()
	for {
		if st := s.node.Status(); st.Role != raft.RoleLeader {
			return reply(stNotLeader, 0, []byte(st.LeaderAddr)), nil
		}
		a, wake := s.host.events(subs, maxPollEvents)
		if a != nil {
			return a, nil
		}
		select {
		case <-wake:
		case <-wait.C:
			none := make([]subEvents, len(subs))
			for i := range none {
				none[i].status = stOK
			}
			return reply(stOK, s.host.Applied(), appendPollAnswer(nil, none)), nil
		case <-ctx.Done():
			return reply(stUnavailable, 0, nil), nil
		}
	}
}

// proposeEntry puts the entry of op and req in the log, stamped with this
// leader's clock, and returns the host's answer once it applied here.
func (s *Server) proposeEntry(ctx context.Context, op byte, req []byte) (uint64, []byte, error) {
	return s.node.Propose(ctx, appendEntry(nil, op, time.Now().UnixNano(), req))
}

// propose puts the request in the log and answers with what the host
// answered when it applied it, and the entry's index.
func (s *Server) propose(ctx context.Context, op byte, req []byte) []byte {
	st := s.node.Status()
	if st.Role != raft.RoleLeader {
		return reply(stNotLeader, 0, []byte(st.LeaderAddr))
	}
	index, a, err := s.proposeEntry(ctx, op, req)
	switch {
	case err == nil:
		return reply(a[0], index, a[1:])
	case errors.Is(err, node.ErrOutcomeUnknown):
		return reply(stUnknown, 0, nil)
	case errors.Is(err, raft.ErrNotLeader):
		return reply(stNotLeader, 0, []byte(s.node.Status().LeaderAddr))
	case errors.Is(err, raft.ErrProposalTooLarge):
		return reply(stTooLarge, 0, []byte(err.Error()))
	}
	// Dropped, refused during a transfer, stopped, or a context that
	// ended before the node took it: not applied.
	return reply(stUnavailable, 0, []byte(err.Error()))
}

func (s *Server) query(ctx context.Context, req []byte) ([]byte, error) {
	if len(req) == 0 {
		return reply(stFailed, 0, []byte("sm: empty query")), nil
	}
	mode := ReadMode(req[0])
	d := decoder{b: req[1:]}
	minApplied, machine, fn := d.uvarint(), d.uvarint(), d.uvarint()
	if d.err != nil {
		return reply(stFailed, 0, []byte(d.err.Error())), nil
	}
	s.counters.countRead(mode)
	if a := s.readIndex(ctx, mode); a != nil {
		return a, nil
	}
	applied, a := s.host.query(machine, fn, minApplied, d.rest())
	return reply(a[0], applied, a[1:]), nil
}

// readIndex waits until this replica may answer a read of mode, or
// returns why it may not.
func (s *Server) readIndex(ctx context.Context, mode ReadMode) []byte {
	var err error
	switch mode {
	case Linearizable:
		_, err = s.node.ReadIndex(ctx)
	case Lease:
		_, err = s.node.LeaseRead(ctx)
	case Follower:
		return nil
	default:
		return reply(stFailed, 0, []byte(fmt.Sprintf("sm: read mode %d", mode)))
	}
	if err != nil {
		s.counters.refused.Inc()
		return reply(stUnavailable, 0, []byte(err.Error()))
	}
	return nil
}

func reply(status byte, index uint64, data []byte) []byte {
	b := append(make([]byte, 0, 1+binary.MaxVarintLen64+len(data)), status)
	return append(binary.AppendUvarint(b, index), data...)
}

// parsedReply is a decoded answer.
type parsedReply struct {
	status byte
	index  uint64
	data   []byte
}

func parseReply(p []byte) (parsedReply, error) {
	if len(p) == 0 {
		return parsedReply{}, fmt.Errorf("%w: empty answer", ErrCorrupt)
	}
	d := decoder{b: p[1:]}
	r := parsedReply{status: p[0], index: d.uvarint()}
	r.data = d.rest()
	return r, d.err
}
