package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bifrost-go/bifrost/raft"
)

// entryLog is a StateMachine that records every entry it is handed.
type entryLog struct {
	mu      sync.Mutex // protects entries
	entries []raft.Entry
}

func (l *entryLog) Apply(e raft.Entry) []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries = append(l.entries, e)
	return nil
}

func (l *entryLog) all() []raft.Entry {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]raft.Entry(nil), l.entries...)
}

// The state machine sees every committed entry, the leader's no-op and
// configuration changes too, with its index and term, so it always knows
// the index it is at.
func TestStateMachineSeesEveryEntry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := newMemNetwork()
		sm := &entryLog{}
		n, err := Start(Config{Raft: raft.Config{ID: 1, Voters: []uint64{1}}, Storage: NewMemoryStorage(),
			Transport: nw.transport(1), StateMachine: sm, TickInterval: testTick})
		if err != nil {
			t.Fatal(err)
		}
		defer n.Stop()
		ctx := t.Context()
		if err := n.WaitFor(ctx, func(st Status) bool { return st.Role == raft.RoleLeader }); err != nil {
			t.Fatal(err)
		}
		if _, _, err := n.Propose(ctx, []byte("a")); err != nil {
			t.Fatal(err)
		}
		if err := n.AddLearner(ctx, 2, "mem:2"); err != nil {
			t.Fatal(err)
		}
		last, _, err := n.Propose(ctx, []byte("b"))
		if err != nil {
			t.Fatal(err)
		}
		got := sm.all()
		wantTypes := []raft.EntryType{raft.EntryNoop, raft.EntryNormal, raft.EntryConfig, raft.EntryNormal}
		if len(got) != len(wantTypes) || got[len(got)-1].Index != last {
			t.Fatalf("applied %d entries up to %d, want %d up to %d", len(got), got[len(got)-1].Index, len(wantTypes), last)
		}
		term := n.Status().Term
		for i, e := range got {
			if e.Index != uint64(i+1) || e.Type != wantTypes[i] || e.Term != term {
				t.Errorf("entry %d: index %d type %v term %d, want index %d type %v term %d",
					i, e.Index, e.Type, e.Term, i+1, wantTypes[i], term)
			}
		}
		if !bytes.Equal(got[3].Data, []byte("b")) {
			t.Errorf("last command %q, want %q", got[3].Data, "b")
		}
	})
}

// Propose's errors say whether the command may still commit: those after
// which it may wrap ErrOutcomeUnknown, the others do not.
func TestProposeErrorsSayTheOutcome(t *testing.T) {
	t.Run("sentinels", func(t *testing.T) {
		for _, err := range []error{ErrLeadershipLost, ErrSnapshotted, errStoppedUnknown} {
			if !errors.Is(err, ErrOutcomeUnknown) {
				t.Errorf("%v does not wrap ErrOutcomeUnknown", err)
			}
		}
		if !errors.Is(errStoppedUnknown, ErrStopped) {
			t.Errorf("%v does not wrap ErrStopped", errStoppedUnknown)
		}
	})
	synctest.Test(t, func(t *testing.T) {
		c := newTestCluster(t, 3)
		lead := c.waitLeader(time.Second)
		follower := lead%3 + 1
		_, _, err := c.nodes[follower].Propose(t.Context(), []byte("x"))
		if !errors.Is(err, raft.ErrNotLeader) || errors.Is(err, ErrOutcomeUnknown) {
			t.Errorf("Propose on a follower: %v, want ErrNotLeader and a known outcome", err)
		}
		// With the followers cut off the command reaches the leader's log
		// but cannot commit: a caller that gives up cannot know.
		c.nw.isolate(lead)
		ctx, cancel := context.WithTimeout(t.Context(), 3*testTick)
		defer cancel()
		_, _, err = c.nodes[lead].Propose(ctx, []byte("y"))
		if !errors.Is(err, ErrOutcomeUnknown) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Propose whose context ended in the log: %v, want ErrOutcomeUnknown and DeadlineExceeded", err)
		}
		done, cancelDone := context.WithCancel(t.Context())
		cancelDone()
		_, _, err = c.nodes[lead].Propose(done, []byte("z"))
		if !errors.Is(err, context.Canceled) || errors.Is(err, ErrOutcomeUnknown) {
			t.Errorf("Propose with an ended context: %v, want Canceled and a known outcome", err)
		}
	})
}

// syncBuffer is an io.Writer safe for the node's logger.
type syncBuffer struct {
	mu sync.Mutex // protects b
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Status counts role and term changes and logs them at Info, and names
// the leader's address when the transport knows it.
func TestStatusCountsAndLogsRoleChanges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		logs := map[uint64]*syncBuffer{}
		c := newTestClusterWith(t, 3, func(cfg *Config) {
			logs[cfg.Raft.ID] = &syncBuffer{}
			cfg.Logger = slog.New(slog.NewTextHandler(logs[cfg.Raft.ID], nil))
		})
		old := c.waitLeader(time.Second)
		st := c.nodes[old].Status()
		if st.RoleChanges < 2 || st.TermChanges < 1 {
			t.Errorf("leader %d: %d role and %d term changes, want at least 2 (candidate, leader) and 1", old, st.RoleChanges, st.TermChanges)
		}
		follower := old%3 + 1
		if got, want := c.nodes[follower].Status().LeaderAddr, fmt.Sprintf("mem:%d", old); got != want {
			t.Errorf("follower %d: LeaderAddr %q, want %q", follower, got, want)
		}
		before := c.nodes[follower].Status()
		c.nw.isolate(old)
		lead := c.waitLeader(2 * time.Second)
		for lead == old {
			time.Sleep(testTick)
			lead = c.waitLeader(2 * time.Second)
		}
		after := c.nodes[follower].Status()
		if after.TermChanges <= before.TermChanges {
			t.Errorf("follower %d: term changes %d after the failover, %d before", follower, after.TermChanges, before.TermChanges)
		}
		if !strings.Contains(logs[lead].String(), "role=leader") {
			t.Errorf("new leader %d logged no role change to leader:\n%s", lead, logs[lead])
		}
	})
}

// smallTransport is a memTransport that carries messages of at most max
// bytes.
type smallTransport struct {
	Transport
	max int
}

func (t smallTransport) MaxMessageBytes() int { return t.max }

func TestConfigChecks(t *testing.T) {
	good := func() Config {
		return Config{Raft: raft.Config{ID: 1, Voters: []uint64{1}}, Storage: NewMemoryStorage(),
			Transport: newMemNetwork().transport(1), StateMachine: &recorder{}}
	}
	tests := []struct {
		name   string
		change func(*Config)
		ok     bool
	}{
		{"restart state set by hand", func(c *Config) { c.Raft.HardState = raft.HardState{Term: 2} }, false},
		{"entries set by hand", func(c *Config) { c.Raft.Entries = []raft.Entry{{Index: 1, Term: 1}} }, false},
		{"appends too large for the transport", func(c *Config) { c.Transport = smallTransport{c.Transport, 512 << 10} }, false},
		{"chunks too large for the transport", func(c *Config) {
			c.Transport = smallTransport{c.Transport, 2 << 20}
			c.SnapshotChunkBytes = 4 << 20
		}, false},
		{"messages that fit", func(c *Config) { c.Transport = smallTransport{c.Transport, 2 << 20} }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good()
			tt.change(&cfg)
			n, err := Start(cfg)
			if err == nil {
				n.Stop()
			}
			if tt.ok && err != nil || !tt.ok && !errors.Is(err, ErrBadConfig) {
				t.Errorf("Start: %v, want ok=%v or else ErrBadConfig", err, tt.ok)
			}
		})
	}
}

// Zero means the default, in one place: the core's.
func TestDefaultsAreTheCores(t *testing.T) {
	cfg, err := (Config{Raft: raft.Config{ID: 1, Voters: []uint64{1}}, Storage: NewMemoryStorage(),
		Transport: newMemNetwork().transport(1), StateMachine: &recorder{}}).withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Raft.SnapshotCatchUpEntries != 0 || cfg.Raft.ElectionTicks != 0 {
		t.Errorf("node filled raft's defaults itself: %+v", cfg.Raft)
	}
	if cfg.TickInterval != DefaultTickInterval || cfg.SnapshotEntries != DefaultSnapshotEntries {
		t.Errorf("node defaults: tick %v, snapshot entries %d", cfg.TickInterval, cfg.SnapshotEntries)
	}
}
