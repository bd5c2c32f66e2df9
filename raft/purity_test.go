package raft

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// forbiddenImports would let the core do I/O, read the clock, share memory
// or draw unseeded randomness: everything that makes a run unrepeatable.
// Subpackages (net/http, sync/atomic, os/exec) are forbidden with them.
var forbiddenImports = []string{"net", "os", "time", "sync", "syscall", "unsafe", "math/rand"}

// TestCoreIsPure keeps the package's non-test files free of I/O, clocks,
// locks and goroutines, so the core stays a deterministic value.
func TestCoreIsPure(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		checked++
		for _, msg := range impurities(t, name, nil) {
			t.Error(msg)
		}
	}
	if checked == 0 {
		t.Fatal("no non-test files checked")
	}
}

// TestPurityCheckCatches makes sure the check above is not vacuous.
func TestPurityCheckCatches(t *testing.T) {
	src := `package raft
import (
	"math/rand"
	"math/rand/v2"
	"net/http"
	"sync/atomic"
	"timeout"
)
func f() { go f() }`
	got := impurities(t, "bad.go", src)
	if len(got) != 4 {
		t.Errorf("found %d impurities, want 4 (math/rand, net/http, sync/atomic, go):\n%s", len(got), strings.Join(got, "\n"))
	}
}

// impurities parses one file (src, or the file itself when src is nil) and
// describes every forbidden import and go statement in it.
func impurities(t *testing.T, name string, src any) []string {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, name, src, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, imp := range f.Imports {
		path, _ := strconv.Unquote(imp.Path.Value)
		if isForbidden(path) {
			out = append(out, fmt.Sprintf("%v: imports %q", fset.Position(imp.Pos()), path))
		}
	}
	ast.Inspect(f, func(n ast.Node) bool {
		if g, ok := n.(*ast.GoStmt); ok {
			out = append(out, fmt.Sprintf("%v: go statement", fset.Position(g.Pos())))
		}
		return true
	})
	return out
}

func isForbidden(path string) bool {
	for _, bad := range forbiddenImports {
		if path == bad || strings.HasPrefix(path, bad+"/") && !strings.HasPrefix(path, "math/rand/v") {
			return true
		}
	}
	return false
}
