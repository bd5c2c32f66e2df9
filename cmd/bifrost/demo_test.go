package main

import (
	"strings"
	"testing"
)

// TestDemo runs the demo the README points newcomers to, so it cannot
// silently rot.
func TestDemo(t *testing.T) {
	var out strings.Builder
	if err := demo(t.Context(), &out); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	for _, want := range []string{"hello loki (asked by the demo)", "caught up: realm=midgard",
		"the subscription to guard fired: heimdall", "ring at membership version", "c is c#2"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out.String())
		}
	}
}
