package sm_test

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/bifrost-go/bifrost/raft"
	"github.com/bifrost-go/bifrost/raft/node"
	"github.com/bifrost-go/bifrost/rpc"
	"github.com/bifrost-go/bifrost/sm"
)

// A group of one on loopback, for the examples: an rpc server, a node on
// memory storage and the host with the given machines.
func startOne(machines ...*sm.Machine) (client *sm.Client, stop func()) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	srv, _ := rpc.NewServer(rpc.Config{})
	pool, _ := rpc.NewPool(rpc.ClientConfig{})
	tr, _ := node.NewRPCTransport(node.RPCTransportConfig{Group: "example", Peers: map[uint64]string{}, Server: srv, Pool: pool})
	host, _ := sm.NewHost(sm.HostConfig{}, machines...)
	n, _ := node.Start(node.Config{Raft: raft.Config{ID: 1, Voters: []uint64{1}}, Storage: node.NewMemoryStorage(),
		Transport: tr, StateMachine: host, TickInterval: 5 * time.Millisecond})
	sm.Serve(srv, "example", host, n)
	go srv.Serve(ln)
	client, _ = sm.NewClient(sm.ClientConfig{Group: "example", Servers: []string{ln.Addr().String()}, Pool: pool})
	return client, func() { n.Stop(); tr.Close(); srv.Close(); pool.Close() }
}

// greeting is the state of a small machine: one string.
type greeting struct{ text string }

func (g *greeting) Snapshot() ([]byte, error) { return []byte(g.text), nil }
func (g *greeting) Restore(b []byte) error    { g.text = string(b); return nil }

// The seed's walkthrough: a machine with a command, a query and a
// subscription, called through a typed client.
var (
	setGreeting = sm.NewCommand[string, string]("greeter", "set")
	getGreeting = sm.NewQuery[struct{}, string]("greeter", "get")
	onGreeting  = sm.NewSubscription[struct{}, string]("greeter", "on_set")
)

func Example() {
	g := &greeting{}
	m := sm.NewMachine("greeter", g)
	sm.HandleCommand(m, setGreeting, func(a *sm.Apply, text string) (string, error) {
		old := g.text
		g.text = text
		return old, sm.Notify(a, onGreeting, struct{}{}, text)
	})
	sm.HandleQuery(m, getGreeting, func(*sm.Read, struct{}) (string, error) { return g.text, nil })
	client, stop := startOne(m)
	defer stop()
	ctx := context.Background()

	stream, _ := onGreeting.Open(ctx, client, struct{}{})
	defer stream.Close(ctx)
	setGreeting.Do(ctx, client, "hello")
	ev, _ := stream.Next(ctx)
	fmt.Println("event:", ev.Value)
	v, _ := getGreeting.Read(ctx, client, struct{}{})
	fmt.Println("read:", v)
	// Output:
	// event: hello
	// read: hello
}

func ExampleMap() {
	users := sm.NewMap[string, int]("users")
	client, stop := startOne(users.Machine())
	defer stop()
	ctx := context.Background()
	users.Insert(ctx, client, "ada", 36)
	_, inserted, _ := users.InsertIfAbsent(ctx, client, "ada", 37)
	swapped, _ := users.CompareAndSwap(ctx, client, "ada", 36, 37)
	age, ok, _ := users.Get(ctx, client, "ada")
	n, _ := users.Len(ctx, client)
	fmt.Println(inserted, swapped, age, ok, n)
	// Output: false true 37 true 1
}

func ExampleValue() {
	leader := sm.NewValue[string]("leader")
	client, stop := startOne(leader.Machine())
	defer stop()
	ctx := context.Background()
	leader.Set(ctx, client, "node-1")
	old, _ := leader.Set(ctx, client, "node-2")
	now, _ := leader.Get(ctx, client)
	fmt.Println(old, now)
	// Output: node-1 node-2
}

func ExampleNumber() {
	hits := sm.NewNumber("hits")
	client, stop := startOne(hits.Machine())
	defer stop()
	ctx := context.Background()
	hits.Add(ctx, client, 2)
	hits.Add(ctx, client, 3)
	v, _ := hits.GetAs(ctx, client, sm.Follower)
	fmt.Println(v)
	// Output: 5
}

// Read a value and follow its changes from exactly there: the first
// change is the one after the value read, so nothing is missed between.
func ExampleValue_ReadAndOpen() {
	config := sm.NewValue[string]("config")
	client, stop := startOne(config.Machine())
	defer stop()
	ctx := context.Background()
	config.Set(ctx, client, "v1")
	now, changes, _ := config.ReadAndOpen(ctx, client)
	defer changes.Close(ctx)
	config.Set(ctx, client, "v2")
	ev, _ := changes.Next(ctx)
	fmt.Println(now, "->", ev.Value.Old, "->", ev.Value.New)
	// Output: v1 -> v1 -> v2
}

// The seed's on_key_inserted(k): a subscriber names the key it wants.
func ExampleMap_ReadKeyAndOpen() {
	prices := sm.NewMap[string, int]("prices")
	client, stop := startOne(prices.Machine())
	defer stop()
	ctx := context.Background()
	prices.Insert(ctx, client, "tea", 3)
	v, ok, inserts, _ := prices.ReadKeyAndOpen(ctx, client, "tea")
	defer inserts.Close(ctx)
	prices.Insert(ctx, client, "coffee", 4) // another key: not for this stream
	prices.Insert(ctx, client, "tea", 5)
	ev, _ := inserts.Next(ctx)
	fmt.Println(v, ok, ev.Value)
	// Output: 3 true 5
}

// Read the whole map and follow every change of every key from there:
// the pairs are the map at the index where the stream starts.
func ExampleMap_ReadAllAndOpen() {
	stock := sm.NewMap[string, int]("stock")
	client, stop := startOne(stock.Machine())
	defer stop()
	ctx := context.Background()
	stock.Insert(ctx, client, "pens", 10)
	stock.Insert(ctx, client, "ink", 3)
	pairs, changes, _ := stock.ReadAllAndOpen(ctx, client)
	defer changes.Close(ctx)
	stock.Remove(ctx, client, "ink")
	stock.Insert(ctx, client, "paper", 50)
	fmt.Println(pairs)
	for range 2 {
		ev, _ := changes.Next(ctx)
		fmt.Printf("%+v\n", ev.Value)
	}
	// Output:
	// [{ink 3} {pens 10}]
	// {K:ink V:3 Removed:true}
	// {K:paper V:50 Removed:false}
}
