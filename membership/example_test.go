package membership_test

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/bifrost-go/bifrost/membership"
	"github.com/bifrost-go/bifrost/raft"
	"github.com/bifrost-go/bifrost/raft/node"
	"github.com/bifrost-go/bifrost/rpc"
	"github.com/bifrost-go/bifrost/sm"
)

// startOne runs a raft group of one on loopback, as every member of a
// real group would run: the membership machine in the sm host, sm served
// on the rpc server, then membership served beside it. It returns a
// client of the group and the Config members join with.
func startOne() (*sm.Client, membership.Config, func()) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	srv, _ := rpc.NewServer(rpc.Config{})
	pool, _ := rpc.NewPool(rpc.ClientConfig{})
	tr, _ := node.NewRPCTransport(node.RPCTransportConfig{Group: "example", Peers: map[uint64]string{}, Server: srv, Pool: pool})
	host, _ := sm.NewHost(sm.HostConfig{}, membership.Machine())
	n, _ := node.Start(node.Config{Raft: raft.Config{ID: 1, Voters: []uint64{1}}, Storage: node.NewMemoryStorage(),
		Transport: tr, StateMachine: host, TickInterval: 5 * time.Millisecond})
	s, _ := sm.Serve(srv, "example", host, n)
	svc, _ := membership.Serve(srv, s, membership.Config{Group: "example"})
	go srv.Serve(ln)
	servers := []string{ln.Addr().String()}
	client, _ := sm.NewClient(sm.ClientConfig{Group: "example", Servers: servers, Pool: pool})
	cfg := membership.Config{Group: "example", Servers: servers, Pool: pool}
	return client, cfg, func() {
		client.Close(context.Background())
		svc.Close()
		n.Stop()
		tr.Close()
		srv.Close()
		pool.Close()
	}
}

// A server registers, joins a group and, closing, leaves.
func ExampleJoin() {
	client, cfg, stop := startOne()
	defer stop()
	ctx := context.Background()
	obs := membership.NewObserver(client)
	obs.CreateGroup(ctx, "cache")

	m, err := membership.Join(ctx, client, "cache-1", "10.0.0.1:7000", cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	m.JoinGroup(ctx, "cache")
	members, _, _ := obs.Members(ctx, "cache", true)
	fmt.Println(members[0].Name, members[0].Addr, members[0].Incarnation, members[0].Online)

	m.Close(ctx) // leaves the cluster
	members, _, _ = obs.Members(ctx, "cache", false)
	fmt.Println(len(members), "members")
	// Output:
	// cache-1 10.0.0.1:7000 1 true
	// 0 members
}

// A restarted server joins again under its name: the same member, a new
// incarnation, its new address.
func ExampleJoin_restart() {
	client, cfg, stop := startOne()
	defer stop()
	ctx := context.Background()
	before, _ := membership.Join(ctx, client, "cache-1", "10.0.0.1:7000", cfg)
	after, _ := membership.Join(ctx, client, "cache-1", "10.0.0.2:7000", cfg)
	<-before.Done() // its heartbeats are refused now
	fmt.Println(after.ID() == before.ID(), after.Member().Incarnation, before.Err())
	all, _, _ := membership.NewObserver(client).All(ctx)
	fmt.Println(len(all), all[0].Addr)
	after.Close(ctx)
	// Output:
	// true 2 membership: stale incarnation
	// 1 10.0.0.2:7000
}

// An observer reads a group and follows its changes from exactly there.
func ExampleObserver_WatchGroup() {
	client, cfg, stop := startOne()
	defer stop()
	ctx := context.Background()
	obs := membership.NewObserver(client)
	obs.CreateGroup(ctx, "cache")

	members, _, events, _ := obs.WatchGroup(ctx, "cache")
	defer events.Close(ctx)
	fmt.Println(len(members), "members")

	m, _ := membership.Join(ctx, client, "cache-1", "10.0.0.1:7000", cfg)
	m.JoinGroup(ctx, "cache")
	ev, _ := events.Next(ctx)
	fmt.Println(ev.Value.Kind, ev.Value.Member.Name)
	leader, _, _ := obs.GroupLeader(ctx, "cache")
	fmt.Println("leader:", leader.Name)

	m.Close(ctx)
	ev, _ = events.Next(ctx)
	fmt.Println(ev.Value.Kind, ev.Value.Member.Name)
	// Output:
	// 0 members
	// joined cache-1
	// leader: cache-1
	// left cache-1
}
