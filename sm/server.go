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
//	command: op (command, subscribe, unsubscribe), request (envelope.go) -> answer
//	query:   mode, minimum index, machine, function, payload -> answer
//	poll:    subscription id, the last event id seen -> answer (events)
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

// server answers a group's clients on one member.
type server struct {
	host *Host
	node *node.Node
}

// Serve registers the service of the host of group, running on n, on
// srv. A member serves its clients through it; any member answers
// queries, and commands go to the leader (a follower answers with the
// leader's address).
func Serve(srv *rpc.Server, group string, h *Host, n *node.Node) error {
	s := &server{host: h, node: n}
	svc := rpc.NewService("sm." + group)
	for name, f := range map[string]rpc.Handler[[]byte, []byte]{
		"open": s.open, "close": s.close, "command": s.command, "query": s.query, "poll": s.poll} {
		if _, err := rpc.Register(svc, name, f); err != nil {
			return err
		}
	}
	if err := srv.AddService(svc); err != nil {
		return fmt.Errorf("sm: serve group %q: %w", group, err)
	}
	return nil
}

func (s *server) open(ctx context.Context, _ []byte) ([]byte, error) {
	return s.propose(ctx, opOpenSession, nil), nil
}

func (s *server) close(ctx context.Context, req []byte) ([]byte, error) {
	if _, err := decodeRequest(req); err != nil {
		return reply(stFailed, 0, []byte(err.Error())), nil
	}
	return s.propose(ctx, opCloseSession, req), nil
}

func (s *server) command(ctx context.Context, req []byte) ([]byte, error) {
	if len(req) == 0 || req[0] != opCommand && req[0] != opSubscribe && req[0] != opUnsubscribe {
		return reply(stFailed, 0, []byte("sm: bad command op")), nil
	}
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

// poll answers a subscriber with its events after the id it saw, waiting
// for some if there are none yet. Only the leader delivers: it has
// applied at least as far as any replica it could send the subscriber to
// next, so a subscriber never sees the window go back.
func (s *server) poll(ctx context.Context, req []byte) ([]byte, error) {
	d := decoder{b: req}
	id := d.uvarint()
	after := decodeEventID(&d)
	if err := d.done(); err != nil {
		return reply(stFailed, 0, []byte(err.Error())), nil
	}
	wait := time.NewTimer(pollWait)
	defer wait.Stop()
	for {
		if st := s.node.Status(); st.Role != raft.RoleLeader {
			return reply(stNotLeader, 0, []byte(st.LeaderAddr)), nil
		}
		a, wake := s.host.events(id, after, maxPollEvents)
		if a != nil {
			return a, nil
		}
		select {
		case <-wake:
		case <-wait.C:
			return reply(stOK, s.host.Applied(), appendEvents(nil, nil)), nil
		case <-ctx.Done():
			return reply(stUnavailable, 0, nil), nil
		}
	}
}

// propose puts the request in the log, stamped with this leader's clock,
// and answers with what the host answered when it applied it.
func (s *server) propose(ctx context.Context, op byte, req []byte) []byte {
	st := s.node.Status()
	if st.Role != raft.RoleLeader {
		return reply(stNotLeader, 0, []byte(st.LeaderAddr))
	}
	index, a, err := s.node.Propose(ctx, appendEntry(nil, op, time.Now().UnixNano(), req))
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

func (s *server) query(ctx context.Context, req []byte) ([]byte, error) {
	if len(req) == 0 {
		return reply(stFailed, 0, []byte("sm: empty query")), nil
	}
	mode := ReadMode(req[0])
	d := decoder{b: req[1:]}
	minApplied, machine, fn := d.uvarint(), d.uvarint(), d.uvarint()
	if d.err != nil {
		return reply(stFailed, 0, []byte(d.err.Error())), nil
	}
	if a := s.readIndex(ctx, mode); a != nil {
		return a, nil
	}
	applied, a := s.host.query(machine, fn, minApplied, d.rest())
	return reply(a[0], applied, a[1:]), nil
}

// readIndex waits until this replica may answer a read of mode, or
// returns why it may not.
func (s *server) readIndex(ctx context.Context, mode ReadMode) []byte {
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
		return reply(stUnavailable, 0, []byte(err.Error()))
	}
	return nil
}

func reply(status byte, index uint64, data []byte) []byte {
	b := binary.AppendUvarint([]byte{status}, index)
	return append(b, data...)
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
