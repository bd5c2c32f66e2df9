package linearizability

import (
	"fmt"
	"math"
	"slices"
	"testing"
)

// stream is what one subscriber received: the state its stream started
// from, as the ReadAndOpen that opened it answered, that call's logical
// call and return times, the events, and the state a linearizable read
// found once the cluster had healed and the clients had stopped, which
// the stream reached. A stream of every key of the Map is split into
// one per key (splitByKey).
type stream struct {
	key       string
	split     bool // one key's part of the stream of every key
	start     Output
	call, ret int64
	events    []change
	final     Output
}

// String names the stream for failures.
func (s stream) String() string {
	if s.split {
		return fmt.Sprintf("the stream of every key, for %s", s.key)
	}
	return fmt.Sprintf("the stream of the %s's subscriber", s.key)
}

// checkStream checks a subscriber's stream against the history of its
// object (the Value, the Number or a Map key). No value written to one
// repeats (the values set and inserted are unique to the client and
// request; the Number only grows), so the stream is a chain of states
// and what it implies is exact. It must be:
//
//   - a chain: each event's old state is the previous event's new one,
//     the first's is the state the stream opened at, the last's new one
//     is the final state (no event lost, reordered or duplicated);
//   - explained: each event is the effect of an update in the history
//     (a set or insert of its new value, an add of its difference, a
//     swap from its old to its new state, a remove) called before the
//     event arrived, each update explaining one event at most (none
//     invented);
//   - what the history says: an acknowledged update's event carries what
//     the update returned (the old value of a set, an insert or a
//     remove, the new sum of an add); every
//     acknowledged update called after the stream opened has its event,
//     and none that returned before the stream began to open has one;
//     and acknowledged updates appear in an order their real-time order
//     allows.
//
// With porcupine's check of the history and the stream's order folded
// into it (withStream), the stream is then exactly the sequence of
// changes of a linearization of the history.
func checkStream(ops []Operation, s stream) []error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	prev := s.start
	for i, e := range s.events {
		if e.old != prev {
			fail("event %d changes %s, but the stream was at %s: an event lost, reordered or duplicated",
				i, show(s.key, e.old), show(s.key, prev))
		}
		prev = e.new
	}
	if prev != s.final {
		fail("the stream ends at %s, the object at %s", show(s.key, prev), show(s.key, s.final))
	}
	pos := explain(ops, s, fail)
	lastCall := int64(math.MinInt64)
	for i := range s.events {
		op, ok := pos[i]
		if !ok || op.Pending {
			continue
		}
		if op.Return < lastCall {
			fail("event %d is of %s, which returned before an update with an earlier event was called", i, describeOp(op))
		}
		lastCall = max(lastCall, op.Call)
	}
	explained := map[int64]bool{}
	for _, op := range pos {
		explained[op.Call] = true
	}
	for _, op := range ops {
		if op.Input.Key != s.key || op.Input.Kind.IsRead() || op.Pending || !changes(op) {
			continue
		}
		switch {
		case !explained[op.Call] && op.Call > s.ret:
			fail("%s was acknowledged after the stream opened, but no event shows it", describeOp(op))
		case explained[op.Call] && op.Return < s.call:
			fail("%s returned before the stream was opened, but an event shows it", describeOp(op))
		}
	}
	return errs
}

// changes reports whether an acknowledged update changed its object: a
// swap that failed did not, and neither does anything notify for it.
func changes(op Operation) bool {
	switch op.Input.Kind {
	case OpMapCompareAndSwap, OpNumberCompareAndSwap:
		return op.Output.Swapped
	case OpMapRemove:
		return op.Output.Found
	}
	return true
}

// explain finds for each event the update it is the effect of, and
// reports an event no update explains. An acknowledged update is found
// by what it returned, which is unique; an update that never returned
// by its input, the earliest called first.
func explain(ops []Operation, s stream, fail func(string, ...any)) map[int]Operation {
	pos := map[int]Operation{}
	used := map[int64]bool{} // by call time, unique to an operation
	for i, e := range s.events {
		found := false
		for _, op := range ops {
			if op.Input.Key != s.key || op.Input.Kind.IsRead() || used[op.Call] || op.Call > e.at || !explains(op, e) {
				continue
			}
			if !op.Pending {
				pos[i], used[op.Call], found = op, true, true
				break
			}
			if !found {
				pos[i], found = op, true // the earliest pending; an acknowledged one may still match
			}
		}
		if !found {
			fail("event %d, %s to %s, is the effect of no update in the history", i, show(s.key, e.old), show(s.key, e.new))
			continue
		}
		used[pos[i].Call] = true
		if op := pos[i]; !op.Pending && !answerMatches(op, e) {
			fail("event %d, %s to %s, is %s, which returned otherwise", i, show(s.key, e.old), show(s.key, e.new), describeOp(op))
		}
	}
	return pos
}

// explains reports whether op, if it took effect, would be event e.
// For an acknowledged set of a unique value the value alone identifies
// it, and answerMatches then checks its answer.
func explains(op Operation, e change) bool {
	in := op.Input
	switch in.Kind {
	case OpValueSet:
		return in.Value == e.new.Value
	case OpMapInsert:
		return !e.removed && e.new.Value == in.Value
	case OpMapCompareAndSwap:
		return !e.removed && e.new.Value == in.Value && e.old == Output{Value: in.Old, Found: true} &&
			(op.Pending || op.Output.Swapped)
	case OpMapRemove:
		return e.removed && (op.Pending || op.Output == e.old)
	case OpNumberAdd:
		return in.N == e.new.N-e.old.N && (op.Pending || op.Output.N == e.new.N)
	case OpNumberCompareAndSwap:
		return in.OldN == e.old.N && in.N == e.new.N && (op.Pending || op.Output.Swapped)
	}
	return false
}

// answerMatches reports whether an acknowledged update's answer agrees
// with the event it explains.
func answerMatches(op Operation, e change) bool {
	switch op.Input.Kind {
	case OpValueSet:
		return op.Output.Value == e.old.Value
	case OpMapInsert, OpMapRemove:
		return op.Output == e.old
	case OpNumberAdd:
		return op.Output.N == e.new.N
	}
	return op.Output.Swapped
}

// withStream folds a stream of the Value or of a Map key that
// checkStream accepted into the history for porcupine: a set, insert or
// swap that never returned but whose event (found by the unique value it
// wrote) arrived did take effect before the event arrived, and returned
// what the event says it replaced. Porcupine must then find a
// linearization that orders those writes as the stream does.
func withStream(ops []Operation, s stream) []Operation {
	if s.key == numberKey {
		return ops
	}
	at := map[string]change{}
	for _, e := range s.events {
		if !e.removed {
			at[e.new.Value] = e
		}
	}
	out := make([]Operation, len(ops))
	for i, op := range ops {
		out[i] = op
		e, ok := at[op.Input.Value]
		if !op.Pending || op.Input.Key != s.key || !ok {
			continue
		}
		switch op.Input.Kind {
		case OpValueSet:
			out[i].Output = Output{Value: e.old.Value}
		case OpMapInsert:
			out[i].Output = e.old
		case OpMapCompareAndSwap:
			if e.old != (Output{Value: op.Input.Old, Found: true}) {
				continue
			}
			out[i].Output = Output{Swapped: true}
		default:
			continue
		}
		out[i].Pending, out[i].Return = false, e.at
		out[i].Detail = "never returned; its event arrived"
	}
	return out
}

func show(key string, o Output) string {
	switch {
	case key == numberKey:
		return fmt.Sprint(o.N)
	case key != valueKey && !o.Found:
		return "absent"
	}
	return fmt.Sprintf("%q", o.Value)
}

func describeOp(op Operation) string {
	return fmt.Sprintf("client %d's %s", op.Client, describe(op.Input, outcome{out: op.Output, known: !op.Pending}))
}

// TestLinearizableStreamCheckBites feeds the stream check streams that
// lose, duplicate, reorder or invent events, and ones that are right.
func TestLinearizableStreamCheckBites(t *testing.T) {
	set := func(client int, v string, call, ret int64, old string) Operation {
		return Operation{Client: client, Input: Input{Kind: OpValueSet, Key: valueKey, Value: v},
			Call: call, Return: ret, Output: Output{Value: old}}
	}
	pendingSet := func(client int, v string, call int64) Operation {
		return Operation{Client: client, Input: Input{Kind: OpValueSet, Key: valueKey, Value: v}, Call: call, Pending: true}
	}
	ev := func(old, new string, at int64) change {
		return change{old: Output{Value: old}, new: Output{Value: new}, at: at}
	}
	ops := []Operation{set(0, "a", 10, 12, ""), set(1, "b", 13, 15, "a"), pendingSet(2, "c", 16)}
	vstream := func(final string, events ...change) stream {
		return stream{key: valueKey, call: 1, ret: 2, events: events, final: Output{Value: final}}
	}
	tests := []struct {
		name string
		s    stream
		ok   bool
	}{
		{"every change once, in order", vstream("b", ev("", "a", 12), ev("a", "b", 15)), true},
		{"a pending set that applied", vstream("c", ev("", "a", 12), ev("a", "b", 15), ev("b", "c", 20)), true},
		{"lost", vstream("b", ev("a", "b", 15)), false},
		{"duplicated", vstream("b", ev("", "a", 12), ev("", "a", 13), ev("a", "b", 15)), false},
		{"reordered", vstream("a", ev("a", "b", 15), ev("", "a", 16)), false},
		{"invented", vstream("z", ev("", "a", 12), ev("a", "b", 15), ev("b", "z", 20)), false},
		{"before its set was called", vstream("c", ev("", "a", 12), ev("a", "b", 15), ev("b", "c", 14)), false},
		{"an acknowledged set missing at the end", vstream("a", ev("", "a", 12)), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := checkStream(ops, tt.s)
			if ok := len(errs) == 0; ok != tt.ok {
				t.Errorf("check passes: %t, want %t; errors %v", ok, tt.ok, errs)
			}
		})
	}
	ins := func(client int, v string, call, ret int64, old Output) Operation {
		return Operation{Client: client, Input: Input{Kind: OpMapInsert, Key: "k0", Value: v},
			Call: call, Return: ret, Output: old}
	}
	rem := func(client int, call, ret int64, old Output) Operation {
		return Operation{Client: client, Input: Input{Kind: OpMapRemove, Key: "k0"}, Call: call, Return: ret, Output: old}
	}
	held := func(v string) Output { return Output{Value: v, Found: true} }
	keyOps := []Operation{ins(0, "a", 10, 12, Output{}), rem(1, 13, 15, held("a")), ins(2, "b", 16, 18, Output{})}
	inserted := func(v string, at int64) change { return change{new: held(v), at: at} }
	removed := func(v string, at int64) change { return change{old: held(v), removed: true, at: at} }
	kstream := func(final Output, events ...change) stream {
		prev := Output{}
		for i := range events { // as ordered() fills them in
			if !events[i].removed {
				events[i].old = prev
			}
			prev = events[i].new
		}
		return stream{key: "k0", call: 1, ret: 2, events: events, final: final}
	}
	for _, tt := range []struct {
		name string
		s    stream
		ok   bool
	}{
		{"key: insert, remove, insert", kstream(held("b"), inserted("a", 12), removed("a", 15), inserted("b", 18)), true},
		{"key: the removal lost", kstream(held("b"), inserted("a", 12), inserted("b", 18)), false},
		{"key: a removal invented", kstream(Output{}, inserted("a", 12), removed("a", 15), inserted("b", 18), removed("b", 19)), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			errs := checkStream(keyOps, tt.s)
			if ok := len(errs) == 0; ok != tt.ok {
				t.Errorf("check passes: %t, want %t; errors %v", ok, tt.ok, errs)
			}
		})
	}
	everyKeyBites(t)
	number := []Operation{
		{Input: Input{Kind: OpNumberAdd, Key: numberKey, N: 2}, Call: 10, Return: 11, Output: Output{N: 2}},
		{Client: 1, Input: Input{Kind: OpNumberAdd, Key: numberKey, N: 2}, Call: 12, Pending: true},
	}
	nev := func(old, new int64, at int64) change { return change{old: Output{N: old}, new: Output{N: new}, at: at} }
	nstream := func(final int64, events ...change) stream {
		return stream{key: numberKey, call: 1, ret: 2, events: events, final: Output{N: final}}
	}
	for _, tt := range []struct {
		name string
		s    stream
		ok   bool
	}{
		{"number: both adds", nstream(4, nev(0, 2, 11), nev(2, 4, 13)), true},
		{"number: the pending add twice", nstream(6, nev(0, 2, 11), nev(2, 4, 13), nev(4, 6, 14)), false},
		{"number: the acknowledged add missing", nstream(0), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			errs := checkStream(number, tt.s)
			if ok := len(errs) == 0; ok != tt.ok {
				t.Errorf("check passes: %t, want %t; errors %v", ok, tt.ok, errs)
			}
		})
	}
}

// everyKeyBites checks the split of the stream of every key: k1 holds
// z when the stream opens, k0 is absent; the events interleave the two
// keys. Every event must land in its key's stream, changing the state
// its key was in, or the split streams fail the check.
func everyKeyBites(t *testing.T) {
	held := func(v string) Output { return Output{Value: v, Found: true} }
	ins := func(client int, k, v string, call, ret int64, old Output) Operation {
		return Operation{Client: client, Input: Input{Kind: OpMapInsert, Key: k, Value: v}, Call: call, Return: ret, Output: old}
	}
	ops := []Operation{
		ins(3, "k1", "z", 1, 2, Output{}),
		ins(0, "k0", "a", 10, 12, Output{}),
		ins(1, "k1", "b", 13, 15, held("z")),
		{Client: 2, Input: Input{Kind: OpMapRemove, Key: "k0"}, Call: 16, Return: 18, Output: held("a")},
		ins(0, "k1", "c", 19, 21, held("b")),
	}
	inserted := func(k, v string, at int64) change { return change{key: k, new: held(v), at: at} }
	removed := func(k, v string, at int64) change { return change{key: k, old: held(v), removed: true, at: at} }
	start := map[string]Output{"k1": held("z")}
	final := map[string]Output{"k0": {}, "k1": held("c")}
	right := func() []change {
		return []change{inserted("k0", "a", 12), inserted("k1", "b", 15), removed("k0", "a", 18), inserted("k1", "c", 21)}
	}
	dropped := slices.Delete(right(), 1, 2)
	duplicated := slices.Insert(right(), 1, inserted("k0", "a", 13))
	moved := right()
	moved[2].key = "k1"
	for _, tt := range []struct {
		name   string
		events []change
		ok     bool
	}{
		{"every key: each change once, on its key", right(), true},
		{"every key: an insert dropped", dropped, false},
		{"every key: an insert duplicated", duplicated, false},
		{"every key: a removal on another key", moved, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var errs []error
			streams := splitByKey(start, 3, 4, tt.events, final)
			for _, s := range streams {
				errs = append(errs, checkStream(ops, s)...)
			}
			if len(streams) != 2 {
				t.Errorf("split into %d streams, want one per key, k0 and k1", len(streams))
			}
			if ok := len(errs) == 0; ok != tt.ok {
				t.Errorf("check passes: %t, want %t; errors %v", ok, tt.ok, errs)
			}
		})
	}
}
