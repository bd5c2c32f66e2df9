package main

import (
	"io"
	"slices"
	"testing"
)

// sampleBench is real output of the bench and bench/peers/etcd sets on a
// 2-core machine, with the cmd: line the Makefile writes.
const sampleBench = `cmd: go test -run XXX -benchmem -bench '^BenchmarkCall$' ./bench
goos: linux
goarch: amd64
pkg: github.com/bifrost-go/bifrost/bench
cpu: AMD EPYC
BenchmarkCall/bifrost-serial-2   	   58401	     18139 ns/op	   7.06 MB/s	     512 B/op	       2 allocs/op
BenchmarkCall/bifrost-serial-timeout-2         	   59492	     20625 ns/op	   6.21 MB/s	    1304 B/op	      12 allocs/op
BenchmarkCall/bifrost-parallel64-2             	  477745	      2352 ns/op	  54.43 MB/s	     512 B/op	       2 allocs/op
BenchmarkCall/netrpc-serial-2                  	   53320	     23709 ns/op	   5.40 MB/s	    1208 B/op	      23 allocs/op
BenchmarkCall/netrpc-parallel64-2              	   71679	     17439 ns/op	   7.34 MB/s	    1210 B/op	      23 allocs/op
BenchmarkSMSubscriptionMemory/subs=1000/clients=1000-2         	       1	 578876536 ns/op	     21735 B/sub	         2.005 goroutines/client	     19996 leader-B/sub	      1000 leader-conns	       869.2 repl-B/sub	      8192 stack-B/sub	42205496 B/op	  231829 allocs/op
--- BENCH: BenchmarkSMSubscriptionMemory/subs=1000/clients=1000-2
    sm_memory_test.go:127: heap: 3641352 B before, 25376136 B with 1000 subscriptions on 1000 clients listening, 6248952 B once their process died
PASS
ok  	github.com/bifrost-go/bifrost/bench	32.380s
cmd: cd bench/peers/etcd && go test -run XXX -benchmem -bench '^BenchmarkVsEtcd$' .
goos: linux
goarch: amd64
pkg: github.com/bifrost-go/bifrost/bench/peers/etcd
cpu: AMD EPYC
BenchmarkVsEtcd/bifrost-put-parallel64-2     	   22683	     51173 ns/op	     19542 ops/s	   17429 B/op	     134 allocs/op
BenchmarkVsEtcd/etcd-put-parallel64-2        	   10000	    121655 ns/op	      8220 ops/s	   34486 B/op	     453 allocs/op
BenchmarkVsEtcd/bifrost-get-lease-parallel64-2                	  161785	      7014 ns/op	    142568 ops/s	    2631 B/op	      33 allocs/op
BenchmarkVsEtcd/bifrost-watch-100-2                           	    5916	    199140 ns/op	    502159 events/s	      5022 ops/s	      5022 puts/s	  183084 B/op	     822 allocs/op
BenchmarkVsEtcd/etcd-watch-100-2                              	    1812	    719789 ns/op	    138930 events/s	      1389 ops/s	      1389 puts/s	  224588 B/op	    3566 allocs/op
PASS
ok  	github.com/bifrost-go/bifrost/bench/peers/etcd	152.352s
`

// sampleFailed is real output of a benchmark that failed and of a
// package that did not build.
const sampleFailed = `goos: linux
goarch: amd64
pkg: example.com/fail
cpu: AMD EPYC
BenchmarkOK-2    	      10	        64.10 ns/op
--- FAIL: BenchmarkBad/sub
    a_test.go:4: boom
--- FAIL: BenchmarkBad
FAIL
exit status 1
FAIL	example.com/fail	0.023s
FAIL
cmd: cd broken && go test -bench .
# example.com/fail/broken [example.com/fail/broken.test]
broken/b.go:2:12: undefined: undefined
FAIL	example.com/fail/broken [build failed]
FAIL
`

func TestParsePackages(t *testing.T) {
	pkgs := Parse([]byte(sampleBench))
	tests := []struct {
		path, cmd string
		results   int
	}{
		{"github.com/bifrost-go/bifrost/bench", "go test -run XXX -benchmem -bench '^BenchmarkCall$' ./bench", 6},
		{"github.com/bifrost-go/bifrost/bench/peers/etcd", "cd bench/peers/etcd && go test -run XXX -benchmem -bench '^BenchmarkVsEtcd$' .", 5},
	}
	if len(pkgs) != len(tests) {
		t.Fatalf("got %d packages, want %d", len(pkgs), len(tests))
	}
	for i, tt := range tests {
		p := pkgs[i]
		t.Run(tt.path, func(t *testing.T) {
			if p.Path != tt.path || p.Command != tt.cmd || len(p.Results) != tt.results {
				t.Errorf("got %q %q %d results, want %q %q %d", p.Path, p.Command, len(p.Results), tt.path, tt.cmd, tt.results)
			}
			if p.Goos != "linux" || p.Goarch != "amd64" || p.CPU != "AMD EPYC" {
				t.Errorf("got header %q %q %q, want linux amd64 AMD EPYC", p.Goos, p.Goarch, p.CPU)
			}
		})
	}
}

func TestParseResult(t *testing.T) {
	r := Parse([]byte(sampleBench))[0].Results[5]
	want := Result{
		Name:       "BenchmarkSMSubscriptionMemory/subs=1000/clients=1000-2",
		Iterations: 1,
		Metrics: []Metric{
			{578876536, "ns/op"}, {21735, "B/sub"}, {2.005, "goroutines/client"}, {19996, "leader-B/sub"},
			{1000, "leader-conns"}, {869.2, "repl-B/sub"}, {8192, "stack-B/sub"}, {42205496, "B/op"}, {231829, "allocs/op"},
		},
	}
	if r.Name != want.Name || r.Iterations != want.Iterations || !slices.Equal(r.Metrics, want.Metrics) {
		t.Errorf("got %+v, want %+v", r, want)
	}
}

func TestParseFailures(t *testing.T) {
	pkgs := Parse([]byte(sampleFailed))
	if len(pkgs) != 2 {
		t.Fatalf("got %d packages, want 2", len(pkgs))
	}
	tests := []struct {
		path, cmd string
		results   int
		failed    []string
	}{
		{"example.com/fail", "", 1, []string{"BenchmarkBad/sub", "BenchmarkBad", "FAIL example.com/fail 0.023s"}},
		{"example.com/fail/broken", "cd broken && go test -bench .", 0, []string{"FAIL example.com/fail/broken [build failed]"}},
	}
	for i, tt := range tests {
		p := pkgs[i]
		if p.Path != tt.path || p.Command != tt.cmd || len(p.Results) != tt.results || !slices.Equal(p.Failed, tt.failed) {
			t.Errorf("package %d: got %q %q %d results %q, want %q %q %d %q", i, p.Path, p.Command, len(p.Results), p.Failed, tt.path, tt.cmd, tt.results, tt.failed)
		}
	}
}

func TestParseSkipsNonResults(t *testing.T) {
	tests := []string{
		"BenchmarkSMEvents",                        // name printed before a log
		"BenchmarkX-2 10",                          // no metric
		"BenchmarkX-2 10 5",                        // value without unit
		"BenchmarkX-2 ten 5 ns/op",                 // iterations not a number
		"BenchmarkX-2 10 five ns/op",               // value not a number
		"BenchmarkX-2 -1 5 ns/op",                  // negative iterations
		"--- BENCH: BenchmarkSMSubscriptionMemory", // log header
	}
	for _, line := range tests {
		for _, p := range Parse([]byte(line)) {
			if len(p.Results) != 0 {
				t.Errorf("Parse(%q) = %+v, want no result", line, p.Results)
			}
		}
	}
}

// FuzzParse checks that any bytes parse without panicking into results
// that Write can render.
func FuzzParse(f *testing.F) {
	f.Add([]byte(sampleBench))
	f.Add([]byte(sampleFailed))
	f.Add([]byte("pkg: x\nBenchmarkA-2 1 NaN ns/op\nBenchmarkA-2 1 +Inf ns/op\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		pkgs := Parse(data)
		for _, p := range pkgs {
			for _, r := range p.Results {
				if len(r.Metrics) == 0 || r.Iterations < 0 {
					t.Fatalf("result %+v from %q", r, data)
				}
			}
		}
		if err := Write(io.Discard, Meta{Command: "make benchmarks", NProc: 2}, pkgs); err != nil {
			t.Fatal(err)
		}
	})
}
