package main

import (
	"strings"
	"testing"
	"time"
)

var testMeta = Meta{
	Command:   "make benchmarks",
	Started:   time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC),
	Finished:  time.Date(2026, 12, 2, 12, 10, 30, 0, time.UTC),
	NProc:     2,
	GoVersion: "go1.26.8",
	LoadStart: "1.42 1.80 0.88 2/88 16034\n",
	LoadEnd:   "0.50 0.70 0.80 1/90 17000\n",
}

func report(t *testing.T, raw ...string) string {
	t.Helper()
	var pkgs []*Package
	for _, r := range raw {
		pkgs = append(pkgs, Parse([]byte(r))...)
	}
	var b strings.Builder
	if err := Write(&b, testMeta, pkgs); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestWriteLines(t *testing.T) {
	got := report(t, sampleBench, sampleFailed)
	for _, want := range []string{
		"Every figure here is from one run of `make benchmarks`",
		"shared, noisy 2-core machine",
		"| cpu | AMD EPYC |",
		"| nproc | 2 |",
		"| go | go1.26.8 |",
		"| run | 2026-12-02T12:00:00Z to 2026-12-02T12:10:30Z (10m30s) |",
		"| load average (1, 5, 15 min) | at start 1.42 1.80 0.88; at end 0.50 0.70 0.80 |",
		"| bench | BenchmarkCall/bifrost-serial | BenchmarkCall/netrpc-serial | ns/op | 0.77× | bifrost ÷ net/rpc (<1: faster) |",
		"| bench/peers/etcd | BenchmarkVsEtcd/bifrost-put-parallel64 | BenchmarkVsEtcd/etcd-put-parallel64 | ops/s | 2.38× |",
		"| bench/peers/etcd | BenchmarkVsEtcd/bifrost-watch-100 | BenchmarkVsEtcd/etcd-watch-100 | events/s | 3.61× |",
		"    go test -run XXX -benchmem -bench '^BenchmarkCall$' ./bench\n",
		"| benchmark | iterations | ns/op | MB/s | B/op | allocs/op | ratio |",
		"| BenchmarkCall/bifrost-parallel64 | 477745 | 2352 | 54.4 | 512 | 2 | **0.13×** ns/op, bifrost ÷ net/rpc (<1: faster) |",
		"| BenchmarkCall/netrpc-serial | 53320 | 23709 | 5.40 | 1208 | 23 |  |",
		"| BenchmarkSMSubscriptionMemory/subs=1000/clients=1000 | 1 | 578876536 | 21735 | 2.00 |",
		"| BenchmarkVsEtcd/bifrost-get-lease-parallel64 | 161785 | 7014 | 142568 | 2631 | 33 | | |  |",
		"## example.com/fail/broken\n\n    cd broken && go test -bench .\n\n**Not measured in this run.**\n\nFailed: FAIL example.com/fail/broken [build failed]\n",
		"Failed: BenchmarkBad/sub; BenchmarkBad; FAIL example.com/fail 0.023s",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q; got:\n%s", want, got)
		}
	}
}

func TestWriteMeansRepeats(t *testing.T) {
	got := report(t, `pkg: github.com/bifrost-go/bifrost/bench
BenchmarkCall/bifrost-serial-2   100  20000 ns/op
BenchmarkCall/netrpc-serial-2    100  40000 ns/op
BenchmarkCall/bifrost-serial-2   300  10000 ns/op
BenchmarkCall/netrpc-serial-2    100  20000 ns/op
`)
	for _, want := range []string{
		"| BenchmarkCall/bifrost-serial | 100, 300 | 15000 | **0.50×** ns/op",
		"| BenchmarkCall/netrpc-serial | 100, 100 | 30000 |  |",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q; got:\n%s", want, got)
		}
	}
}

func TestNum(t *testing.T) {
	tests := []struct {
		v    float64
		want string
	}{
		{578876536, "578876536"}, {869.2, "869"}, {54.43, "54.4"}, {7.06, "7.06"},
		{2, "2"}, {0, "0"}, {0.004567, "0.00457"}, {-12.34, "-12.3"},
	}
	for _, tt := range tests {
		if got := num(tt.v); got != tt.want {
			t.Errorf("num(%v) = %q, want %q", tt.v, got, tt.want)
		}
	}
}
