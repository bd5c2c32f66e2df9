package peers

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
)

// commandSize is the size of every command proposed by the commit benchmark.
const commandSize = 128

// applyFunc proposes one command to a running cluster and returns once the
// command is committed and applied (or failed). It must be safe for
// concurrent use by many goroutines. The command slice is shared by all
// callers and never modified, so an implementation may keep a reference to
// it but must not write to it.
type applyFunc func(ctx context.Context, cmd []byte) error

// startFunc starts a 3-node cluster on loopback TCP with the given storage
// ("mem" or "disk", where disk means fsync'd storage) and waits until it has
// a leader able to commit. It returns a function proposing one command on
// the leader and a function stopping the cluster and releasing everything it
// holds. It fails b (b.Fatal) if the cluster cannot be started.
type startFunc func(b *testing.B, storage string) (apply applyFunc, stop func())

// commitSystems are the raft implementations under comparison. Each one
// yields the sub-benchmarks <name>-<storage>-<callers>.
var commitSystems = []struct {
	name  string
	start startFunc
}{
	{"hashicorp", startHashicorp}, // hashicorp_test.go

	{"bifrost", startBifrost}, // bifrost_test.go
}

var commitStorages = []string{"mem", "disk"}

var commitCallers = []struct {
	name    string
	callers int
}{
	{"serial", 1},
	{"parallel64", 64},
}

// BenchmarkCommit measures the time to commit one 128-byte command on a
// 3-node cluster, as BenchmarkCommit/<system>-<storage>-<callers>.
//
// A fresh cluster is started for every run of a sub-benchmark, outside the
// timer, so each run measures a cluster that started empty.
func BenchmarkCommit(b *testing.B) {
	for _, sys := range commitSystems {
		for _, storage := range commitStorages {
			for _, c := range commitCallers {
				b.Run(sys.name+"-"+storage+"-"+c.name, func(b *testing.B) {
					apply, stop := sys.start(b, storage)
					defer stop()
					runCommit(b, apply, c.callers)
				})
			}
		}
	}
}

// runCommit commits b.N commands through apply from the given number of
// concurrent callers, each with one command in flight at a time, so that
// exactly min(callers, remaining) commands are outstanding at any moment,
// whatever GOMAXPROCS is. It reports commits/s and allocations.
func runCommit(b *testing.B, apply applyFunc, callers int) {
	cmd := make([]byte, commandSize)
	for i := range cmd {
		cmd[i] = byte(i)
	}
	ctx := context.Background()

	// One command outside the timer, so that connections and the first
	// entry of the leader's term are not part of the measurement.
	if err := apply(ctx, cmd); err != nil {
		b.Fatalf("warm-up commit: %v", err)
	}

	b.ReportAllocs()
	b.ResetTimer()

	var (
		next     atomic.Int64 // commands taken so far
		failed   atomic.Bool
		firstErr error
		errOnce  sync.Once
		wg       sync.WaitGroup
	)
	n := int64(b.N)
	worker := func() {
		for next.Add(1) <= n {
			if err := apply(ctx, cmd); err != nil {
				errOnce.Do(func() { firstErr = err })
				failed.Store(true)
				return
			}
			if failed.Load() {
				return
			}
		}
	}
	if callers == 1 {
		worker()
	} else {
		wg.Add(callers)
		for range callers {
			go func() {
				defer wg.Done()
				worker()
			}()
		}
		wg.Wait()
	}

	b.StopTimer()
	if firstErr != nil {
		b.Fatalf("commit: %v", firstErr)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commits/s")
}

// BenchmarkFsync is the disk baseline: a 128-byte write followed by
// fsync. "append" grows the file, so each fsync also commits its new size
// and blocks; "overwrite" writes into blocks already written (zeros), as
// bifrost's WAL arranges, so each fsync flushes data only. The second is
// the least any fsync'd commit has to pay on this disk.
func BenchmarkFsync(b *testing.B) {
	for _, mode := range []string{"append", "overwrite"} {
		b.Run(mode, func(b *testing.B) {
			f, err := os.OpenFile(filepath.Join(b.TempDir(), "fsync.bin"), os.O_WRONLY|os.O_CREATE, 0o600)
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			if mode == "overwrite" {
				if _, err := f.Write(make([]byte, commandSize*(b.N+1))); err != nil {
					b.Fatal(err)
				}
				if err := f.Sync(); err != nil {
					b.Fatal(err)
				}
			}
			rec := make([]byte, commandSize)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if _, err := f.WriteAt(rec, int64(i*commandSize)); err != nil {
					b.Fatal(err)
				}
				if err := f.Sync(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
