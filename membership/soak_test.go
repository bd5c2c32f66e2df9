package membership

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bifrost-go/bifrost/rpc"
	"github.com/bifrost-go/bifrost/sm"
)

// The long runs of the issue: MEMBERSHIP_SOAK=1 runs them at full size
// and default timings (500ms heartbeats, 3s timeout), some minutes; the
// default run does smaller versions at realTimings.
//
//	MEMBERSHIP_SOAK=1 go test -run 'TestNoFalseOffline|TestDetectionLatency|TestLeaderCPU' -v ./membership
func soak() bool { return os.Getenv("MEMBERSHIP_SOAK") != "" }

// Members heartbeat while the raft leader is killed or transferred again
// and again and members pause for less than the timeout minus two
// heartbeats: not one offline event.
func TestNoFalseOfflineUnderLeaderChanges(t *testing.T) {
	members, changes, cfg := 10, 6, realTimings
	if soak() {
		members, changes, cfg = 50, 24, Config{}
	}
	c := newLoopbackCluster(t, 3, cfg, nil)
	cfg = c.cfg
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	o := c.observer()
	o.CreateGroup(ctx, "cache")
	hs := joinMany(ctx, t, c, members, "cache")
	group, any := watchGroup(ctx, t, o, "cache"), watchGroup(ctx, t, o, "")
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 1))
	maxPause := cfg.Timeout - 2*cfg.HeartbeatInterval
	stop := make(chan struct{})
	var wg sync.WaitGroup
	pauses := make([]int, 3)
	for i := range pauses {
		r := rand.New(rand.NewPCG(uint64(seed), uint64(i+2)))
		wg.Go(func() { pauses[i] = pauseMembers(r, hs, i, len(pauses), maxPause, cfg.HeartbeatInterval, stop) })
	}
	kills, transfers := 0, 0
	for i := range changes {
		lead := c.detector(ctx)
		if i%2 == 0 {
			c.stop(lead.id)
			c.detector(ctx)
			c.start(lead.id, nil)
			kills++
		} else if err := lead.node.TransferLeadership(ctx, c.ids[(int(lead.id)+rng.IntN(2))%3]); err == nil {
			transfers++
		}
		observeFor(time.Duration(rng.Int64N(int64(cfg.Grace + cfg.Timeout))))
	}
	close(stop)
	wg.Wait()
	observeFor(cfg.Timeout)
	t.Logf("%d members, %d kills and %d transfers of the raft leader, %d member pauses under %v: %d offline events",
		members, kills, transfers, pauses[0]+pauses[1]+pauses[2], maxPause, offlines(any))
	if n, m := offlines(group), offlines(any); n+m != 0 {
		t.Errorf("%d group and %d cluster offline events: %v", n, m, any.all())
	}
	allOnline(ctx, t, o, hs)
}

// pauseMembers silences, one at a time, the members of hs with an index
// of part modulo parts, each for less than most and then for at least two
// heartbeats not, until stop; it returns how many pauses it made. (Two
// pauses of one member back to back would be one pause too long.)
func pauseMembers(r *rand.Rand, hs []*MemberHandle, part, parts int, most, heartbeat time.Duration, stop chan struct{}) int {
	var mine []*MemberHandle
	for i := part; i < len(hs); i += parts {
		mine = append(mine, hs[i])
	}
	for n := 0; ; n++ {
		h := mine[r.IntN(len(mine))]
		h.silent.Store(true)
		fault := time.After(time.Duration(r.Int64N(int64(most))))
		select {
		case <-stop:
		case <-fault: // the fault's length
		}
		h.silent.Store(false)
		rest := time.After(2*heartbeat + time.Duration(r.Int64N(int64(heartbeat))))
		select {
		case <-stop:
			return n + 1
		case <-rest: // heartbeats resume before the next pause
		}
	}
}

// percentile returns the p-th percentile of sorted ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	return ds[min(len(ds)-1, int(p*float64(len(ds))))]
}

// Detection measured: the time from a member's last heartbeat to the
// offline event at a subscriber, over many trials, against the target:
// p99 at most the timeout, one heartbeat and one commit.
func TestDetectionLatency(t *testing.T) {
	members, rounds, cfg := 10, 2, realTimings
	if soak() {
		members, rounds, cfg = 50, 4, Config{}
	}
	c := newLoopbackCluster(t, 3, cfg, nil)
	cfg = c.cfg
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	o := c.observer()
	hs := joinMany(ctx, t, c, members, "")
	any := watchGroup(ctx, t, o, "")
	commits := commitTimes(ctx, t, o, 20)
	var took []time.Duration
	for range rounds {
		from := any.len()
		// Silence every member at a random time within one heartbeat.
		var wg sync.WaitGroup
		for _, h := range hs {
			wg.Go(func() {
				time.Sleep(rand.N(cfg.HeartbeatInterval)) // spreads the trials over the detector's ticks
				h.silent.Store(true)
			})
		}
		wg.Wait()
		for _, h := range hs {
			ev, err := any.waitFrom(ctx, from, is(Offline, h.ID()))
			if err != nil {
				t.Fatal(err)
			}
			took = append(took, ev.at.Sub(time.Unix(0, h.lastBeat.Load())))
		}
		for _, h := range hs {
			h.silent.Store(false)
		}
		for _, h := range hs {
			if _, err := any.waitFrom(ctx, from, is(Online, h.ID())); err != nil {
				t.Fatal(err)
			}
		}
	}
	slices.Sort(took)
	commit := percentile(commits, 0.99)
	p50, p99 := percentile(took, 0.5), percentile(took, 0.99)
	t.Logf("detection over %d trials (heartbeat %v, timeout %v): min %v, p50 %v, p99 %v, max %v; commit p99 %v; target p99 <= %v",
		len(took), cfg.HeartbeatInterval, cfg.Timeout, took[0], p50, p99, took[len(took)-1], commit,
		cfg.Timeout+cfg.HeartbeatInterval+commit)
	if took[0] < cfg.Timeout {
		t.Errorf("a member went offline %v after its last heartbeat, before the timeout %v", took[0], cfg.Timeout)
	}
	if bound := cfg.Timeout + cfg.HeartbeatInterval + commit; p99 > bound {
		t.Errorf("p99 %v over the target %v", p99, bound)
	}
}

// commitTimes measures n commits of the membership machine.
func commitTimes(ctx context.Context, t *testing.T, o *Observer, n int) []time.Duration {
	var ds []time.Duration
	for i := range n {
		start := time.Now()
		if err := o.CreateGroup(ctx, fmt.Sprint("commit-", i)); err != nil {
			t.Fatal(err)
		}
		ds = append(ds, time.Since(start))
	}
	slices.Sort(ds)
	return ds
}

// The leader's CPU per 1,000 heartbeats a second: the cluster runs in this
// process, the members in a child process (TestHeartbeatLoad), so that
// this process's CPU is the cluster's alone; heartbeats reach the leader
// only. It compares the CPU of a window under load with an idle one.
func TestLeaderCPU(t *testing.T) {
	if !soak() {
		t.Skip("MEMBERSHIP_SOAK=1 measures the leader's CPU under 1,000 heartbeats/s")
	}
	const members, interval, window = 100, 100 * time.Millisecond, 10 * time.Second
	c := newLoopbackCluster(t, 3, Config{HeartbeatInterval: interval}, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	c.detector(ctx)
	idle := cpuOver(window)
	child := exec.Command(os.Args[0], "-test.run=^TestHeartbeatLoad$", "-test.count=1")
	child.Env = append(os.Environ(), "MEMBERSHIP_LOAD="+strings.Join(c.servers(), ","), "MEMBERSHIP_LOAD_MEMBERS="+strconv.Itoa(members))
	stdin, _ := child.StdinPipe()
	stdout, _ := child.StdoutPipe()
	child.Stderr = os.Stderr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	if !waitLine(bufio.NewScanner(stdout), "ready") {
		t.Fatal("the load did not start")
	}
	observeFor(time.Second) // every member past its first heartbeats
	loaded := cpuOver(window)
	stdin.Close()
	if err := child.Wait(); err != nil {
		t.Fatalf("load: %v", err)
	}
	rate := float64(members) * float64(time.Second) / float64(interval)
	extra := (loaded - idle).Seconds() / window.Seconds()
	t.Logf("cluster CPU: idle %.1f%%, at %.0f heartbeats/s %.1f%% of one core: %.1f%% of a core per 1,000 heartbeats/s (%.1f µs a heartbeat)",
		100*idle.Seconds()/window.Seconds(), rate, 100*loaded.Seconds()/window.Seconds(), 100*extra*1000/rate, extra/rate*1e6)
}

func waitLine(s *bufio.Scanner, want string) bool {
	for s.Scan() {
		if strings.TrimSpace(s.Text()) == want {
			return true
		}
	}
	return false
}

// cpuOver returns the CPU this process used in the next d.
func cpuOver(d time.Duration) time.Duration {
	before := cpu()
	time.Sleep(d) // the measurement's window
	return cpu() - before
}

func cpu() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestHeartbeatLoad is TestLeaderCPU's child: members joined to the
// cluster named in MEMBERSHIP_LOAD, heartbeating until stdin closes.
func TestHeartbeatLoad(t *testing.T) {
	servers := os.Getenv("MEMBERSHIP_LOAD")
	if servers == "" {
		t.Skip("the child of TestLeaderCPU")
	}
	n, _ := strconv.Atoi(os.Getenv("MEMBERSHIP_LOAD_MEMBERS"))
	ctx := context.Background()
	pool, _ := rpc.NewPool(rpc.ClientConfig{})
	defer pool.Close()
	cfg := Config{Group: testGroup, Servers: strings.Split(servers, ","), Pool: pool, HeartbeatInterval: 100 * time.Millisecond}
	c, err := sm.NewClient(sm.ClientConfig{Group: testGroup, Servers: cfg.Servers, Pool: pool})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var hs []*MemberHandle
	for i := range n {
		h, err := Join(ctx, c, fmt.Sprint("load-", i), "x", cfg)
		if err != nil {
			t.Fatal(err)
		}
		hs = append(hs, h)
	}
	fmt.Println("ready")
	bufio.NewReader(os.Stdin).ReadString('\n') // until the parent closes it
	for _, h := range hs {
		h.Close(ctx)
	}
}

// BenchmarkHeartbeat is the leader's own work for one heartbeat, as its
// handler does it, with sizes of cluster swept.
func BenchmarkHeartbeat(b *testing.B) {
	for _, n := range []int{10, 1000, 100000} {
		b.Run(fmt.Sprint("members=", n), func(b *testing.B) {
			var ms []Member
			for i := range n {
				ms = append(ms, Member{ID: MemberID(i + 1), Incarnation: 1, Online: true})
			}
			d := newDetector(DefaultTimeout, DefaultTimeout)
			d.Lead(time.Now(), ms)
			var mu sync.Mutex
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				mu.Lock()
				d.Heartbeat(MemberID(i%n+1), 1, time.Now())
				mu.Unlock()
				i++
			}
		})
	}
}

// BenchmarkTick is one tick of the leader's detector over the whole
// cluster, with nothing due.
func BenchmarkTick(b *testing.B) {
	for _, n := range []int{10, 1000, 100000} {
		b.Run(fmt.Sprint("members=", n), func(b *testing.B) {
			var ms []Member
			for i := range n {
				ms = append(ms, Member{ID: MemberID(i + 1), Incarnation: 1, Online: true})
			}
			now := time.Now()
			d := newDetector(DefaultTimeout, DefaultTimeout)
			d.Lead(now, ms)
			b.ReportAllocs()
			for b.Loop() {
				d.Tick(now)
			}
		})
	}
}
