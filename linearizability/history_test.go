package linearizability

import "testing"

func TestHistoryOrdersOperations(t *testing.T) {
	var h History
	a := h.Invoke(0, Input{Kind: OpValueSet, Key: valueKey, Value: "1"})
	h.Return(a, Output{})
	b := h.Invoke(1, Input{Kind: OpValueGet, Key: valueKey})
	c := h.Invoke(2, Input{Kind: OpValueGet, Key: valueKey})
	h.Return(c, Output{Value: "1"})
	h.Annotate(c, "on 1")
	ops := h.Operations()
	if ops[a].Return >= ops[b].Call {
		t.Errorf("an operation that returned before another was called does not precede it: %+v %+v", ops[a], ops[b])
	}
	if !ops[b].Pending || ops[c].Pending || ops[c].Output.Value != "1" || ops[c].Detail != "on 1" {
		t.Errorf("recorded %+v", ops)
	}
}
