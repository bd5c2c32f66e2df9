package linearizability

import (
	"fmt"
	"hash/fnv"
	"maps"
	"math"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// kvModel is the sequential specification of the store for porcupine: per
// key a string that Put sets, Append extends and Get returns. Keys are
// independent, so histories are checked key by key.
var kvModel = porcupine.Model{
	Partition: partitionByKey,
	Init:      func() any { return "" },
	Step: func(state, input, output any) (bool, any) {
		in, value := input.(Input), state.(string)
		switch in.Kind {
		case OpPut:
			return true, in.Value
		case OpAppend:
			return true, value + in.Value
		default:
			return output.(string) == value, value
		}
	},
	Equal: func(a, b any) bool { return a.(string) == b.(string) },
	Hash: func(state any) uint64 {
		h := fnv.New64a()
		h.Write([]byte(state.(string)))
		return h.Sum64()
	},
	DescribeOperation: func(input, output any) string {
		in := input.(Input)
		switch in.Kind {
		case OpGet:
			return fmt.Sprintf("get(%q) -> %q", in.Key, abbreviate(output.(string)))
		case OpPut:
			return fmt.Sprintf("put(%q, %q)", in.Key, in.Value)
		default:
			return fmt.Sprintf("append(%q, %q)", in.Key, in.Value)
		}
	},
	DescribeState: func(state any) string { return fmt.Sprintf("%q", abbreviate(state.(string))) },
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

// abbreviate keeps long values readable in the visualization.
func abbreviate(s string) string {
	if len(s) <= 60 {
		return s
	}
	return s[:20] + "..." + s[len(s)-36:]
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

// toPorcupine converts a recorded history. A Put or Append that never
// returned may have taken effect at any time after its call, so it
// returns at "infinity"; a Get that never returned changed nothing and is
// left out.
func toPorcupine(ops []Operation) []porcupine.Operation {
	out := make([]porcupine.Operation, 0, len(ops))
	for _, op := range ops {
		ret := op.Return
		if op.Pending {
			if op.Input.Kind == OpGet {
				continue
			}
			ret = math.MaxInt64
		}
		out = append(out, porcupine.Operation{ClientId: op.Client, Input: op.Input,
			Call: op.Call, Output: op.Output, Return: ret, Metadata: op})
	}
	return out
}

// checkTimeout bounds porcupine's search; an Unknown result is reported
// but does not fail the test.
const checkTimeout = 10 * time.Second

// checkHistory runs porcupine over ops.
func checkHistory(ops []Operation) (porcupine.CheckResult, porcupine.LinearizationInfo) {
	return porcupine.CheckOperationsVerbose(kvModel, toPorcupine(ops), checkTimeout)
}

// saveFailure writes porcupine's visualization of a failed check, and the
// operations on the keys that fail with their details, to files that
// outlive the test, and logs their names.
func saveFailure(t *testing.T, info porcupine.LinearizationInfo, ops []Operation) {
	t.Helper()
	html, err := createTemp(t, "html")
	if err != nil {
		t.Logf("cannot write the visualization: %v", err)
		return
	}
	defer html.Close()
	if err := porcupine.Visualize(kvModel, info, html); err != nil {
		t.Logf("cannot write the visualization: %v", err)
		return
	}
	t.Logf("visualization: %s", html.Name())
	if name := dumpIllegalKeys(t, ops); name != "" {
		t.Logf("operations on the keys that fail, in call order: %s", name)
	}
}

func createTemp(t *testing.T, ext string) (*os.File, error) {
	name := strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())
	return os.CreateTemp("", "linearizability-"+name+"-*."+ext)
}

// dumpIllegalKeys writes, for every key whose history alone is not
// linearizable, its operations in call order with their details to a
// file, and returns the file's name.
func dumpIllegalKeys(t *testing.T, ops []Operation) string {
	byKey := map[string][]Operation{}
	for _, op := range ops {
		byKey[op.Input.Key] = append(byKey[op.Input.Key], op)
	}
	var b strings.Builder
	for _, key := range slices.Sorted(maps.Keys(byKey)) {
		kops := byKey[key]
		if porcupine.CheckOperationsTimeout(kvModel, toPorcupine(kops), checkTimeout) != porcupine.Illegal {
			continue
		}
		fmt.Fprintf(&b, "key %q:\n", key)
		for _, op := range kops {
			ret, rt := fmt.Sprint(op.Return), op.ReturnTime.Format("05.000")
			if op.Pending {
				ret, rt = "pending", "-"
			}
			fmt.Fprintf(&b, "%6d %7s  %s %6s  c%-2d %-6s %-12q -> %q  %s\n", op.Call, ret,
				op.CallTime.Format("05.000"), rt, op.Client, op.Input.Kind, op.Input.Value, op.Output, op.Detail)
		}
	}
	if b.Len() == 0 {
		return ""
	}
	f, err := createTemp(t, "txt")
	if err != nil {
		return ""
	}
	defer f.Close()
	if _, err := f.WriteString(b.String()); err != nil {
		return ""
	}
	return f.Name()
}

// TestLinearizableCheckerBites feeds the checker histories that are not
// linearizable, and one that is, so the suite is known to bite.
func TestLinearizableCheckerBites(t *testing.T) {
	put := func(k, v string) Input { return Input{Kind: OpPut, Key: k, Value: v} }
	app := func(k, v string) Input { return Input{Kind: OpAppend, Key: k, Value: v} }
	get := func(k string) Input { return Input{Kind: OpGet, Key: k} }
	op := func(client int, in Input, call, ret int64, out string) Operation {
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
		{"stale read after a completed put", []Operation{
			op(0, put("x", "1"), 1, 2, ""),
			op(1, put("x", "2"), 3, 4, ""),
			op(2, get("x"), 5, 6, "1"),
		}, porcupine.Illegal},
		{"append applied twice", []Operation{
			op(0, app("x", "a"), 1, 2, ""),
			op(0, app("x", "b"), 3, 4, ""),
			op(1, get("x"), 5, 6, "abb"),
		}, porcupine.Illegal},
		{"reads go back in time", []Operation{
			op(0, app("x", "a"), 1, 10, ""),
			op(1, get("x"), 2, 3, "a"),
			op(2, get("x"), 4, 5, ""),
		}, porcupine.Illegal},
		{"concurrent reads see either side", []Operation{
			op(0, put("x", "1"), 1, 10, ""),
			op(1, get("x"), 2, 3, "1"),
			op(2, get("x"), 2, 3, ""),
		}, porcupine.Ok},
		{"pending append may apply late", []Operation{
			pending(0, app("x", "a"), 1),
			op(1, get("x"), 2, 3, ""),
			op(1, get("x"), 4, 5, "a"),
			op(2, get("y"), 6, 7, ""),
		}, porcupine.Ok},
		{"pending append cannot undo itself", []Operation{
			pending(0, app("x", "a"), 1),
			op(1, get("x"), 2, 3, "a"),
			op(1, get("x"), 4, 5, ""),
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
