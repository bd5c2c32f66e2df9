package node

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/bifrost-go/bifrost/raft"
)

// hashSM keeps the index, length and checksum of every command it
// applies, so a test can compare what members applied without holding
// megabytes of commands. The checksum is CRC-32C, which hardware computes
// at many gigabytes a second: Apply runs on the driver goroutine, and a
// slow one would delay the leader's heartbeats.
type hashSM struct {
	mu      sync.Mutex // protects applied
	applied []appliedHash
}

type appliedHash struct {
	index uint64
	size  int
	sum   uint32
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func (h *hashSM) Apply(e raft.Entry) []byte {
	if e.Type != raft.EntryNormal {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.applied = append(h.applied, appliedHash{e.Index, len(e.Data), crc32.Checksum(e.Data, castagnoli)})
	return nil
}

func (h *hashSM) state() []appliedHash {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.applied)
}

// loadCommand is caller c's command of round r, size bytes long, each
// one different: a block of its own repeated, which costs a copy rather
// than CPU the driver goroutines need.
func loadCommand(c, r, size int) []byte {
	cmd := make([]byte, size)
	n := 0
	for i := uint64(0); n < min(size, 4096); i++ {
		n += copy(cmd[n:], binary.LittleEndian.AppendUint64(nil, uint64(c)<<40|uint64(r)<<20|i))
	}
	for n < size {
		n += copy(cmd[n:], cmd[:n])
	}
	return cmd
}

// loadResult is what runLoad measured.
type loadResult struct {
	commands    int
	elapsed     time.Duration
	leaderMoves int // changes of term or leader seen on any member
}

// runLoad runs callers goroutines on g's leader, each proposing rounds
// commands of size bytes one after the other. Every proposal must commit
// the first time, no member may see the term or the leader change, and
// every member must apply every command.
func runLoad(t *testing.T, g *loopbackGroup, sms map[uint64]*hashSM, callers, rounds, size int) loadResult {
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	lead := g.waitLeader(ctx)
	before := lead.node.Status()
	// Every member watches for a change of term or leader until the load
	// is over: a change shows here even if no proposal fails.
	watchCtx, stopWatch := context.WithCancel(ctx)
	moved := make(chan string, len(g.members))
	var watchers sync.WaitGroup
	for _, m := range g.members {
		watchers.Go(func() {
			var seen Status
			err := m.node.WaitFor(watchCtx, func(st Status) bool {
				seen = st
				return st.Term != before.Term || st.Lead != before.Lead
			})
			if err == nil {
				moved <- fmt.Sprintf("member %d: term %d leader %d, was term %d leader %d",
					m.id, seen.Term, seen.Lead, before.Term, before.Lead)
			}
		})
	}
	start := time.Now()
	errs := make(chan error, callers)
	var wg sync.WaitGroup
	for c := range callers {
		wg.Go(func() {
			for r := range rounds {
				if _, _, err := lead.node.Propose(ctx, loadCommand(c, r, size)); err != nil {
					errs <- fmt.Errorf("caller %d round %d: %w (leader status %+v)", c, r, err, lead.node.Status())
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	stopWatch()
	watchers.Wait()
	close(errs)
	close(moved)
	failed := 0
	for err := range errs {
		if failed++; failed <= 5 {
			t.Errorf("propose: %v", err)
		}
	}
	res := loadResult{commands: callers * rounds, elapsed: elapsed}
	for m := range moved {
		res.leaderMoves++
		t.Errorf("leadership changed under load: %s", m)
	}
	if after := lead.node.Status(); after.Role != raft.RoleLeader || after.Term != before.Term {
		t.Errorf("leader %d after the load: %+v, want it still leading term %d", lead.id, after, before.Term)
	}
	if failed > 0 {
		t.Fatalf("%d of %d proposals failed", failed, callers)
	}
	checkAppliedSame(ctx, t, g, sms, lead)
	return res
}

// checkAppliedSame waits until every member applied what lead applied
// and checks that they applied the same commands at the same indexes.
func checkAppliedSame(ctx context.Context, t *testing.T, g *loopbackGroup, sms map[uint64]*hashSM, lead *loopbackMember) {
	t.Helper()
	applied := lead.node.Status().Applied
	want := sms[lead.id].state()
	for _, m := range g.members {
		if err := m.node.WaitFor(ctx, func(st Status) bool { return st.Applied >= applied }); err != nil {
			t.Fatalf("member %d did not apply up to %d: %v (status %+v)", m.id, applied, err, m.node.Status())
		}
		if got := sms[m.id].state(); !slices.Equal(got[:len(want)], want) {
			t.Errorf("member %d applied %d commands differing from the leader's %d", m.id, len(got), len(want))
		}
	}
}

// newHashGroup starts a 3-member loopback group on the default config,
// the default tick (20 ms) included, whose members run hashSMs.
func newHashGroup(t *testing.T) (*loopbackGroup, map[uint64]*hashSM) {
	var mu sync.Mutex // protects sms while the group starts
	sms := map[uint64]*hashSM{}
	g := newLoopbackGroupWith(t, 3, func(cfg *Config) {
		mu.Lock()
		defer mu.Unlock()
		sms[cfg.Raft.ID] = &hashSM{}
		cfg.StateMachine = sms[cfg.Raft.ID]
		cfg.TickInterval = 0
		if raceEnabled {
			// The race detector slows the code several times over;
			// on a busy machine a 200 ms election timeout then measures
			// the scheduler, not the transport. make test runs these
			// tests without it too, on the default config.
			cfg.Raft.ElectionTicks = 50
		}
	})
	return g, sms
}

// loadRounds is how many commands each caller proposes: fewer under the
// race detector or -short, which run the same assertions.
func loadRounds() int {
	if raceEnabled || testing.Short() {
		return 1
	}
	return 3
}

// Big commands from many callers at once keep their leader: 64 callers
// proposing 900 KiB commands, on fsync'd WALs and the default config.
func TestLoadBigCommandsKeepTheLeader(t *testing.T) {
	g, sms := newHashGroup(t)
	res := runLoad(t, g, sms, 64, loadRounds(), 900<<10)
	logLoad(t, "900 KiB", 900<<10, res)
}

func logLoad(t *testing.T, name string, size int, res loadResult) {
	secs := res.elapsed.Seconds()
	t.Logf("%s commands: %d in %v: %.0f commands/s, %.1f MB/s, %d leadership changes",
		name, res.commands, res.elapsed.Round(time.Millisecond), float64(res.commands)/secs,
		float64(res.commands)*float64(size)/secs/1e6, res.leaderMoves)
}

// Commands of exactly the largest size raft accepts keep their leader
// too, and one byte more is refused with a named error before it reaches
// the log.
func TestLoadLargestCommandsKeepTheLeader(t *testing.T) {
	g, sms := newHashGroup(t)
	size := raft.MaxCommandBytes(raft.Config{})
	lead := g.waitLeader(t.Context())
	if _, _, err := lead.node.Propose(t.Context(), make([]byte, size+1)); !errors.Is(err, raft.ErrProposalTooLarge) {
		t.Fatalf("Propose of %d bytes: %v, want raft.ErrProposalTooLarge", size+1, err)
	}
	res := runLoad(t, g, sms, 64, loadRounds(), size)
	logLoad(t, fmt.Sprintf("%d B (largest allowed)", size), size, res)
}
