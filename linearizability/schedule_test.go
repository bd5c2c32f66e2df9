package linearizability

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"
)

// faultTarget is what a fault schedule needs of a cluster, whichever
// runner's: its members, and a way to move leadership.
type faultTarget interface {
	// memberIDs returns the ids of the members, in a fresh slice.
	memberIDs() []uint64
	// leaderTransfer returns the TransferLeadership of the member that
	// leads in the highest term, or nil while none is known; to 0 moves
	// leadership to the most up-to-date member.
	leaderTransfer() func(ctx context.Context, to uint64) error
}

// schedule is the part of a nemesis both runners share: the seeded
// random stream the faults are drawn from, the end of the fault phase,
// the cluster it acts on, and the leadership transfers it made. A
// schedule is not safe for concurrent use; both forks one per nemesis.
type schedule struct {
	target faultTarget
	rng    *rand.Rand
	until  time.Time // the end of the fault phase

	transfers, transferErr int // leadership transfers that worked, failed
}

// sched returns the schedule itself, so that both can reach the schedule
// a nemesis embeds.
func (s *schedule) sched() *schedule { return s }

// active reports whether the fault phase goes on.
func (s *schedule) active() bool { return time.Now().Before(s.until) }

// pause lets between lo and hi pass, but not past the end of the phase:
// the schedule of the faults, not a wait for something to happen. In the
// in-process runner's bubble the time is fake.
func (s *schedule) pause(lo, hi time.Duration) {
	d := lo + time.Duration(s.rng.Int64N(int64(hi-lo)+1))
	if d = min(d, time.Until(s.until)); d > 0 {
		t := time.NewTimer(d)
		<-t.C
	}
}

// shuffled returns the member ids in random order.
func (s *schedule) shuffled() []uint64 {
	ids := s.target.memberIDs()
	s.rng.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	return ids
}

// transferChurn keeps moving leadership, to a random member or to the
// most up-to-date one, pausing between lo and hi before each attempt.
func (s *schedule) transferChurn(lo, hi time.Duration) {
	for s.active() {
		s.pause(lo, hi)
		transfer := s.target.leaderTransfer()
		if transfer == nil {
			continue
		}
		var to uint64
		if ids := s.target.memberIDs(); s.rng.IntN(2) == 0 {
			to = ids[s.rng.IntN(len(ids))]
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := transfer(ctx, to)
		cancel()
		if err != nil {
			s.transferErr++
		} else {
			s.transfers++
		}
	}
}

// scheduled is a nemesis of either runner: a pointer to a struct that
// embeds a schedule.
type scheduled[N any] interface {
	*N
	sched() *schedule
}

// both runs two nemeses side by side, each a copy of n with its own
// random stream drawn from n's, and adds up their transfers.
func both[N any, P scheduled[N]](a, b func(P)) func(P) {
	return func(n P) {
		na, nb := *n, *n
		pa, pb := P(&na), P(&nb)
		s := n.sched()
		pa.sched().rng = rand.New(rand.NewPCG(s.rng.Uint64(), 1))
		pb.sched().rng = rand.New(rand.NewPCG(s.rng.Uint64(), 2))
		var wg sync.WaitGroup
		wg.Go(func() { a(pa) })
		wg.Go(func() { b(pb) })
		wg.Wait()
		s.transfers = pa.sched().transfers + pb.sched().transfers
		s.transferErr = pa.sched().transferErr + pb.sched().transferErr
	}
}
