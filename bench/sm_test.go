package bench

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/bifrost-go/bifrost"
	"github.com/bifrost-go/bifrost/raft/node"
	"github.com/bifrost-go/bifrost/rpc"
	"github.com/bifrost-go/bifrost/sm"
)

// benchPut is a command that keeps nothing: what is measured is the
// framework around it.
var benchPut = sm.NewCommand[[]byte, []byte]("bench", "put")

type emptyState struct{}

func (emptyState) Snapshot() ([]byte, error) { return nil, nil }
func (emptyState) Restore([]byte) error      { return nil }

func benchMachine() *sm.Machine {
	m := sm.NewMachine("bench", emptyState{})
	sm.HandleCommand(m, benchPut, func(_ *sm.Apply, b []byte) ([]byte, error) { return nil, nil })
	return m
}

// BenchmarkSMCommand measures a typed command through sm (session,
// sequence number, dedupe, envelope, leader following) against a raw
// node.Propose of the same 128 bytes, both called over one rpc hop to the
// leader of a 3-member loopback group on fsync'd WALs.
func BenchmarkSMCommand(b *testing.B) {
	for _, callers := range []int{1, 64} {
		b.Run(fmt.Sprintf("raw/callers=%d", callers), func(b *testing.B) { benchRaw(b, callers) })
		b.Run(fmt.Sprintf("sm/callers=%d", callers), func(b *testing.B) { benchSM(b, callers) })
	}
}

// benchRaw stays on hand-wired members: it is the reference, raft
// without sm, that benchSM's overhead is measured against.
func benchRaw(b *testing.B, callers int) {
	members, lead := startGroup(b, func() node.StateMachine { return nopSM{} }, nil)
	propose := rpc.NewMethod[[]byte, []byte]("raw", "propose")
	var addr string
	for _, m := range members {
		svc := rpc.NewService("raw")
		n := m.node
		if _, err := rpc.Register(svc, "propose", func(ctx context.Context, req []byte) ([]byte, error) {
			_, v, err := n.Propose(ctx, req)
			return v, err
		}); err != nil {
			b.Fatal(err)
		}
		if err := m.server.AddService(svc); err != nil {
			b.Fatal(err)
		}
		if m.node == lead {
			addr = m.addr
		}
	}
	pool, err := rpc.NewPool(rpc.ClientConfig{})
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	cmd := bytes.Repeat([]byte{'x'}, payloadSize)
	runParallel(b, callers, func(ctx context.Context) error {
		c, err := pool.Client(ctx, addr)
		if err != nil {
			return err
		}
		_, err = propose.Call(ctx, c, cmd)
		return err
	})
}

func benchSM(b *testing.B, callers int) {
	nodes := startNodes(b, func(cfg *bifrost.Config) {
		cfg.Group, cfg.Machines = "bench", []*sm.Machine{benchMachine()}
	})
	pool, err := rpc.NewPool(rpc.ClientConfig{})
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	client, err := sm.NewClient(sm.ClientConfig{Group: "bench", Servers: addrsOf(nodes), Pool: pool})
	if err != nil {
		b.Fatal(err)
	}
	cmd := bytes.Repeat([]byte{'x'}, payloadSize)
	runParallel(b, callers, func(ctx context.Context) error {
		_, err := benchPut.Do(ctx, client, cmd)
		return err
	})
}
