package node

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/bifrost-go/bifrost/raft"
)

// memNetwork connects nodes in one process for driver tests. Delivery is
// synchronous into each node's receive buffer, so a test inside a synctest
// bubble sees messages arrive without any real network.
type memNetwork struct {
	mu      sync.Mutex // protects the following
	deliver map[uint64]func(raft.Message)
	cut     map[uint64]bool // nodes whose messages, in and out, are dropped
	sent    map[raft.MessageType]int
	holding bool // messages wait in held until release
	held    []raft.Message
	confs   map[uint64]func(context.Context, raft.ConfChange) error // HandleConfChange, by node
	addrs   map[uint64]map[uint64]string                            // AddPeer calls: node -> peer -> addr
}

func newMemNetwork() *memNetwork {
	return &memNetwork{deliver: map[uint64]func(raft.Message){}, cut: map[uint64]bool{},
		sent: map[raft.MessageType]int{}, confs: map[uint64]func(context.Context, raft.ConfChange) error{},
		addrs: map[uint64]map[uint64]string{}}
}

// transport returns the Transport of node id.
func (nw *memNetwork) transport(id uint64) Transport { return &memTransport{nw: nw, id: id} }

// isolate drops every message to and from id until heal.
func (nw *memNetwork) isolate(id uint64) {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	nw.cut[id] = true
}

func (nw *memNetwork) heal() {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	clear(nw.cut)
}

// hold keeps every message in flight until release, as a slow network
// would.
func (nw *memNetwork) hold() {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	nw.holding = true
}

// release delivers the held messages and stops holding.
func (nw *memNetwork) release() {
	nw.mu.Lock()
	held := nw.held
	nw.held, nw.holding = nil, false
	nw.mu.Unlock()
	for _, m := range held {
		nw.deliverNow(m)
	}
}

// count returns how many messages of type typ were sent so far.
func (nw *memNetwork) count(typ raft.MessageType) int {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	return nw.sent[typ]
}

func (nw *memNetwork) send(m raft.Message) {
	nw.mu.Lock()
	nw.sent[m.Type]++
	if nw.holding {
		nw.held = append(nw.held, m)
		nw.mu.Unlock()
		return
	}
	nw.mu.Unlock()
	nw.deliverNow(m)
}

// deliverNow hands m to its receiver unless a cut drops it.
func (nw *memNetwork) deliverNow(m raft.Message) {
	nw.mu.Lock()
	fn := nw.deliver[m.To]
	dropped := nw.cut[m.From] || nw.cut[m.To]
	nw.mu.Unlock()
	if fn != nil && !dropped {
		m.Entries = slices.Clone(m.Entries) // as a real network would copy
		fn(m)
	}
}

type memTransport struct {
	nw *memNetwork
	id uint64
}

func (t *memTransport) Receive(fn func(raft.Message)) {
	t.nw.mu.Lock()
	defer t.nw.mu.Unlock()
	t.nw.deliver[t.id] = fn
}

func (t *memTransport) Send(msgs []raft.Message) {
	for _, m := range msgs {
		t.nw.send(m)
	}
}

// AddPeer and RemovePeer record what node t.id's transport learned.
func (t *memTransport) AddPeer(id uint64, addr string) {
	t.nw.mu.Lock()
	defer t.nw.mu.Unlock()
	if t.nw.addrs[t.id] == nil {
		t.nw.addrs[t.id] = map[uint64]string{}
	}
	t.nw.addrs[t.id][id] = addr
}

func (t *memTransport) RemovePeer(id uint64) {
	t.nw.mu.Lock()
	defer t.nw.mu.Unlock()
	delete(t.nw.addrs[t.id], id)
}

// addr returns the address node id's transport learned for peer.
func (nw *memNetwork) addr(id, peer uint64) string {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	return nw.addrs[id][peer]
}

func (t *memTransport) HandleConfChange(h func(context.Context, raft.ConfChange) error) {
	t.nw.mu.Lock()
	defer t.nw.mu.Unlock()
	t.nw.confs[t.id] = h
}

// RequestConfChange calls the handler of node to, unless a cut drops it.
func (t *memTransport) RequestConfChange(ctx context.Context, to uint64, cc raft.ConfChange) error {
	t.nw.mu.Lock()
	h := t.nw.confs[to]
	dropped := t.nw.cut[t.id] || t.nw.cut[to]
	t.nw.mu.Unlock()
	if h == nil || dropped {
		return fmt.Errorf("no route to %d", to)
	}
	return h(ctx, cc)
}

// Addr makes the memTransport an AddressBook: member id is at "mem:id".
func (t *memTransport) Addr(id uint64) (string, bool) { return fmt.Sprintf("mem:%d", id), true }
