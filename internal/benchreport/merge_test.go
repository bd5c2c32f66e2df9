package main

import (
	"strings"
	"testing"
)

func TestTrimProcs(t *testing.T) {
	tests := []struct {
		names, want []string
	}{
		{[]string{"BenchmarkA-2", "BenchmarkB/watch-100-2"}, []string{"BenchmarkA", "BenchmarkB/watch-100"}},
		{[]string{"BenchmarkA", "BenchmarkB/watch-100"}, []string{"BenchmarkA", "BenchmarkB/watch-100"}},
		{[]string{"BenchmarkB/watch-100"}, []string{"BenchmarkB/watch"}}, // one line cannot tell them apart
		{[]string{"BenchmarkA-2", "BenchmarkB-4"}, []string{"BenchmarkA-2", "BenchmarkB-4"}},
	}
	for _, tt := range tests {
		var rs []Result
		for _, n := range tt.names {
			rs = append(rs, Result{Name: n})
		}
		var got []string
		for _, r := range trimProcs(rs) {
			got = append(got, r.Name)
		}
		if strings.Join(got, " ") != strings.Join(tt.want, " ") {
			t.Errorf("trimProcs(%q) = %q, want %q", tt.names, got, tt.want)
		}
	}
}
