package wal

import (
	"bytes"
	"runtime"
	"sync"
	"testing"

	"github.com/bifrost-go/bifrost/raft"
)

// BenchmarkSave measures durable appends of one 128-byte entry on the real
// file system: one caller, and 64 callers sharing fsyncs (each appends
// under the caller's lock that orders indices, as the raft driver does,
// then waits for a sync). fsyncs/op shows the group commit.
func BenchmarkSave(b *testing.B) {
	for _, fs := range []struct {
		suffix string
		fs     FS
	}{{"", osFS{}}, {"-noprealloc", noPreallocFS{}}, {"-nozeroahead", noZeroAheadFS{}}} {
		benchmarkSave(b, fs.suffix, fs.fs)
	}
}

func benchmarkSave(b *testing.B, suffix string, fs FS) {
	data := bytes.Repeat([]byte{'x'}, 128)
	b.Run("serial-128B"+suffix, func(b *testing.B) {
		w := openT(b, Config{Dir: b.TempDir(), FS: fs})
		base := w.syncs.Load()
		b.ResetTimer()
		for i := range b.N {
			if err := w.Save(raft.HardState{}, []raft.Entry{{Index: uint64(i) + 1, Term: 1, Data: data}}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(w.syncs.Load()-base)/float64(b.N), "fsyncs/op")
		closeT(b, w)
	})
	b.Run("parallel64-128B"+suffix, func(b *testing.B) {
		w := openT(b, Config{Dir: b.TempDir(), FS: fs})
		base := w.syncs.Load()
		var (
			mu   sync.Mutex // protects next
			next = uint64(1)
		)
		b.SetParallelism((64 + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				mu.Lock()
				err := w.Append(raft.HardState{}, []raft.Entry{{Index: next, Term: 1, Data: data}})
				next++
				mu.Unlock()
				if err == nil {
					err = w.Sync()
				}
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(w.syncs.Load()-base)/float64(b.N), "fsyncs/op")
		closeT(b, w)
	})
}

// noZeroAheadFS is the real file system without zeros written ahead of
// the records, to measure what they buy.
type noZeroAheadFS struct{ osFS }

func (noZeroAheadFS) ZeroAhead() int64 { return 0 }

// noPreallocFS is the real file system without preallocation, to measure
// what preallocation buys.
type noPreallocFS struct{ osFS }

type noPreallocFile struct{ File }

func (noPreallocFile) Preallocate(int64) error { return nil }

func (fs noPreallocFS) Create(path string) (File, error) {
	f, err := fs.osFS.Create(path)
	return noPreallocFile{f}, err
}

func (fs noPreallocFS) OpenWrite(path string) (File, error) {
	f, err := fs.osFS.OpenWrite(path)
	return noPreallocFile{f}, err
}
