package bifrost

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path/filepath"
	"slices"
	"time"

	"github.com/bifrost-go/bifrost/raft/node"
	"github.com/bifrost-go/bifrost/rpc"
)

// This file holds how a node comes to be a member of its group and stops
// being one: bootstrapping with Peers, joining a running group through
// any member (Config.Join), leaving it (Leave), and the member file in
// Dir that makes a restart the same member whichever way it began.

// memberFileName is the member file's name in Config.Dir.
const memberFileName = "member.json"

// memberFile is what a node records in its Dir before raft first runs.
// raft/node must restart with the configuration it first started with
// (the log holds only the changes since), and a node that joined was
// not given it on its command line; the addresses of the members it
// started with are in no log entry either. So the file, not Config,
// decides the initial configuration on every restart.
type memberFile struct {
	Group string `json:"group"`
	ID    uint64 `json:"id"`
	// Voters and Learners are raft's initial configuration.
	Voters   []uint64 `json:"voters"`
	Learners []uint64 `json:"learners,omitempty"`
	// Addrs are the rpc addresses of the initial members, this one's
	// included.
	Addrs map[uint64]string `json:"addrs"`
	// Joining is set until the group has added this member: a node that
	// restarts with it set asks again.
	Joining bool `json:"joining,omitempty"`
	// Left is set once this member has left the group; it may not start
	// again from this Dir.
	Left bool `json:"left,omitempty"`
}

// parseMemberFile decodes and checks a member file.
func parseMemberFile(b []byte) (*memberFile, error) {
	var m memberFile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("member file: %w", err)
	}
	if dec.More() {
		return nil, errors.New("member file: data after the object")
	}
	if err := m.check(); err != nil {
		return nil, fmt.Errorf("member file: %w", err)
	}
	return &m, nil
}

func (m *memberFile) check() error {
	seen := map[uint64]bool{}
	for _, id := range slices.Concat(m.Voters, m.Learners) {
		if id == 0 || seen[id] {
			return fmt.Errorf("member %d is 0 or listed twice", id)
		}
		seen[id] = true
	}
	switch {
	case m.ID == 0:
		return errors.New("no id")
	case len(m.Voters) == 0:
		return errors.New("no voters")
	case !seen[m.ID]:
		return fmt.Errorf("member %d is not in its own configuration", m.ID)
	case m.Addrs[m.ID] == "":
		return fmt.Errorf("no address of member %d", m.ID)
	}
	return nil
}

// readMemberFile returns the member file in dir, or nil if there is none.
func readMemberFile(fsys node.FS, dir string) (*memberFile, error) {
	b, err := fsys.ReadFile(filepath.Join(dir, memberFileName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("bifrost: %w", err)
	}
	m, err := parseMemberFile(b)
	if err != nil {
		return nil, fmt.Errorf("bifrost: %s: %w", filepath.Join(dir, memberFileName), err)
	}
	return m, nil
}

// writeMemberFile replaces the member file in dir atomically and durably:
// a crash leaves the old file or the new one, never a torn one. It goes
// through the same file system as the log, so a test's crash treats the
// two alike.
func writeMemberFile(fsys node.FS, dir string, m *memberFile) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if err := fsys.MkdirAll(dir); err != nil {
		return fmt.Errorf("bifrost: %w", err)
	}
	final := filepath.Join(dir, memberFileName)
	tmp := final + ".tmp"
	if err := writeSynced(fsys, tmp, append(b, '\n')); err != nil {
		return fmt.Errorf("bifrost: member file: %w", err)
	}
	if err := fsys.Rename(tmp, final); err != nil {
		return fmt.Errorf("bifrost: member file: %w", err)
	}
	if err := fsys.SyncDir(dir); err != nil {
		return fmt.Errorf("bifrost: sync %s: %w", dir, err)
	}
	return nil
}

// writeSynced writes b to a new file at path, replacing what an earlier
// attempt that crashed left there, and syncs it.
func writeSynced(fsys node.FS, path string, b []byte) error {
	if err := fsys.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	f, err := fsys.Create(path)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(b, 0); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// ErrLeft is Start's error for a Dir whose member has left its group:
// the group no longer counts it, so it cannot serve as that member again.
var ErrLeft = errors.New("bifrost: this member left its group; empty Dir to join it as a new member")

// initialMembers decides the configuration raft starts with: the member
// file's if Dir has one, else the group's as a member at Config.Join
// describes it (this node a learner), else Config.Peers. The first start
// on a Dir writes the file before raft writes anything.
func (n *Node) initialMembers(ctx context.Context) (*memberFile, error) {
	cfg := &n.cfg
	if cfg.Dir != "" {
		m, err := readMemberFile(n.fs(), cfg.Dir)
		switch {
		case err != nil:
			return nil, err
		case m != nil && m.Left:
			return nil, ErrLeft
		case m != nil && (m.ID != cfg.ID || m.Group != cfg.Group):
			return nil, fmt.Errorf("bifrost: %s belongs to member %d of group %q, not %d of %q",
				cfg.Dir, m.ID, m.Group, cfg.ID, cfg.Group)
		case m != nil:
			return m, nil
		}
	}
	var m *memberFile
	if cfg.Join != "" {
		var err error
		if m, err = n.describeGroup(ctx); err != nil {
			return nil, err
		}
	} else if len(cfg.Peers) == 0 {
		return nil, fmt.Errorf("bifrost: %s holds no member: Config.Peers or Config.Join is required", cfg.Dir)
	} else {
		m = &memberFile{Group: cfg.Group, ID: cfg.ID, Voters: slices.Sorted(maps.Keys(cfg.Peers)), Addrs: maps.Clone(cfg.Peers)}
	}
	if cfg.Dir != "" {
		if err := writeMemberFile(n.fs(), cfg.Dir, m); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// groupInfo is the answer of a member asked to describe its group.
type groupInfo struct {
	Voters   []uint64          `json:"voters"`
	Learners []uint64          `json:"learners,omitempty"`
	Addrs    map[uint64]string `json:"addrs"`
}

// clusterService names the rpc service of group's membership in raft.
func clusterService(group string) string { return "bifrost." + group }

// serveCluster registers the service a joining node asks for the group's
// configuration.
func (n *Node) serveCluster() error {
	svc := rpc.NewService(clusterService(n.cfg.Group))
	if _, err := rpc.Register(svc, "describe", n.describe); err != nil {
		return err
	}
	return n.server.AddService(svc)
}

// describe answers with the group's configuration as this member knows
// it and every member's address: a joining node needs them to start.
func (n *Node) describe(ctx context.Context, _ []byte) ([]byte, error) {
	voters, learners, err := n.raft.Configuration(ctx)
	if err != nil {
		return nil, err
	}
	info := groupInfo{Voters: voters, Learners: learners, Addrs: map[uint64]string{n.cfg.ID: n.advertise}}
	for _, id := range slices.Concat(voters, learners) {
		if addr, ok := n.transport.Addr(id); ok && id != n.cfg.ID {
			info.Addrs[id] = addr
		}
	}
	return json.Marshal(info)
}

// describeGroup asks the member at Config.Join for the group's
// configuration, once a second until it answers or ctx ends, and returns
// the member file this node starts with: the group's members, and this
// node a learner.
func (n *Node) describeGroup(ctx context.Context) (*memberFile, error) {
	cfg := &n.cfg
	describe := rpc.NewMethod[[]byte, []byte](clusterService(cfg.Group), "describe")
	var info groupInfo
	for {
		c, err := n.pool.Client(ctx, cfg.Join)
		var b []byte
		if err == nil {
			b, err = describe.Call(ctx, c, nil)
		}
		if err == nil {
			if err = json.Unmarshal(b, &info); err == nil {
				break
			}
			return nil, fmt.Errorf("bifrost: join %s: undecodable answer: %w", cfg.Join, err)
		}
		if errors.Is(err, rpc.ErrServiceNotFound) {
			return nil, fmt.Errorf("bifrost: join %s: it serves no group %q", cfg.Join, cfg.Group)
		}
		cfg.Logger.Info("bifrost: join: no answer yet", "from", cfg.Join, "err", err)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("bifrost: join %s: %w (last: %v)", cfg.Join, ctx.Err(), err)
		case <-time.After(time.Second):
		}
	}
	if slices.Contains(info.Voters, cfg.ID) || slices.Contains(info.Learners, cfg.ID) {
		return nil, fmt.Errorf("bifrost: join %s: id %d is a member of group %q already; choose another id",
			cfg.Join, cfg.ID, cfg.Group)
	}
	m := &memberFile{Group: cfg.Group, ID: cfg.ID, Voters: info.Voters, Learners: append(info.Learners, cfg.ID),
		Addrs: info.Addrs, Joining: true}
	m.Addrs[cfg.ID] = n.advertise
	if err := m.check(); err != nil {
		return nil, fmt.Errorf("bifrost: join %s: %w", cfg.Join, err)
	}
	return m, nil
}

// finishJoin asks the group to add this node, if it started joining and
// has not been added yet, and records that it has. The leader promotes it
// to voter once it has caught up.
func (n *Node) finishJoin(ctx context.Context) error {
	if !n.member.Joining {
		return nil
	}
	if err := n.raft.Join(ctx, n.advertise); err != nil {
		return fmt.Errorf("bifrost: join: %w", err)
	}
	m := *n.member
	m.Joining = false
	if n.cfg.Dir != "" {
		if err := writeMemberFile(n.fs(), n.cfg.Dir, &m); err != nil {
			return err
		}
	}
	n.member = &m
	return nil
}

// Leave removes this member from its group for good: a leader hands its
// leadership over first. Once it returns, the group no longer counts
// this member, the member file records that it left, and Left is
// closed; Close the node next. Starting again from the same Dir fails
// with ErrLeft.
func (n *Node) Leave(ctx context.Context) error {
	if err := n.raft.Leave(ctx); err != nil {
		return fmt.Errorf("bifrost: leave: %w", err)
	}
	if n.cfg.Dir != "" {
		m := *n.member
		m.Left = true
		if err := writeMemberFile(n.fs(), n.cfg.Dir, &m); err != nil {
			return err
		}
	}
	n.leftOnce.Do(func() { close(n.left) })
	return nil
}

// Left is closed once Leave has removed this member from its group.
func (n *Node) Left() <-chan struct{} { return n.left }
