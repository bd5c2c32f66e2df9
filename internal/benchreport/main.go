// Command benchreport turns the raw output of go test -bench into
// BENCHMARKS.md: the machine, every figure by package, and the ratios of
// the benchmarks that are held against a peer (see pairs.go).
//
//	go run ./internal/benchreport -o BENCHMARKS.md .bench/*.txt
//
// A line "cmd: <command>" in the raw output, which the Makefile writes
// before each run, is shown as the command for the packages that follow.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"runtime"
	"time"
)

func main() {
	out := flag.String("o", "", "file to write, standard output if empty")
	command := flag.String("cmd", "make benchmarks", "the command that regenerates the report")
	started := flag.String("started", "", "when the run started, RFC 3339")
	loadStart := flag.String("loadavg-start", "", "file holding /proc/loadavg from the start of the run")
	flag.Parse()
	if err := run(*out, *command, *started, *loadStart, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		os.Exit(1)
	}
}

func run(out, command, started, loadStart string, files []string) error {
	meta := Meta{Command: command, Finished: time.Now(), NProc: runtime.NumCPU(), GoVersion: runtime.Version()}
	if started != "" {
		t, err := time.Parse(time.RFC3339, started)
		if err != nil {
			return err
		}
		meta.Started = t
	}
	meta.LoadStart = readOptional(loadStart)
	meta.LoadEnd = readOptional("/proc/loadavg")
	var pkgs []*Package
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		pkgs = append(pkgs, Parse(data)...)
	}
	var b bytes.Buffer
	if err := Write(&b, meta, pkgs); err != nil {
		return err
	}
	if out == "" {
		_, err := os.Stdout.Write(b.Bytes())
		return err
	}
	return os.WriteFile(out, b.Bytes(), 0o644)
}

// readOptional is the contents of a file, or "" if it cannot be read: a
// machine without /proc still gets its report.
func readOptional(path string) string {
	if path == "" {
		return ""
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return string(data)
}
