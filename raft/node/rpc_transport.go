package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"time"

	"github.com/bifrost-go/bifrost/raft"
	"github.com/bifrost-go/bifrost/rpc"
)

// RPCTransportConfig says where a group's members are and which rpc server
// and pool to use. The zero value of every optional field means its
// default.
type RPCTransportConfig struct {
	// Group names the raft group. Its messages travel as the rpc service
	// "raft." + Group, so many groups share one server. Required.
	Group string
	// Peers maps every other member's id to its rpc address. Required.
	Peers map[uint64]string
	// Server is the rpc server this member listens on; the transport adds
	// the group's service to it. Required.
	Server *rpc.Server
	// Pool dials the peers. Required; share one pool among groups.
	Pool *rpc.Pool
	// MaxQueue is how many messages may wait for one peer before new ones
	// are dropped (raft resends what matters). Default 8192.
	MaxQueue int
	// CallTimeout bounds dialling a peer and writing one batch. Default 2s.
	CallTimeout time.Duration
	// Logger receives delivery failures at debug level. Default: discard.
	Logger *slog.Logger
}

// RPCTransport is a Transport over package rpc. Each peer has one sender
// goroutine that delivers queued messages in batches as one-way
// notifications, which keeps them in order; messages queued while a batch
// is written ride the next one, so a busy leader batches by itself. Close
// stops the senders.
type RPCTransport struct {
	cfg    RPCTransportConfig
	method *rpc.Method[batch, struct{}]
	conf   *rpc.Method[raft.ConfChange, struct{}]
	wg     sync.WaitGroup
	ctx    context.Context // ends when Close is called
	stop   context.CancelFunc

	mu      sync.Mutex // protects the following
	deliver func(raft.Message)
	onConf  func(context.Context, raft.ConfChange) error
	peers   map[uint64]*peerSender
}

// ErrNoPeer reports a message for a node the transport has no address of.
var ErrNoPeer = errors.New("node: no address for peer")

// NewRPCTransport registers the group's service on cfg.Server and starts
// one sender per peer.
func NewRPCTransport(cfg RPCTransportConfig) (*RPCTransport, error) {
	if cfg.Group == "" || cfg.Server == nil || cfg.Pool == nil {
		return nil, fmt.Errorf("%w: rpc transport needs Group, Server and Pool", ErrBadConfig)
	}
	if cfg.MaxQueue <= 0 {
		cfg.MaxQueue = 8192
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = 2 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	t := &RPCTransport{cfg: cfg, peers: map[uint64]*peerSender{}}
	svc := rpc.NewService("raft." + cfg.Group)
	m, err := rpc.Register(svc, "step", t.handleStep)
	if err != nil {
		return nil, err
	}
	if err := cfg.Server.AddService(svc); err != nil {
		return nil, fmt.Errorf("node: rpc transport: %w", err)
	}
	t.method = m
	if t.conf, err = rpc.Register(svc, "conf", t.handleConf); err != nil {
		return nil, err
	}
	t.ctx, t.stop = context.WithCancel(context.Background())
	for id, addr := range cfg.Peers {
		t.AddPeer(id, addr)
	}
	return t, nil
}

// AddPeer starts sending to node id at addr; a peer known at another
// address is moved there. It implements PeerDirectory, through which the
// node wires the members added to the group.
func (t *RPCTransport) AddPeer(id uint64, addr string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if p, ok := t.peers[id]; ok {
		if p.addr == addr {
			return
		}
		p.cancel()
	}
	ctx, cancel := context.WithCancel(t.ctx)
	p := &peerSender{t: t, id: id, addr: addr, wake: make(chan struct{}, 1), cancel: cancel}
	t.peers[id] = p
	t.wg.Go(func() { p.run(ctx) })
}

// RemovePeer stops sending to node id; messages queued for it are
// dropped.
func (t *RPCTransport) RemovePeer(id uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if p, ok := t.peers[id]; ok {
		p.cancel()
		delete(t.peers, id)
	}
}

// HandleConfChange sets the function that answers other members'
// requests for a configuration change (ConfChangeRequester).
func (t *RPCTransport) HandleConfChange(h func(context.Context, raft.ConfChange) error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.onConf = h
}

// RequestConfChange asks node to to propose cc and waits for its answer
// (ConfChangeRequester).
func (t *RPCTransport) RequestConfChange(ctx context.Context, to uint64, cc raft.ConfChange) error {
	t.mu.Lock()
	p, ok := t.peers[to]
	t.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w %d", ErrNoPeer, to)
	}
	c, err := t.cfg.Pool.Client(ctx, p.addr)
	if err != nil {
		return err
	}
	_, err = t.conf.Call(ctx, c, cc)
	return err
}

func (t *RPCTransport) handleConf(ctx context.Context, cc raft.ConfChange) (struct{}, error) {
	t.mu.Lock()
	h := t.onConf
	t.mu.Unlock()
	if h == nil {
		return struct{}{}, ErrStopped
	}
	return struct{}{}, h(ctx, cc)
}

// Receive sets the function incoming messages are handed to.
func (t *RPCTransport) Receive(deliver func(raft.Message)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.deliver = deliver
}

// Send queues each message for its peer's sender.
func (t *RPCTransport) Send(msgs []raft.Message) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, m := range msgs {
		p, ok := t.peers[m.To]
		if !ok {
			t.cfg.Logger.Debug("raft transport", "to", m.To, "err", ErrNoPeer)
			continue
		}
		p.enqueue(m)
	}
}

// Close stops the senders and waits for them. Messages still queued are
// dropped. The service stays on the server, answering nothing useful,
// until the server closes.
func (t *RPCTransport) Close() error {
	t.stop()
	t.wg.Wait()
	t.Receive(nil)
	return nil
}

// handleStep is the receiving side: hand every message to the node.
func (t *RPCTransport) handleStep(_ context.Context, b batch) (struct{}, error) {
	t.mu.Lock()
	deliver := t.deliver
	t.mu.Unlock()
	if deliver == nil {
		return struct{}{}, ErrStopped
	}
	for _, m := range b {
		deliver(m)
	}
	return struct{}{}, nil
}

// peerSender owns the queue of messages for one peer.
type peerSender struct {
	t      *RPCTransport
	id     uint64
	addr   string
	wake   chan struct{} // size one: "the queue is not empty"
	cancel context.CancelFunc

	mu    sync.Mutex // protects queue
	queue []raft.Message
}

func (p *peerSender) enqueue(m raft.Message) {
	p.mu.Lock()
	full := len(p.queue) >= p.t.cfg.MaxQueue
	if !full {
		p.queue = append(p.queue, m)
	}
	p.mu.Unlock()
	if full {
		p.t.cfg.Logger.Debug("raft transport queue full", "to", p.id)
		return
	}
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// take removes up to maxBatchMessages from the front of the queue.
func (p *peerSender) take(into batch) batch {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := min(len(p.queue), maxBatchMessages)
	into = append(into[:0], p.queue[:n]...)
	p.queue = append(p.queue[:0], p.queue[n:]...)
	if len(p.queue) > 0 {
		select {
		case p.wake <- struct{}{}:
		default:
		}
	}
	return into
}

func (p *peerSender) run(ctx context.Context) {
	var b batch
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.wake:
		}
		b = p.take(b)
		if len(b) > 0 {
			p.deliver(ctx, b)
		}
		clear(b) // let entry data go
	}
}

// deliver sends one batch as a one-way rpc notification: the receiver
// handles the notifications of a connection in order on its reader, and
// nothing comes back, which halves the system calls of a round trip. The
// sender then yields once, so that the driver's next messages gather into
// the next batch instead of going one by one. Measured against a call per
// batch that waits for its answer (bench/peers, same run): 20% lower
// latency for one caller, about the same with 64 callers on memory
// storage, 1.7x the commits/s with 64 callers on the WAL. A failure drops
// the batch: raft resends what it needs on its next heartbeat or timeout.
func (p *peerSender) deliver(ctx context.Context, b batch) {
	ctx, cancel := context.WithTimeout(ctx, p.t.cfg.CallTimeout)
	defer cancel()
	c, err := p.t.cfg.Pool.Client(ctx, p.addr)
	if err == nil {
		err = p.t.method.Notify(ctx, c, b)
		runtime.Gosched()
	}
	if err != nil && ctx.Err() == nil {
		p.t.cfg.Logger.Debug("raft transport", "to", p.id, "messages", len(b), "err", err)
	}
}
