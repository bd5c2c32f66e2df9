package bifrost

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/bifrost-go/bifrost/membership"
	"github.com/bifrost-go/bifrost/raft"
	"github.com/bifrost-go/bifrost/raft/node"
	"github.com/bifrost-go/bifrost/raft/wal"
	"github.com/bifrost-go/bifrost/rpc"
	"github.com/bifrost-go/bifrost/sm"
)

// KV is the built-in map every Node's group carries: string keys, byte
// values.
var KV = sm.NewMap[string, []byte]("kv")

// Config configures a Node. It is composed of the parts' own configs; the
// zero value of each field means its part's default.
type Config struct {
	// ID is this member's raft id, unique in the group. Required.
	ID uint64
	// Listen is the rpc address to listen on (host:port; port 0 picks
	// one). Required unless Listener is set.
	Listen string
	// Listener, if set, is the listener to serve rpc on instead: the
	// node owns it from Start on. It lets a caller learn every member's
	// address before any starts.
	Listener net.Listener
	// Dir holds the write-ahead log and snapshots; the node recovers
	// from it on restart. Empty keeps everything in memory.
	Dir string
	// FS is the file system of everything in Dir: the write-ahead log,
	// the snapshot files and the member file. Default (nil): the
	// operating system's. Tests inject one that can crash, losing what
	// was not synced.
	FS node.FS
	// Peers maps every voter's id, this member's included, to its rpc
	// address: the group to bootstrap. This member's entry may be empty
	// or have port 0: its own address is then the listener's. On a
	// restart from Dir the member file there decides the group this
	// member started in, and Peers, if given, only updates addresses.
	// Required, or Join, unless Dir holds a member already.
	Peers map[uint64]string
	// Join is the rpc address of any member of a running group for this
	// node to join instead of bootstrapping one: Start asks it for the
	// group's members, starts as a learner and returns once the group
	// has added it; the leader makes it a voter when it has caught up.
	// The node's ID must be new to the group. Ignored on a restart from
	// a Dir that holds a member.
	Join string
	// Advertise is the rpc address other members reach this one at, if
	// not the one in Peers or the listener's (which may be a wildcard
	// such as [::]:7000).
	Advertise string
	// Group names the raft group, its sm service and its membership.
	// Default "bifrost".
	Group string
	// Machines are the application's state machines, carried beside the
	// built-in ones (KV and membership).
	Machines []*sm.Machine

	Raft         raft.Config // ID, Voters and Learners are filled in
	TickInterval time.Duration
	// SnapshotEntries and SnapshotBytes are how many applied entries or
	// bytes of commands since the last snapshot make the node take one
	// and compact its log (node.Config's; zero means its default).
	SnapshotEntries, SnapshotBytes int
	Host                           sm.HostConfig
	Membership                     membership.Config // Group is filled in
	RPC                            rpc.Config        // the server, TLS included
	Client                         rpc.ClientConfig  // the pools to peers, TLS included
	// Logger receives what every part has to say. Default: discard.
	Logger *slog.Logger
}

// DefaultGroup is the group of a Config that names none.
const DefaultGroup = "bifrost"

// Node is one member of a bifrost cluster, wired from its parts in the
// order the seed assembles them by hand: an rpc server, a raft group on
// it (node.RPCTransport over a WAL or memory), the sm host with the
// built-in machines and the application's, the group's sm service, and
// membership's heartbeat service. Close unwinds them in reverse.
type Node struct {
	cfg       Config
	ln        net.Listener
	server    *rpc.Server
	pool, ctl *rpc.Pool
	transport *node.RPCTransport
	wal       *wal.WAL
	host      *sm.Host
	raft      *node.Node
	sm        *sm.Server
	members   *membership.Service
	served    chan error  // Serve's return, once it runs
	advertise string      // this member's rpc address, as others reach it
	member    *memberFile // how it became a member; written only by Start
	left      chan struct{}
	leftOnce  sync.Once
	closeOnce sync.Once
	closeErr  error

	mu      sync.Mutex // protects closers
	closers []func() error
}

// closeLater has Close call f first.
func (n *Node) closeLater(f func() error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.closers = append(n.closers, f)
}

// Start starts a node: it listens, recovers from cfg.Dir if it holds
// state, and joins its group's election. It returns once every part
// runs, without waiting for a leader.
func Start(ctx context.Context, cfg Config) (*Node, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, left: make(chan struct{})}
	if err := n.start(ctx); err != nil {
		n.Close()
		return nil, err
	}
	n.served = make(chan error, 1)
	go func() { n.served <- n.server.Serve(n.ln) }()
	if err := n.finishJoin(ctx); err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

// check validates cfg and fills in the defaults it decides.
func (cfg *Config) check() error {
	switch {
	case cfg.ID == 0:
		return errors.New("bifrost: Config.ID is required")
	case cfg.Listen == "" && cfg.Listener == nil:
		return errors.New("bifrost: Config.Listen or Config.Listener is required")
	case len(cfg.Peers) == 0 && cfg.Join == "" && cfg.Dir == "":
		return errors.New("bifrost: Config.Peers or Config.Join is required")
	case len(cfg.Peers) > 0 && cfg.Join != "":
		return errors.New("bifrost: Config.Peers and Config.Join: give one")
	}
	if _, ok := cfg.Peers[cfg.ID]; !ok && len(cfg.Peers) > 0 {
		return fmt.Errorf("bifrost: Config.Peers does not name this member, %d", cfg.ID)
	}
	cfg.Group = cmp.Or(cfg.Group, DefaultGroup)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.Peers = maps.Clone(cfg.Peers)
	return nil
}

func (n *Node) start(ctx context.Context) error {
	cfg := &n.cfg
	var err error
	if n.ln = cfg.Listener; n.ln == nil {
		var lc net.ListenConfig
		if n.ln, err = lc.Listen(ctx, "tcp", cfg.Listen); err != nil {
			return fmt.Errorf("bifrost: listen: %w", err)
		}
	}
	n.advertise = cfg.Advertise
	if _, port, _ := net.SplitHostPort(cfg.Peers[cfg.ID]); n.advertise == "" && port != "" && port != "0" {
		n.advertise = cfg.Peers[cfg.ID]
	}
	n.advertise = cmp.Or(n.advertise, n.ln.Addr().String()) // its own address, as it turned out
	if len(cfg.Peers) > 0 {
		cfg.Peers[cfg.ID] = n.advertise
	}
	cfg.RPC.Logger = cmp.Or(cfg.RPC.Logger, cfg.Logger)
	if n.server, err = rpc.NewServer(cfg.RPC); err != nil {
		return err
	}
	if n.pool, err = rpc.NewPool(cfg.Client); err != nil {
		return err
	}
	if n.ctl, err = rpc.NewPool(cfg.Client); err != nil {
		return err
	}
	if n.member, err = n.initialMembers(ctx); err != nil {
		return err
	}
	// The addresses given now are newer than those recorded.
	peers := map[uint64]string{}
	for id, addr := range n.member.Addrs {
		peers[id] = cmp.Or(cfg.Peers[id], addr)
	}
	cfg.Peers, peers[cfg.ID] = peers, n.advertise
	if err := n.startRaft(); err != nil {
		return err
	}
	if err := n.serveCluster(); err != nil {
		return err
	}
	if n.sm, err = sm.Serve(n.server, cfg.Group, n.host, n.raft); err != nil {
		return err
	}
	mcfg := cfg.Membership
	mcfg.Group = cfg.Group
	mcfg.Logger = cmp.Or(mcfg.Logger, cfg.Logger)
	n.members, err = membership.Serve(n.server, n.sm, mcfg)
	return err
}

// startRaft starts the transport, the storage, the host and the raft node.
func (n *Node) startRaft() error {
	cfg := &n.cfg
	peers := maps.Clone(cfg.Peers)
	delete(peers, cfg.ID)
	var err error
	n.transport, err = node.NewRPCTransport(node.RPCTransportConfig{Group: cfg.Group, Peers: peers,
		Server: n.server, Pool: n.pool, ControlPool: n.ctl, Logger: cfg.Logger})
	if err != nil {
		return err
	}
	machines := append([]*sm.Machine{KV.Machine(), membership.Machine()}, cfg.Machines...)
	cfg.Host.Logger = cmp.Or(cfg.Host.Logger, cfg.Logger)
	if n.host, err = sm.NewHost(cfg.Host, machines...); err != nil {
		return err
	}
	rc := cfg.Raft
	rc.ID, rc.Voters, rc.Learners = cfg.ID, n.member.Voters, n.member.Learners
	nc := node.Config{Raft: rc, Transport: n.transport, StateMachine: n.host, TickInterval: cfg.TickInterval,
		SnapshotEntries: cfg.SnapshotEntries, SnapshotBytes: cfg.SnapshotBytes, Logger: cfg.Logger}
	if cfg.Dir == "" {
		nc.Storage = node.NewMemoryStorage()
	} else {
		if n.wal, err = wal.Open(wal.Config{Dir: filepath.Join(cfg.Dir, "wal"), FS: cfg.FS}); err != nil {
			return err
		}
		nc.Storage, nc.SnapshotDir = node.NewWALStorage(n.wal), filepath.Join(cfg.Dir, "snap")
		nc.SnapshotFS = cfg.FS
	}
	n.raft, err = node.Start(nc)
	return err
}

// fs returns the file system of Dir: Config.FS, or the operating
// system's.
func (n *Node) fs() node.FS {
	if n.cfg.FS != nil {
		return n.cfg.FS
	}
	return node.OSFS()
}

// Close stops the node, its parts in the reverse order of Start; calls
// after the first return its result. It does not leave the group: a
// node closed and started again from its Dir is the same member.
func (n *Node) Close() error {
	n.closeOnce.Do(func() { n.closeErr = n.close() })
	return n.closeErr
}

func (n *Node) close() error {
	var errs []error
	n.mu.Lock()
	closers := n.closers
	n.closers = nil
	n.mu.Unlock()
	for _, f := range closers {
		errs = append(errs, f())
	}
	if n.members != nil {
		errs = append(errs, n.members.Close())
	}
	if n.raft != nil {
		errs = append(errs, n.raft.Stop())
	}
	if n.transport != nil {
		errs = append(errs, n.transport.Close())
	}
	if n.server != nil {
		errs = append(errs, n.server.Close())
	}
	for _, p := range []*rpc.Pool{n.pool, n.ctl} {
		if p != nil {
			errs = append(errs, p.Close())
		}
	}
	if n.wal != nil {
		errs = append(errs, n.wal.Close())
	}
	if n.served != nil {
		if err := <-n.served; !errors.Is(err, rpc.ErrServerClosed) {
			errs = append(errs, err)
		}
	} else if n.ln != nil {
		n.ln.Close()
	}
	return errors.Join(errs...)
}

// Addr returns the rpc address the node listens on.
func (n *Node) Addr() string { return n.ln.Addr().String() }

// Advertise returns the rpc address the other members reach this one at.
func (n *Node) Advertise() string { return n.advertise }

// Group returns the name of the node's group.
func (n *Node) Group() string { return n.cfg.Group }

// Peers returns the rpc addresses of the members the node started with,
// by id, its own included.
func (n *Node) Peers() map[uint64]string { return maps.Clone(n.cfg.Peers) }

// RPC returns the node's rpc server, where more services may be added.
func (n *Node) RPC() *rpc.Server { return n.server }

// Raft returns the node's raft member.
func (n *Node) Raft() *node.Node { return n.raft }

// Host returns the node's sm host.
func (n *Node) Host() *sm.Host { return n.host }

// SM returns the group's sm service on this node.
func (n *Node) SM() *sm.Server { return n.sm }

// Membership returns the node's membership service.
func (n *Node) Membership() *membership.Service { return n.members }

// NewClient returns an sm client of the node's group that reaches every
// member, this one in process, through a pool of its own; close both
// when done, the client first.
func (n *Node) NewClient() (*sm.Client, *rpc.Pool, error) {
	pool, err := rpc.NewPool(n.cfg.Client)
	if err != nil {
		return nil, nil, err
	}
	pool.SetLocal(n.Addr(), n.server)
	addrs := []string{n.Addr()}
	for _, id := range slices.Sorted(maps.Keys(n.cfg.Peers)) {
		if id != n.cfg.ID {
			addrs = append(addrs, n.cfg.Peers[id])
		}
	}
	c, err := sm.NewClient(sm.ClientConfig{Group: n.cfg.Group, Servers: addrs, Pool: pool})
	if err != nil {
		pool.Close()
		return nil, nil, err
	}
	return c, pool, nil
}
