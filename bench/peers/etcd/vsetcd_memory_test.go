package etcd

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/server/v3/embed"

	"github.com/bifrost-go/bifrost"
	"github.com/bifrost-go/bifrost/sm"
)

// memberEnv hands TestVsEtcdMember its member: the system, the member's
// index (0 to 2), its data directory and the cluster's ports (bifrost:
// the three rpc ports; etcd: peer and client port of each member in
// turn), separated by semicolons, the ports by commas.
const memberEnv = "BIFROST_VSETCD_MEMBER"

// BenchmarkVsEtcdMemory reports the peak resident set of a bifrost and
// of an etcd member (VmHWM, in MB) on the put-parallel64 work of
// BenchmarkVsEtcd: each member runs in a process of its own (the test
// binary again, as TestVsEtcdMember), so its peak is its own, runtime
// and all, and the clients run in this one. The leader's peak and the
// larger of the followers' are read from /proc once the puts are done.
// The peak grows with the number of puts (both keep recent log entries
// in memory), so compare the systems at one count:
//
//	go test -run '^$' -bench VsEtcdMemory -benchtime 50000x
func BenchmarkVsEtcdMemory(b *testing.B) {
	for _, sys := range []string{"bifrost", "etcd"} {
		b.Run(sys, func(b *testing.B) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			c, ms := startMemberProcesses(b, sys)
			clients, err := vsSetUp(ctx, c, putParallel)
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			err = vsRun(ctx, clients, putParallel, b.N)
			b.StopTimer()
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
			reportPeaks(b, ms)
		})
	}
}

// reportPeaks reports the leader's peak RSS and the larger follower's.
func reportPeaks(b *testing.B, ms []*memberProcess) {
	var follower int
	for i, m := range ms {
		kb, err := peakRSS(m.cmd.Process.Pid)
		if err != nil {
			b.Fatal(err)
		}
		if i == 0 {
			b.ReportMetric(float64(kb)/1024, "leader-peak-RSS-MB")
		} else {
			follower = max(follower, kb)
		}
	}
	b.ReportMetric(float64(follower)/1024, "follower-peak-RSS-MB")
}

// peakRSS returns process pid's peak resident set, in kB (Linux).
func peakRSS(pid int) (int, error) {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(status)) {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "VmHWM:" {
			return strconv.Atoi(f[1])
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
}

// memberProcess is member index of a cluster, running in a child
// process.
type memberProcess struct {
	cmd    *exec.Cmd
	out    *bufio.Scanner
	index  int
	leader bool
}

// startMemberProcesses starts the three members of sys, each in a child
// process, and returns the cluster and the processes, the leader's
// first; b's cleanup kills them.
func startMemberProcesses(b *testing.B, sys string) (vsCluster, []*memberProcess) {
	dir := b.TempDir()
	ports := freePorts(b, 2*vsMembers)
	var ms []*memberProcess
	for i := range vsMembers {
		spec := fmt.Sprintf("%s;%d;%s;%s", sys, i, filepath.Join(dir, strconv.Itoa(i)), joinInts(ports))
		ms = append(ms, startMemberProcess(b, i, spec))
	}
	var lead, rest []*memberProcess
	for _, m := range ms {
		if err := m.waitReady(); err != nil {
			b.Fatal(err)
		}
		if m.leader {
			lead = append(lead, m)
		} else {
			rest = append(rest, m)
		}
	}
	if len(lead) != 1 {
		b.Fatalf("%d members say they lead: run it again", len(lead))
	}
	ms = append(lead, rest...)
	addrs := make([]string, len(ms))
	for i, m := range ms {
		addrs[i] = memberClientAddr(sys, m.index, ports)
	}
	if sys == "etcd" {
		return &etcdVs{b: b, members: addrs}, ms
	}
	return &bifrostVs{b: b, members: addrs}, ms
}

func joinInts(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}

// memberClientAddr is where clients reach member i of sys.
func memberClientAddr(sys string, i int, ports []int) string {
	if sys == "etcd" {
		u := etcdURL(ports[2*i+1])
		return u.String()
	}
	return fmt.Sprintf("127.0.0.1:%d", ports[i])
}

// startMemberProcess runs member index, as spec says, in the test binary
// again. Its stdin stays open as long as this process lives, so that a
// child whose parent died without cleaning up exits too.
func startMemberProcess(b *testing.B, index int, spec string) *memberProcess {
	cmd := exec.Command(os.Args[0], "-test.run=^TestVsEtcdMember$", "-test.bench=^$", "-test.count=1", "-test.timeout=0")
	cmd.Env = append(os.Environ(), memberEnv+"="+spec)
	cmd.Stderr = os.Stderr
	if _, err := cmd.StdinPipe(); err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return &memberProcess{cmd: cmd, out: bufio.NewScanner(stdout), index: index}
}

// waitReady waits for the member to say whether it leads.
func (m *memberProcess) waitReady() error {
	for m.out.Scan() {
		switch line := m.out.Text(); {
		case line == "leader" || line == "follower":
			m.leader = line == "leader"
			return nil
		case strings.HasPrefix(line, "FAIL") || strings.HasPrefix(line, "---"):
			return fmt.Errorf("member %d: %s", m.index, line)
		}
	}
	return fmt.Errorf("member %d ended before it was ready: %v", m.index, m.out.Err())
}

// TestVsEtcdMember is BenchmarkVsEtcdMemory's child: it runs the member
// it is told to, prints "leader" or "follower" once a leader serves, and
// runs until it is killed or its stdin closes.
func TestVsEtcdMember(t *testing.T) {
	spec := os.Getenv(memberEnv)
	if spec == "" {
		t.Skip("runs as a child of BenchmarkVsEtcdMemory")
	}
	sys, i, dir, ports, err := parseMemberSpec(spec)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	run := runBifrostMember
	if sys == "etcd" {
		run = runEtcdMember
	}
	leads, err := run(ctx, t, i, dir, ports)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println(map[bool]string{true: "leader", false: "follower"}[leads])
	io.Copy(io.Discard, os.Stdin)
}

// parseMemberSpec parses memberEnv's value.
func parseMemberSpec(spec string) (sys string, i int, dir string, ports []int, err error) {
	f := strings.Split(spec, ";")
	if len(f) != 4 {
		return "", 0, "", nil, fmt.Errorf("%s=%q: want 4 fields", memberEnv, spec)
	}
	i, err = strconv.Atoi(f[1])
	for _, p := range strings.Split(f[3], ",") {
		n, perr := strconv.Atoi(p)
		err = errors.Join(err, perr)
		ports = append(ports, n)
	}
	if err != nil || len(ports) != 2*vsMembers || i < 0 || i >= vsMembers {
		return "", 0, "", nil, fmt.Errorf("%s=%q: %v", memberEnv, spec, err)
	}
	return f[0], i, f[2], ports, nil
}

// runBifrostMember starts bifrost member i, its rpc port ports[i],
// configured as BenchmarkVsEtcd's members are, and reports whether it
// leads once a leader serves.
func runBifrostMember(ctx context.Context, t *testing.T, i int, dir string, ports []int) (bool, error) {
	peers := map[uint64]string{}
	for j := range vsMembers {
		peers[uint64(j+1)] = memberClientAddr("bifrost", j, ports)
	}
	id := uint64(i + 1)
	cfg := bifrostConfig(id, peers, dir, sm.HostConfig{}, true)
	cfg.Listen = peers[id]
	n, err := bifrost.Start(ctx, cfg)
	if err != nil {
		return false, err
	}
	t.Cleanup(func() { n.Close() })
	lead, err := bifrostLeader(ctx, n)
	if err != nil || lead != id {
		return false, err
	}
	return true, bifrostTakeOffice(ctx, n)
}

// runEtcdMember starts etcd member i, its peer and client ports
// ports[2i] and ports[2i+1], configured as startEtcdEvents's members
// are, and reports whether it leads once it is ready.
func runEtcdMember(ctx context.Context, t *testing.T, i int, dir string, ports []int) (bool, error) {
	s, err := embed.StartEtcd(etcdConfig(i, ports, dir))
	if err != nil {
		return false, err
	}
	t.Cleanup(s.Close)
	select {
	case <-s.Server.ReadyNotify():
	case err := <-s.Err():
		return false, err
	case <-ctx.Done():
		return false, ctx.Err()
	}
	return s.Server.Leader() == s.Server.MemberID(), nil
}
