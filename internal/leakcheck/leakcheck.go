// Package leakcheck finds goroutines that outlive the tests of a package.
// Every goroutine the library starts has an owner whose Close or Stop waits
// for it, so after a package's tests none of its code may still run.
package leakcheck

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Main runs the tests and then fails the run if any goroutine still runs
// code whose stack mentions pkg (an import path). Call it from TestMain:
//
//	func TestMain(m *testing.M) { leakcheck.Main(m, "github.com/bifrost-go/bifrost/rpc") }
func Main(m *testing.M, pkg string) {
	code := m.Run()
	if code == 0 {
		if err := Check(pkg); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

// Check returns an error listing the goroutines running pkg's code.
// Goroutines in the middle of returning (a timer that just fired) get a
// bounded grace period: the only wait on the wall clock, and only at exit.
func Check(pkg string) error {
	var leaked []string
	for range 100 {
		if leaked = Goroutines(pkg); len(leaked) == 0 {
			return nil
		}
		runtime.Gosched()
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("leakcheck: %d goroutines of %s outlived the tests:\n\n%s",
		len(leaked), pkg, strings.Join(leaked, "\n\n"))
}

// Goroutines returns the stacks of the goroutines that mention pkg, other
// than the caller's own.
func Goroutines(pkg string) []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var leaked []string
	for i, g := range strings.Split(string(buf), "\n\n") {
		if i > 0 && strings.Contains(g, pkg+".") {
			leaked = append(leaked, g)
		}
	}
	return leaked
}
