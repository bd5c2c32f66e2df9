package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/bifrost-go/bifrost"
	"github.com/bifrost-go/bifrost/membership"
)

// usageError is a command line that cannot run: main exits 2 on it.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }

// nodeFlags are the flags of `bifrost node`.
type nodeFlags struct {
	id              uint64
	dir             string
	rpc, http       string
	advertise       string
	peers           map[uint64]string
	join            string
	group, name     string
	weight          uint64
	snapshotEntries int
}

func parseNodeFlags(args []string, stderr io.Writer) (nodeFlags, error) {
	var f nodeFlags
	fs := flag.NewFlagSet("node", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Uint64Var(&f.id, "id", 0, "this node's raft id, unique in the cluster (required)")
	fs.StringVar(&f.dir, "dir", "", "data directory: the WAL and snapshots, recovered on restart (empty: memory only)")
	fs.StringVar(&f.rpc, "rpc", "127.0.0.1:7000", "rpc address to listen on")
	fs.StringVar(&f.http, "http", "", "HTTP API address to listen on (empty: none)")
	fs.StringVar(&f.advertise, "advertise", "", "rpc address the other nodes reach this one at (default: -peers' entry, else -rpc)")
	peers := fs.String("peers", "", "every voter as id=host:port,... this node included, to bootstrap a cluster")
	fs.StringVar(&f.join, "join", "", "rpc address of any node of a running cluster to join, instead of -peers")
	fs.IntVar(&f.snapshotEntries, "snapshot-entries", 0, "applied entries that make the node snapshot and compact its log (default 10000)")
	fs.StringVar(&f.group, "group", "", "a membership group this node joins as a server (created if missing)")
	fs.StringVar(&f.name, "name", "", "this node's member name in --group (default node-<id>)")
	fs.Uint64Var(&f.weight, "weight", 1, "this node's weight in --group")
	if err := fs.Parse(args); err != nil {
		return f, usageError{err}
	}
	switch {
	case fs.NArg() > 0:
		return f, usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	case f.id == 0:
		return f, usageError{errors.New("flag -id: required, and not 0")}
	case f.weight == 0:
		return f, usageError{errors.New("flag -weight: must be at least 1")}
	case f.snapshotEntries < 0:
		return f, usageError{errors.New("flag -snapshot-entries: must not be negative")}
	case *peers != "" && f.join != "":
		return f, usageError{errors.New("flags -peers and -join: give one")}
	case *peers == "" && f.join == "" && f.dir == "":
		return f, usageError{errors.New("flag -peers or -join: one is required (or a -dir the node ran in)")}
	}
	if f.join != "" {
		if _, _, err := net.SplitHostPort(f.join); err != nil {
			return f, usageError{fmt.Errorf("flag -join: %w", err)}
		}
	}
	if *peers != "" {
		var err error
		if f.peers, err = parsePeers(*peers); err != nil {
			return f, usageError{fmt.Errorf("flag -peers: %w", err)}
		}
		if _, ok := f.peers[f.id]; !ok {
			return f, usageError{fmt.Errorf("flag -peers: names no node %d (this one)", f.id)}
		}
	}
	if f.name == "" {
		f.name = fmt.Sprintf("node-%d", f.id)
	}
	return f, nil
}

// parsePeers parses id=host:port,...
func parsePeers(s string) (map[uint64]string, error) {
	peers := map[uint64]string{}
	for _, p := range strings.Split(s, ",") {
		idText, addr, ok := strings.Cut(p, "=")
		id, err := strconv.ParseUint(idText, 10, 64)
		if !ok || err != nil || id == 0 {
			return nil, fmt.Errorf("%q is not id=host:port", p)
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, fmt.Errorf("%q: %w", p, err)
		}
		if _, dup := peers[id]; dup {
			return nil, fmt.Errorf("node %d named twice", id)
		}
		peers[id] = addr
	}
	return peers, nil
}

// runNode runs one node until ctx ends: its rpc server, raft member and
// services, the HTTP API if asked for, and its membership in a group if
// asked for. It prints the addresses it listens on.
func runNode(ctx context.Context, args []string, out, stderr io.Writer) error {
	f, err := parseNodeFlags(args, stderr)
	if err != nil {
		return err
	}
	mc := membership.Config{}
	n, err := bifrost.Start(ctx, bifrost.Config{ID: f.id, Listen: f.rpc, Advertise: f.advertise, Dir: f.dir,
		Peers: f.peers, Join: f.join, SnapshotEntries: f.snapshotEntries, Membership: mc})
	if err != nil {
		return err
	}
	defer n.Close()
	fmt.Fprintf(out, "node %d: rpc on %s\n", f.id, n.Addr())
	if f.join != "" {
		fmt.Fprintf(out, "node %d: joined through %s\n", f.id, f.join)
	}
	// The group first: once the API answers, the node is in its group.
	if f.group != "" {
		leave, err := joinGroup(ctx, n, f, mc)
		if err != nil {
			return err
		}
		defer leave()
	}
	if f.http != "" {
		var groups []string
		if f.group != "" {
			groups = []string{f.group}
		}
		stop, err := serveHTTP(n, f.http, groups, out)
		if err != nil {
			return err
		}
		defer stop()
	}
	select {
	case <-ctx.Done():
		fmt.Fprintf(out, "node %d: stopping\n", f.id)
	case <-n.Left():
		fmt.Fprintf(out, "node %d: left the cluster; stopping\n", f.id)
	}
	return nil
}

func serveHTTP(n *bifrost.Node, addr string, groups []string, out io.Writer) (stop func(), err error) {
	api, err := bifrost.NewHTTP(n, bifrost.HTTPConfig{AllowLeave: true, Groups: groups})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		api.Close()
		return nil, fmt.Errorf("http: %w", err)
	}
	srv := &http.Server{Handler: api, ReadHeaderTimeout: 10 * time.Second}
	srv.RegisterOnShutdown(api.Close) // ends open watches at once
	done := make(chan struct{})
	go func() { srv.Serve(ln); close(done) }()
	fmt.Fprintf(out, "http on %s\n", ln.Addr())
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		<-done
		api.Close()
	}, nil
}

// joinGroup registers this node as a member of the cluster and joins
// f.group with f.weight, creating the group if needed; leave undoes it.
func joinGroup(ctx context.Context, n *bifrost.Node, f nodeFlags, mc membership.Config) (leave func(), err error) {
	c, pool, err := n.NewClient()
	if err != nil {
		return nil, err
	}
	obs := membership.NewObserver(c)
	if err := obs.CreateGroup(ctx, f.group); err != nil {
		pool.Close()
		return nil, err
	}
	mc.Group, mc.Pool = n.Group(), pool
	for _, addr := range n.Peers() {
		mc.Servers = append(mc.Servers, addr)
	}
	h, err := membership.Join(ctx, c, f.name, n.Advertise(), mc)
	if err == nil {
		err = h.JoinGroupWeighted(ctx, f.group, f.weight)
	}
	if err != nil {
		pool.Close()
		return nil, err
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		h.Close(ctx)
		c.Close(ctx)
		pool.Close()
	}, nil
}
