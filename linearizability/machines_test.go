package linearizability

import (
	"context"
	"fmt"

	"github.com/bifrost-go/bifrost/sm"
)

// The objects under test: one of each of sm's built-in machines, which
// every server's host carries. Operations on a Map key are checked as
// one object per key.
var (
	testMap    = sm.NewMap[string, string]("map")
	testValue  = sm.NewValue[string]("value")
	testNumber = sm.NewNumber("number")
)

// The keys of the Value and the Number in histories; Map keys are k0,
// k1, ..., which never collide with them.
const (
	valueKey  = "value"
	numberKey = "number"
)

// newHost returns a host carrying the objects under test, empty.
func newHost(cfg sm.HostConfig) (*sm.Host, error) {
	return sm.NewHost(cfg, testMap.Machine(), testValue.Machine(), testNumber.Machine())
}

// perform runs in through c, reading in mode, and returns what it
// returned. It is the one place that calls the machines, for both
// runners.
func perform(ctx context.Context, c *sm.Client, mode sm.ReadMode, in Input) (Output, error) {
	var out Output
	var err error
	switch in.Kind {
	case OpMapGet:
		out.Value, out.Found, err = testMap.GetAs(ctx, c, mode, in.Key)
	case OpMapInsert:
		out.Value, out.Found, err = testMap.Insert(ctx, c, in.Key, in.Value)
	case OpMapRemove:
		out.Value, out.Found, err = testMap.Remove(ctx, c, in.Key)
	case OpMapCompareAndSwap:
		out.Swapped, err = testMap.CompareAndSwap(ctx, c, in.Key, in.Old, in.Value)
	case OpValueGet:
		out.Value, err = testValue.GetAs(ctx, c, mode)
	case OpValueSet:
		out.Value, err = testValue.Set(ctx, c, in.Value)
	case OpNumberGet:
		out.N, err = testNumber.GetAs(ctx, c, mode)
	case OpNumberAdd:
		out.N, err = testNumber.Add(ctx, c, in.N)
	case OpNumberCompareAndSwap:
		out.Swapped, err = testNumber.CompareAndSwap(ctx, c, in.OldN, in.N)
	default:
		err = fmt.Errorf("no such operation %v", in.Kind)
	}
	return out, err
}

// workload draws a client's operations: on a Map key, the Value or the
// Number, with values unique to the client and the request, so that an
// update applied twice, or a read of a value nobody wrote, shows. It
// remembers what the client last saw of each object, so that its
// compare-and-swaps often expect the right value. Numbers only grow: an
// add's delta and a swap's step are positive, so no value of the Number
// repeats and its change stream can be checked step by step. Not safe for
// concurrent use.
type workload struct {
	client int
	keys   int
	n      int // operations drawn
	seen   map[string]Output
	intn   func(int) int
}

// next draws the next operation; only reads if readOnly.
func (w *workload) next(readOnly bool) Input {
	w.n++
	unique := fmt.Sprintf("%d.%d", w.client, w.n)
	p, obj := w.intn(100), w.intn(100)
	switch {
	case obj < 60:
		key := fmt.Sprintf("k%d", w.intn(w.keys))
		switch seen := w.seen[key]; {
		case p < 40 || readOnly:
			return Input{Kind: OpMapGet, Key: key}
		case p < 70:
			return Input{Kind: OpMapInsert, Key: key, Value: unique}
		case p < 80:
			return Input{Kind: OpMapRemove, Key: key}
		default:
			return Input{Kind: OpMapCompareAndSwap, Key: key, Old: seen.Value, Value: unique}
		}
	case obj < 80:
		if p < 45 || readOnly {
			return Input{Kind: OpValueGet, Key: valueKey}
		}
		return Input{Kind: OpValueSet, Key: valueKey, Value: unique}
	default:
		switch seen := w.seen[numberKey]; {
		case p < 40 || readOnly:
			return Input{Kind: OpNumberGet, Key: numberKey}
		case p < 80:
			return Input{Kind: OpNumberAdd, Key: numberKey, N: 1 + int64(w.intn(9))}
		default:
			return Input{Kind: OpNumberCompareAndSwap, Key: numberKey, OldN: seen.N, N: seen.N + 1 + int64(w.intn(9))}
		}
	}
}

// saw remembers what in returned, for the next swaps on its object.
func (w *workload) saw(in Input, out Output) {
	switch in.Kind {
	case OpMapGet, OpValueGet, OpNumberGet, OpNumberAdd:
		w.seen[in.Key] = out
	case OpMapInsert, OpValueSet:
		w.seen[in.Key] = Output{Value: in.Value, Found: true}
	case OpMapCompareAndSwap:
		if out.Swapped {
			w.seen[in.Key] = Output{Value: in.Value, Found: true}
		}
	case OpNumberCompareAndSwap:
		if out.Swapped {
			w.seen[in.Key] = Output{N: in.N}
		}
	}
}
