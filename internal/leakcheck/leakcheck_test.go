package leakcheck

import (
	"strings"
	"testing"
)

func parked(stop chan struct{}) { <-stop }

func TestGoroutinesFindsAParkedGoroutine(t *testing.T) {
	const pkg = "github.com/bifrost-go/bifrost/internal/leakcheck"
	stop := make(chan struct{})
	started := make(chan struct{})
	go func() { close(started); parked(stop) }()
	<-started
	found := false
	for _, g := range Goroutines(pkg) {
		found = found || strings.Contains(g, "TestGoroutinesFindsAParkedGoroutine.func1")
	}
	close(stop)
	if !found {
		t.Fatal("the parked goroutine was not reported")
	}
	if err := Check(pkg); err != nil {
		t.Errorf("after it returned: %v", err)
	}
}
