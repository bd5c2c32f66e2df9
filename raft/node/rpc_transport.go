package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bifrost-go/bifrost/raft"
	"github.com/bifrost-go/bifrost/rpc"
)

// RPCTransportConfig says where a group's members are and which rpc server
// and pools to use. The zero value of every optional field means its
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
	// Pool dials the peers for the bulk lane (appends and snapshot
	// chunks). Required; share one pool among groups.
	Pool *rpc.Pool
	// ControlPool dials the peers for the control lane (heartbeats,
	// votes and acknowledgements; see RPCTransport). Make it with the
	// same rpc.ClientConfig as Pool (TLS included) and share it among
	// groups like Pool. Being a second pool, it holds a second connection
	// to each peer, so that a heartbeat never waits in TCP behind
	// megabytes of appends. Default: Pool, whose connection both lanes
	// then share: heartbeats still skip the queue of appends, but not
	// the bytes already in the connection.
	ControlPool *rpc.Pool
	// MaxQueue is how many messages may wait in one lane for one peer
	// before new ones are dropped (raft resends what matters; Stats
	// counts them). Default 8192.
	MaxQueue int
	// MaxQueueBytes is how many bytes of messages may wait in one lane
	// for one peer, counted as their largest wire size, before new ones
	// are dropped. It bounds the memory a slow or dead follower holds:
	// MaxQueue appends of a megabyte each would be gigabytes. Default
	// 64 MiB, eight frames of the default size: enough for 64 callers'
	// commands of a megabyte to wait for a busy follower.
	MaxQueueBytes int
	// MaxFrameBytes is the largest rpc frame, header included, the
	// transport sends. It must not exceed the MaxFrameSize of the pools'
	// rpc.ClientConfig nor that of the peers' rpc.Config. Batches are cut
	// to fit it; MaxMessageBytes tells what one message may carry.
	// Default rpc.DefaultMaxFrameSize.
	MaxFrameBytes int
	// CallTimeout bounds dialling a peer and writing one batch. Default 2s.
	CallTimeout time.Duration
	// Logger receives delivery failures: a warning when sends to a peer
	// start failing or its messages start being dropped, once until they
	// recover, and an info line with the count when they do. Default:
	// discard.
	Logger *slog.Logger
}

// Defaults of RPCTransportConfig.
const (
	DefaultMaxQueue      = 8192
	DefaultMaxQueueBytes = 64 << 20
)

// Room in a frame that batches leave free. frameReserve holds the rpc
// frame's header (33 bytes) and the batch's message count, with room to
// spare. messageReserve holds, on top, one message's fields besides its
// entries or snapshot data, a snapshot's configuration and member
// addresses included: enough for some hundreds of members.
const (
	frameReserve   = 128
	messageReserve = 64 << 10
)

// RPCTransport is a Transport over package rpc. Each peer has two lanes,
// each with its own queue, its own sender goroutine and its own
// connection (with Config.ControlPool set): the bulk lane carries what
// holds entries or snapshot data (MsgApp, MsgSnap), the control lane
// everything else, which is small: heartbeats, votes and pre-votes and
// their answers, MsgTimeoutNow, the answers to appends and snapshot
// chunks, read-index requests and their answers. A
// heartbeat therefore never waits behind megabytes of appends, which on
// a busy leader would take longer than an election timeout and cost it
// its leadership.
//
// A lane's sender delivers its queued messages in batches as one-way
// notifications, which keeps them in order; messages queued while a
// batch is written ride the next one, so a busy leader batches by
// itself. A batch never exceeds the frame limit (MaxFrameBytes).
//
// Between lanes messages may overtake each other, which raft tolerates
// as it tolerates any reordering of the network. Nothing in the control
// lane depends on an append it could overtake: a heartbeat's commit
// index is capped at what the leader knows the follower holds, and the
// follower caps it at its own log; MsgTimeoutNow goes only once the
// target acknowledged the leader's whole log; a follower that learns a
// read index waits to apply up to it; and an acknowledgement that
// arrives before, or without, its peers' is handled on its own.
//
// Close stops the senders.
type RPCTransport struct {
	cfg      RPCTransportConfig
	maxBatch int // bytes of batch payload a frame holds
	method   *rpc.Method[batch, struct{}]
	conf     *rpc.Method[raft.ConfChange, struct{}]
	stats    [laneCount]laneCounters
	wg       sync.WaitGroup
	ctx      context.Context // ends when Close is called
	stop     context.CancelFunc

	mu      sync.Mutex // protects the following
	deliver func(raft.Message)
	onConf  func(context.Context, raft.ConfChange) error
	peers   map[uint64]*peerSender
}

// ErrNoPeer reports a message for a node the transport has no address of.
var ErrNoPeer = errors.New("node: no address for peer")

// NewRPCTransport registers the group's service on cfg.Server and starts
// the senders of every peer.
func NewRPCTransport(cfg RPCTransportConfig) (*RPCTransport, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	t := &RPCTransport{cfg: cfg, maxBatch: cfg.MaxFrameBytes - frameReserve, peers: map[uint64]*peerSender{}}
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

func (cfg RPCTransportConfig) withDefaults() (RPCTransportConfig, error) {
	switch {
	case cfg.Group == "" || cfg.Server == nil || cfg.Pool == nil:
		return cfg, fmt.Errorf("%w: rpc transport needs Group, Server and Pool", ErrBadConfig)
	case cfg.MaxFrameBytes < 0 || cfg.MaxFrameBytes > 0 && cfg.MaxFrameBytes < 2*messageReserve:
		return cfg, fmt.Errorf("%w: rpc transport MaxFrameBytes %d, want 0 or at least %d", ErrBadConfig, cfg.MaxFrameBytes, 2*messageReserve)
	}
	def := func(p *int, v int) {
		if *p <= 0 {
			*p = v
		}
	}
	def(&cfg.MaxQueue, DefaultMaxQueue)
	def(&cfg.MaxQueueBytes, DefaultMaxQueueBytes)
	def(&cfg.MaxFrameBytes, rpc.DefaultMaxFrameSize)
	if cfg.ControlPool == nil {
		cfg.ControlPool = cfg.Pool
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = 2 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return cfg, nil
}

// MaxMessageBytes is the most entry bytes (counted as
// raft.Entry.EncodedSize, as raft.Config.MaxMsgBytes counts them) or
// snapshot chunk bytes one message may carry through this transport.
// A larger message is dropped and counted in Stats (Oversized), so a
// node checks at start that its raft.Config.MaxMsgBytes and
// Config.SnapshotChunkBytes are at most this.
func (t *RPCTransport) MaxMessageBytes() int { return t.maxBatch - messageReserve }

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
	p := &peerSender{id: id, addr: addr, cancel: cancel}
	for k := range laneCount {
		l := newLane(t, p, k)
		p.lanes[k] = l
		t.wg.Go(func() { l.run(ctx) })
	}
	t.peers[id] = p
}

// Addr returns the address peer id is sent to (AddressBook).
func (t *RPCTransport) Addr(id uint64) (string, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if p, ok := t.peers[id]; ok {
		return p.addr, true
	}
	return "", false
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
	c, err := t.cfg.ControlPool.Client(ctx, p.addr)
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

// Send queues each message in its lane for its peer's sender.
func (t *RPCTransport) Send(msgs []raft.Message) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, m := range msgs {
		p, ok := t.peers[m.To]
		if !ok {
			t.stats[laneOf(m.Type)].dropped.Add(1)
			t.cfg.Logger.Debug("raft transport", "to", m.To, "type", m.Type, "err", ErrNoPeer)
			continue
		}
		p.lanes[laneOf(m.Type)].enqueue(m)
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
// Each connection has its own reader, so the two lanes of a peer are
// handled concurrently, each in order.
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

// TransportStats counts, since the transport started, what became of the
// messages handed to Send, by lane. Messages still queued are in no
// count.
type TransportStats struct {
	Control, Bulk LaneStats
}

// LaneStats counts the messages of one lane, over all peers.
type LaneStats struct {
	// Sent messages were written to a connection, in Batches rpc
	// notifications.
	Sent, Batches uint64
	// Failed messages were in batches that could not be sent: the peer
	// could not be dialled or its connection broke.
	Failed uint64
	// Dropped messages found their peer's queue full (MaxQueue,
	// MaxQueueBytes) or were for a peer without an address.
	Dropped uint64
	// Oversized messages were larger than a frame can hold
	// (MaxMessageBytes) and were dropped.
	Oversized uint64
}

// Stats returns the transport's counters.
func (t *RPCTransport) Stats() TransportStats {
	return TransportStats{Control: t.stats[laneControl].load(), Bulk: t.stats[laneBulk].load()}
}

// laneCounters is the atomic form of LaneStats.
type laneCounters struct {
	sent, batches, failed, dropped, oversized atomic.Uint64
}

func (c *laneCounters) load() LaneStats {
	return LaneStats{Sent: c.sent.Load(), Batches: c.batches.Load(), Failed: c.failed.Load(),
		Dropped: c.dropped.Load(), Oversized: c.oversized.Load()}
}

// laneKind names a lane of a peer.
type laneKind int

const (
	laneControl laneKind = iota
	laneBulk
	laneCount
)

func (k laneKind) String() string {
	if k == laneBulk {
		return "bulk"
	}
	return "control"
}

// laneOf returns the lane of messages of type typ: the bulk lane for
// those that carry entries or snapshot data, the control lane for the
// rest. All MsgApp go in the bulk lane, empty ones too, so that appends
// stay in the order the leader sent them.
func laneOf(typ raft.MessageType) laneKind {
	if typ == raft.MsgApp || typ == raft.MsgSnap {
		return laneBulk
	}
	return laneControl
}

// peerSender holds the lanes of one peer.
type peerSender struct {
	id     uint64
	addr   string
	cancel context.CancelFunc // stops the lanes' senders
	lanes  [laneCount]*lane
}

// lane is one queue of messages for one peer and the goroutine that
// sends it. Its connection comes from the lane's pool.
type lane struct {
	t     *RPCTransport
	peer  *peerSender
	kind  laneKind
	pool  *rpc.Pool
	stats *laneCounters
	wake  chan struct{} // size one: "the queue is not empty"

	mu      sync.Mutex // protects the following
	queue   []queued
	bytes   int // the wire sizes of queue, summed
	dropped int // messages dropped in the current run of drops; 0 for none

	failed int // messages failed since the last batch sent; owned by run
}

// queued is a message waiting in a lane, with its wire size.
type queued struct {
	m    raft.Message
	size int
}

func newLane(t *RPCTransport, p *peerSender, k laneKind) *lane {
	pool := t.cfg.Pool
	if k == laneControl {
		pool = t.cfg.ControlPool
	}
	return &lane{t: t, peer: p, kind: k, pool: pool, stats: &t.stats[k], wake: make(chan struct{}, 1)}
}

// enqueue queues m, or drops it if the queue is full or m cannot fit in
// a frame. The first drop of a run is logged at warn level; the run ends,
// with its count logged, once the sender has drained the queue to half
// (take), so a queue at its limit does not log every message.
func (l *lane) enqueue(m raft.Message) {
	size := wireSize(&m)
	if size > l.t.maxBatch {
		l.stats.oversized.Add(1)
		l.t.cfg.Logger.Warn("raft transport: message larger than a frame dropped", "to", l.peer.id,
			"type", m.Type, "bytes", size, "max", l.t.maxBatch)
		return
	}
	l.mu.Lock()
	full := len(l.queue) >= l.t.cfg.MaxQueue || l.bytes+size > l.t.cfg.MaxQueueBytes
	first := full && l.dropped == 0
	if full {
		l.dropped++
	} else {
		l.queue = append(l.queue, queued{m, size})
		l.bytes += size
	}
	queued, bytes := len(l.queue), l.bytes
	l.mu.Unlock()
	if first {
		l.t.cfg.Logger.Warn("raft transport: queue full, dropping messages", "to", l.peer.id,
			"lane", l.kind, "queued", queued, "bytes", bytes)
	}
	if full {
		l.stats.dropped.Add(1)
		return
	}
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// take moves the front of the queue into a batch: up to
// maxBatchMessages messages whose wire sizes fit in a frame.
func (l *lane) take(into batch) batch {
	l.mu.Lock()
	n, size := 0, 0
	for n < len(l.queue) && n < maxBatchMessages && size+l.queue[n].size <= l.t.maxBatch {
		size += l.queue[n].size
		n++
	}
	into = into[:0]
	for _, q := range l.queue[:n] {
		into = append(into, q.m)
	}
	rest := copy(l.queue, l.queue[n:])
	clear(l.queue[rest:]) // let entry data go
	l.queue = l.queue[:rest]
	l.bytes -= size
	dropped := 0
	if l.dropped > 0 && 2*rest <= l.t.cfg.MaxQueue && 2*l.bytes <= l.t.cfg.MaxQueueBytes {
		dropped, l.dropped = l.dropped, 0
	}
	l.mu.Unlock()
	if dropped > 0 {
		l.t.cfg.Logger.Info("raft transport: queue has room again", "to", l.peer.id,
			"lane", l.kind, "dropped", dropped)
	}
	if rest > 0 {
		select {
		case l.wake <- struct{}{}:
		default:
		}
	}
	return into
}

func (l *lane) run(ctx context.Context) {
	var b batch
	for {
		select {
		case <-ctx.Done():
			return
		case <-l.wake:
		}
		b = l.take(b)
		if len(b) > 0 {
			l.deliver(ctx, b)
		}
		clear(b) // let entry data go
	}
}

// deliver sends one batch as a one-way rpc notification: the receiver
// handles the notifications of a connection in order on its reader, and
// nothing comes back, which halves the system calls of a round trip. The
// sender then yields once, so that the driver's next messages gather into
// the next batch instead of going one by one. A failure drops the batch:
// raft resends what it needs on its next heartbeat or timeout.
func (l *lane) deliver(ctx context.Context, b batch) {
	ctx, cancel := context.WithTimeout(ctx, l.t.cfg.CallTimeout)
	defer cancel()
	c, err := l.pool.Client(ctx, l.peer.addr)
	if err == nil {
		err = l.t.method.Notify(ctx, c, b)
		runtime.Gosched()
	}
	switch {
	case err == nil:
		l.sent(len(b))
	case ctx.Err() == nil || errors.Is(ctx.Err(), context.DeadlineExceeded):
		l.fail(len(b), err)
	}
}

// sent counts a batch sent, and logs the end of a run of failures.
func (l *lane) sent(n int) {
	l.stats.sent.Add(uint64(n))
	l.stats.batches.Add(1)
	if l.failed > 0 {
		l.t.cfg.Logger.Info("raft transport: sends to peer work again", "to", l.peer.id,
			"lane", l.kind, "failed", l.failed)
		l.failed = 0
	}
}

// fail counts a batch that could not be sent, and logs the first of a
// run of failures at warn level: a dead peer does not flood the log.
func (l *lane) fail(n int, err error) {
	l.stats.failed.Add(uint64(n))
	if l.failed == 0 {
		l.t.cfg.Logger.Warn("raft transport: sends to peer failing", "to", l.peer.id,
			"lane", l.kind, "addr", l.peer.addr, "err", err)
	}
	l.failed += n
}
