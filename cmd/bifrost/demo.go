package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/bifrost-go/bifrost/bind"
	"github.com/bifrost-go/bifrost/raft"
	"github.com/bifrost-go/bifrost/raft/node"
	"github.com/bifrost-go/bifrost/raft/wal"
	"github.com/bifrost-go/bifrost/rpc"
)

// demo walks through the library: typed RPC, bindings, and a three-member
// raft group on loopback that loses its leader and recovers it from disk.
func demo(ctx context.Context, out io.Writer) error {
	if err := demoRPC(ctx, out); err != nil {
		return fmt.Errorf("rpc: %w", err)
	}
	if err := demoRaft(ctx, out); err != nil {
		return fmt.Errorf("raft: %w", err)
	}
	return nil
}

// caller is bound per request: a handler deep down can read who called
// without every function in between passing it along.
var caller = bind.New("anonymous")

func greet(ctx context.Context, name string) (string, error) {
	return fmt.Sprintf("hello %s (asked by %s)", name, caller.Get(ctx)), nil
}

func demoRPC(ctx context.Context, out io.Writer) error {
	fmt.Fprintln(out, "== rpc: a typed method, no generated code")
	svc := rpc.NewService("greeter")
	hello, err := rpc.Register(svc, "hello", func(ctx context.Context, name string) (string, error) {
		return greet(caller.Bind(ctx, "the demo"), name)
	})
	if err != nil {
		return err
	}
	srv, err := rpc.NewServer(rpc.Config{})
	if err != nil {
		return err
	}
	if err := srv.AddService(svc); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	defer func() { srv.Close(); <-served }()

	pool, err := rpc.NewPool(rpc.ClientConfig{})
	if err != nil {
		return err
	}
	defer pool.Close()
	client, err := pool.Client(ctx, ln.Addr().String())
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	answers, errs := make([]string, 3), make([]error, 3)
	for i, name := range []string{"odin", "thor", "loki"} {
		wg.Go(func() { answers[i], errs[i] = hello.Call(ctx, client, name) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for _, a := range answers {
		fmt.Fprintf(out, "   %s: %s\n", ln.Addr(), a)
	}
	return nil
}

// kv is the demo's replicated state machine: "key=value" commands.
type kv struct {
	mu   sync.Mutex // protects data
	data map[string]string
}

func (s *kv) Apply(e raft.Entry) []byte {
	if e.Type != raft.EntryNormal {
		return nil
	}
	k, v, _ := strings.Cut(string(e.Data), "=")
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.data[k]
	s.data[k] = v
	return []byte(old)
}

func (s *kv) get(k string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.data[k]
}

// member is one raft group member with its own rpc server and WAL.
type member struct {
	id        uint64
	srv       *rpc.Server
	pool      *rpc.Pool
	ctl       *rpc.Pool // the transport's control lane: heartbeats never queue behind appends
	transport *node.RPCTransport
	log       *wal.WAL
	sm        *kv
	node      *node.Node
	served    chan error
}

// startMember starts member id serving on ln; on failure it closes what
// it had started, ln included.
func startMember(id uint64, ln net.Listener, addrs map[uint64]string, dir string) (_ *member, err error) {
	m := &member{id: id, sm: &kv{data: map[string]string{}}, served: make(chan error, 1)}
	serving := false
	defer func() {
		if err == nil {
			return
		}
		if m.transport != nil {
			m.transport.Close()
		}
		if m.srv != nil {
			m.srv.Close() // closes ln if Serve has it
		}
		if serving {
			<-m.served
		} else {
			ln.Close()
		}
		if m.ctl != nil {
			m.ctl.Close()
		}
		if m.pool != nil {
			m.pool.Close()
		}
		if m.log != nil {
			m.log.Close()
		}
	}()
	if m.srv, err = rpc.NewServer(rpc.Config{}); err != nil {
		return nil, err
	}
	if m.pool, err = rpc.NewPool(rpc.ClientConfig{}); err != nil {
		return nil, err
	}
	if m.ctl, err = rpc.NewPool(rpc.ClientConfig{}); err != nil {
		return nil, err
	}
	peers := map[uint64]string{}
	voters := []uint64{}
	for pid, addr := range addrs {
		voters = append(voters, pid)
		if pid != id {
			peers[pid] = addr
		}
	}
	if m.transport, err = node.NewRPCTransport(node.RPCTransportConfig{Group: "demo", Peers: peers, Server: m.srv, Pool: m.pool, ControlPool: m.ctl}); err != nil {
		return nil, err
	}
	if m.log, err = wal.Open(wal.Config{Dir: dir}); err != nil {
		return nil, err
	}
	go func() { m.served <- m.srv.Serve(ln) }()
	serving = true
	if m.node, err = node.Start(node.Config{Raft: raft.Config{ID: id, Voters: voters}, Storage: node.NewWALStorage(m.log),
		Transport: m.transport, StateMachine: m.sm, TickInterval: 10 * time.Millisecond}); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *member) stop() {
	m.node.Stop()
	m.transport.Close()
	m.srv.Close()
	<-m.served
	m.pool.Close()
	m.ctl.Close()
	m.log.Close()
}

func demoRaft(ctx context.Context, out io.Writer) error {
	fmt.Fprintln(out, "== raft: three members on loopback, each with its own WAL")
	root, err := os.MkdirTemp("", "bifrost-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(root)
	addrs, lns := map[uint64]string{}, map[uint64]net.Listener{}
	for id := uint64(1); id <= 3; id++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		addrs[id], lns[id] = ln.Addr().String(), ln
	}
	members := map[uint64]*member{}
	defer func() {
		for _, m := range members {
			m.stop()
		}
	}()
	for id := uint64(1); id <= 3; id++ {
		m, err := startMember(id, lns[id], addrs, fmt.Sprintf("%s/%d", root, id))
		if err != nil {
			for later := id + 1; later <= 3; later++ {
				lns[later].Close()
			}
			return err
		}
		members[id] = m
	}
	lead, err := waitLeader(ctx, members)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "   member %d leads term %d\n", lead.id, lead.node.Status().Term)
	for _, cmd := range []string{"realm=asgard", "bridge=bifrost", "guard=heimdall"} {
		index, _, err := lead.node.Propose(ctx, []byte(cmd))
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "   committed %-16q at index %d\n", cmd, index)
	}

	fmt.Fprintf(out, "   stopping the leader, member %d\n", lead.id)
	old := lead.id
	lead.stop()
	delete(members, old)
	if lead, err = waitLeader(ctx, members); err != nil {
		return err
	}
	fmt.Fprintf(out, "   member %d leads term %d\n", lead.id, lead.node.Status().Term)
	index, prev, err := lead.node.Propose(ctx, []byte("realm=midgard"))
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "   committed %-16q at index %d (realm was %q)\n", "realm=midgard", index, prev)

	ln, err := net.Listen("tcp", addrs[old])
	if err != nil {
		return err
	}
	back, err := startMember(old, ln, addrs, fmt.Sprintf("%s/%d", root, old))
	if err != nil {
		return err
	}
	members[old] = back
	if err := back.node.WaitFor(ctx, func(st node.Status) bool { return st.Applied >= index }); err != nil {
		return err
	}
	fmt.Fprintf(out, "   member %d restarted from its WAL and caught up: realm=%s bridge=%s\n",
		old, back.sm.get("realm"), back.sm.get("bridge"))
	return nil
}

// waitLeader waits until every member agrees on a leader among them.
func waitLeader(ctx context.Context, members map[uint64]*member) (*member, error) {
	for _, m := range members {
		err := m.node.WaitFor(ctx, func(st node.Status) bool { return members[st.Lead] != nil })
		if err != nil {
			return nil, fmt.Errorf("member %d: no leader: %w", m.id, err)
		}
	}
	for _, m := range members {
		if l := members[m.node.Status().Lead]; l != nil && l.node.Status().Role == raft.RoleLeader {
			return l, nil
		}
	}
	return nil, fmt.Errorf("no member leads")
}
