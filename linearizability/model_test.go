package linearizability

import (
	"fmt"
	"hash/fnv"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// object is the state of one object under test: a key of the Map
// (value and found), the Value (value) or the Number (n). The zero
// object is each one's initial state: an absent key, the empty string,
// zero.
type object struct {
	value string
	found bool
	n     int64
}

// apply is the sequential specification of the built-in machines, as
// their documentation states it: the state after in, and what in
// returns.
func apply(st object, in Input) (object, Output) {
	switch in.Kind {
	case OpMapGet:
		return st, Output{Value: st.value, Found: st.found}
	case OpMapInsert:
		return object{value: in.Value, found: true}, Output{Value: st.value, Found: st.found}
	case OpMapRemove:
		return object{}, Output{Value: st.value, Found: st.found}
	case OpMapCompareAndSwap:
		if !st.found || st.value != in.Old {
			return st, Output{}
		}
		return object{value: in.Value, found: true}, Output{Swapped: true}
	case OpValueGet:
		return st, Output{Value: st.value}
	case OpValueSet:
		return object{value: in.Value}, Output{Value: st.value}
	case OpNumberGet:
		return st, Output{N: st.n}
	case OpNumberAdd:
		return object{n: st.n + in.N}, Output{N: st.n + in.N}
	case OpNumberCompareAndSwap:
		if st.n != in.OldN {
			return st, Output{}
		}
		return object{n: in.N}, Output{Swapped: true}
	}
	panic(fmt.Sprintf("linearizability: no specification of %v", in.Kind))
}

// outcome is an operation's output for porcupine: what it returned, or
// nothing known, for an operation that never returned.
type outcome struct {
	out   Output
	known bool
}

// model is the specification for porcupine. Every operation is
// deterministic given the state, so one whose outcome is unknown still
// has a known effect if it took effect at all: Step applies it and
// accepts whatever it returned. Objects are independent, so histories
// are checked object by object.
var model = porcupine.Model{
	Partition: partitionByKey,
	Init:      func() any { return object{} },
	Step: func(state, input, output any) (bool, any) {
		next, want := apply(state.(object), input.(Input))
		o := output.(outcome)
		return !o.known || o.out == want, next
	},
	Equal: func(a, b any) bool { return a.(object) == b.(object) },
	Hash: func(state any) uint64 {
		st := state.(object)
		h := fnv.New64a()
		fmt.Fprintf(h, "%t %d %s", st.found, st.n, st.value)
		return h.Sum64()
	},
	DescribeOperation: func(input, output any) string {
		return describe(input.(Input), output.(outcome))
	},
	DescribeState: func(state any) string {
		st := state.(object)
		return fmt.Sprintf("value %q found %t n %d", st.value, st.found, st.n)
	},
	DescribeOperationMetadata: func(info any) string {
		op, ok := info.(Operation)
		if !ok {
			return ""
		}
		end := "never returned"
		if !op.Pending {
			end = op.ReturnTime.Format("05.000")
		}
		return fmt.Sprintf("client %d, fake time %s to %s; %s", op.Client, op.CallTime.Format("05.000"), end, op.Detail)
	},
}

// describe writes an operation as a call and its result.
func describe(in Input, o outcome) string {
	var call string
	switch in.Kind {
	case OpMapGet, OpMapRemove:
		call = fmt.Sprintf("%v(%q)", in.Kind, in.Key)
	case OpMapInsert:
		call = fmt.Sprintf("%v(%q, %q)", in.Kind, in.Key, in.Value)
	case OpMapCompareAndSwap:
		call = fmt.Sprintf("%v(%q, %q, %q)", in.Kind, in.Key, in.Old, in.Value)
	case OpValueSet:
		call = fmt.Sprintf("%v(%q)", in.Kind, in.Value)
	case OpNumberAdd:
		call = fmt.Sprintf("%v(%d)", in.Kind, in.N)
	case OpNumberCompareAndSwap:
		call = fmt.Sprintf("%v(%d, %d)", in.Kind, in.OldN, in.N)
	default:
		call = in.Kind.String() + "()"
	}
	if !o.known {
		return call + " -> ?"
	}
	return call + " -> " + describeOutput(in.Kind, o.out)
}

func describeOutput(k OpKind, out Output) string {
	switch k {
	case OpMapGet, OpMapInsert, OpMapRemove:
		if !out.Found {
			return "absent"
		}
		return fmt.Sprintf("%q", out.Value)
	case OpMapCompareAndSwap, OpNumberCompareAndSwap:
		return fmt.Sprint(out.Swapped)
	case OpValueGet, OpValueSet:
		return fmt.Sprintf("%q", out.Value)
	default:
		return fmt.Sprint(out.N)
	}
}

func partitionByKey(history []porcupine.Operation) [][]porcupine.Operation {
	byKey := map[string][]porcupine.Operation{}
	var keys []string
	for _, op := range history {
		k := op.Input.(Input).Key
		if _, ok := byKey[k]; !ok {
			keys = append(keys, k)
		}
		byKey[k] = append(byKey[k], op)
	}
	parts := make([][]porcupine.Operation, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, byKey[k])
	}
	return parts
}

// toPorcupine converts a recorded history. An update that never
// returned may have taken effect at any time after its call, or never:
// it returns at "infinity" with an unknown output, so that the checker
// may place it anywhere after its call, including after everything else,
// where it changes nothing anyone saw. It is never dropped and never
// assumed to have happened. A read that never returned changed nothing
// and is left out.
func toPorcupine(ops []Operation) []porcupine.Operation {
	out := make([]porcupine.Operation, 0, len(ops))
	for _, op := range ops {
		ret, o := op.Return, outcome{out: op.Output, known: true}
		if op.Pending {
			if op.Input.Kind.IsRead() {
				continue
			}
			ret, o = math.MaxInt64, outcome{}
		}
		out = append(out, porcupine.Operation{ClientId: op.Client, Input: op.Input,
			Call: op.Call, Output: o, Return: ret, Metadata: op})
	}
	return out
}

// checkTimeout bounds porcupine's search; an Unknown result is reported
// but does not fail the test.
const checkTimeout = 10 * time.Second

// checkHistory runs porcupine over ops.
func checkHistory(ops []Operation) (porcupine.CheckResult, porcupine.LinearizationInfo) {
	return porcupine.CheckOperationsVerbose(model, toPorcupine(ops), checkTimeout)
}

// saveFailure writes porcupine's visualization of a failed check, and the
// operations on the objects that fail with their details, to files in
// dir, logs their names and returns the visualization's.
func saveFailure(t *testing.T, dir string, info porcupine.LinearizationInfo, ops []Operation) string {
	t.Helper()
	html := failureFile(t, dir, "html")
	if err := porcupine.VisualizePath(model, info, html); err != nil {
		t.Logf("cannot write the visualization: %v", err)
		return ""
	}
	t.Logf("visualization: %s", html)
	if name := dumpIllegalKeys(t, dir, ops); name != "" {
		t.Logf("operations on the objects that fail, in call order: %s", name)
	}
	return html
}

// failureDir is where a failed check leaves its files: the directory
// $LINEARIZABILITY_OUT names, or else the system's temporary one, which
// outlives the test (t.TempDir would not).
func failureDir() string {
	if dir := os.Getenv("LINEARIZABILITY_OUT"); dir != "" {
		return dir
	}
	return os.TempDir()
}

// failureFile returns the name of a new file in dir, named after the
// test.
func failureFile(t *testing.T, dir, ext string) string {
	name := strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())
	f, err := os.CreateTemp(dir, "linearizability-"+name+"-*."+ext)
	if err != nil {
		return filepath.Join(dir, "linearizability-"+name+"."+ext)
	}
	f.Close()
	return f.Name()
}

// dumpIllegalKeys writes, for every object whose history alone is not
// linearizable, its operations in call order with their details to a
// file, and returns the file's name.
func dumpIllegalKeys(t *testing.T, dir string, ops []Operation) string {
	byKey := map[string][]Operation{}
	for _, op := range ops {
		byKey[op.Input.Key] = append(byKey[op.Input.Key], op)
	}
	var b strings.Builder
	for _, key := range slices.Sorted(maps.Keys(byKey)) {
		kops := byKey[key]
		if porcupine.CheckOperationsTimeout(model, toPorcupine(kops), checkTimeout) != porcupine.Illegal {
			continue
		}
		fmt.Fprintf(&b, "object %q:\n", key)
		for _, op := range kops {
			ret, rt := fmt.Sprint(op.Return), op.ReturnTime.Format("05.000")
			if op.Pending {
				ret, rt = "pending", "-"
			}
			fmt.Fprintf(&b, "%6d %7s  %s %6s  c%-2d %s  %s\n", op.Call, ret,
				op.CallTime.Format("05.000"), rt, op.Client,
				describe(op.Input, outcome{out: op.Output, known: !op.Pending}), op.Detail)
		}
	}
	if b.Len() == 0 {
		return ""
	}
	name := failureFile(t, dir, "txt")
	if err := os.WriteFile(name, []byte(b.String()), 0o644); err != nil {
		return ""
	}
	return name
}

// TestLinearizableCheckerBites feeds the checker histories that are not
// linearizable, and some that are, so the suite is known to bite, and
// unknown outcomes are known to be neither dropped nor assumed.
func TestLinearizableCheckerBites(t *testing.T) {
	set := func(v string) Input { return Input{Kind: OpValueSet, Key: valueKey, Value: v} }
	get := Input{Kind: OpValueGet, Key: valueKey}
	add := func(d int64) Input { return Input{Kind: OpNumberAdd, Key: numberKey, N: d} }
	nget := Input{Kind: OpNumberGet, Key: numberKey}
	ins := func(k, v string) Input { return Input{Kind: OpMapInsert, Key: k, Value: v} }
	mget := func(k string) Input { return Input{Kind: OpMapGet, Key: k} }
	cas := func(k, old, v string) Input { return Input{Kind: OpMapCompareAndSwap, Key: k, Old: old, Value: v} }
	op := func(client int, in Input, call, ret int64, out Output) Operation {
		return Operation{Client: client, Input: in, Call: call, Return: ret, Output: out}
	}
	pending := func(client int, in Input, call int64) Operation {
		return Operation{Client: client, Input: in, Call: call, Pending: true}
	}
	tests := []struct {
		name string
		ops  []Operation
		want porcupine.CheckResult
	}{
		{"stale read after a completed set", []Operation{
			op(0, set("1"), 1, 2, Output{}),
			op(1, set("2"), 3, 4, Output{Value: "1"}),
			op(2, get, 5, 6, Output{Value: "1"}),
		}, porcupine.Illegal},
		{"add applied twice", []Operation{
			op(0, add(1), 1, 2, Output{N: 1}),
			op(0, add(2), 3, 4, Output{N: 3}),
			op(1, nget, 5, 6, Output{N: 5}),
		}, porcupine.Illegal},
		{"reads go back in time", []Operation{
			op(0, ins("x", "a"), 1, 10, Output{}),
			op(1, mget("x"), 2, 3, Output{Value: "a", Found: true}),
			op(2, mget("x"), 4, 5, Output{}),
		}, porcupine.Illegal},
		{"a swap that saw a value nobody wrote", []Operation{
			op(0, ins("x", "a"), 1, 2, Output{}),
			op(1, cas("x", "b", "c"), 3, 4, Output{Swapped: true}),
		}, porcupine.Illegal},
		{"concurrent reads see either side", []Operation{
			op(0, ins("x", "1"), 1, 10, Output{}),
			op(1, mget("x"), 2, 3, Output{Value: "1", Found: true}),
			op(2, mget("x"), 2, 3, Output{}),
		}, porcupine.Ok},
		{"pending add may apply late", []Operation{
			pending(0, add(4), 1),
			op(1, nget, 2, 3, Output{}),
			op(1, nget, 4, 5, Output{N: 4}),
			op(2, mget("y"), 6, 7, Output{}),
		}, porcupine.Ok},
		{"pending add may never apply", []Operation{
			pending(0, add(4), 1),
			op(1, nget, 4, 5, Output{}),
		}, porcupine.Ok},
		{"pending add cannot undo itself", []Operation{
			pending(0, add(4), 1),
			op(1, nget, 2, 3, Output{N: 4}),
			op(1, nget, 4, 5, Output{}),
		}, porcupine.Illegal},
		{"pending set cannot apply before its call", []Operation{
			op(1, get, 1, 2, Output{Value: "a"}),
			pending(0, set("a"), 3),
		}, porcupine.Illegal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, _ := checkHistory(tt.ops); got != tt.want {
				t.Errorf("porcupine says %v, want %v", got, tt.want)
			}
		})
	}
}
