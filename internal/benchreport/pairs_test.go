package main

import "testing"

func TestPairWithoutPeerShowsTheMeasuredRatio(t *testing.T) {
	means := map[string]map[string]float64{
		"BenchmarkSMCommand/interleaved/callers=64": {"ns/op": 80000, "sm/raw": 1.12},
		"BenchmarkSMCommand/sm/callers=64":          {"ns/op": 45000},
		"BenchmarkSMCommand/raw/callers=64":         {"ns/op": 40000},
	}
	got := ratios(means, []string{"BenchmarkSMCommand/interleaved/callers=64", "BenchmarkSMCommand/sm/callers=64"})
	if len(got) != 2 {
		t.Fatalf("got %d ratios, want 2: %+v", len(got), got)
	}
	if r := got[0]; r.metric != "sm/raw" || r.value != 1.12 {
		t.Errorf("interleaved: got %s %v, want the benchmark's own sm/raw 1.12", r.metric, r.value)
	}
	if r := got[1]; r.metric != "ns/op" || r.value != 45000.0/40000 {
		t.Errorf("sm against raw: got %s %v, want ns/op %v", r.metric, r.value, 45000.0/40000)
	}
}
