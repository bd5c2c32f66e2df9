package main

import (
	"strconv"
	"strings"
)

// A Package is what one package's run printed: its header, the results
// in the order printed and what failed.
type Package struct {
	Path    string // import path, from the pkg: line or a FAIL line
	Goos    string
	Goarch  string
	CPU     string
	Command string   // the cmd: line the Makefile writes before a run
	Results []Result // in the order printed; -count repeats a name
	Failed  []string // "--- FAIL: name" names and "FAIL pkg ..." lines
}

// A Result is one benchmark line.
type Result struct {
	Name       string // as printed, with any -GOMAXPROCS suffix
	Iterations int64
	Metrics    []Metric // in the order printed
}

// A Metric is one value-unit pair of a benchmark line.
type Metric struct {
	Value float64
	Unit  string // ns/op, B/op, or whatever b.ReportMetric was given
}

// Parse reads the output of go test -bench, as many packages and runs as
// it holds. Lines it does not know (test logs, PASS, build errors) are
// skipped rather than refused: the output of a run that went wrong is
// still worth reporting on.
func Parse(data []byte) []*Package {
	p := parser{}
	for line := range strings.Lines(string(data)) {
		p.line(strings.TrimRight(line, "\r\n"))
	}
	return p.pkgs
}

// parser holds what a line applies to: go test prints goos and goarch
// before the pkg line that starts a package, and cmd: comes before both.
type parser struct {
	pkgs              []*Package
	cur               *Package
	cmd, goos, goarch string
}

func (p *parser) line(s string) {
	key, val, ok := strings.Cut(s, ": ")
	switch {
	case strings.HasPrefix(s, "Benchmark"):
		p.benchmark(s)
	case ok && key == "cmd":
		p.cmd, p.cur = val, nil
	case ok && key == "goos":
		p.goos = val
	case ok && key == "goarch":
		p.goarch = val
	case ok && key == "pkg":
		p.start(strings.TrimSpace(val))
	case ok && key == "cpu":
		p.current().CPU = val
	case strings.HasPrefix(s, "--- FAIL: "):
		name, _, _ := strings.Cut(strings.TrimPrefix(s, "--- FAIL: "), " ")
		p.current().Failed = append(p.current().Failed, name)
	case strings.HasPrefix(s, "FAIL\t") || strings.HasPrefix(s, "FAIL "):
		p.fail(s)
	}
}

func (p *parser) start(path string) {
	p.cur = &Package{Path: path, Goos: p.goos, Goarch: p.goarch, Command: p.cmd}
	p.pkgs = append(p.pkgs, p.cur)
}

// current is the package a line belongs to, one without a path if the
// output had no pkg line.
func (p *parser) current() *Package {
	if p.cur == nil {
		p.start("")
	}
	return p.cur
}

// fail records a "FAIL pkg [reason]" line. A package that failed to build
// printed no pkg line, so the FAIL line is its only trace.
func (p *parser) fail(s string) {
	fields := strings.Fields(s)
	if len(fields) < 2 {
		return
	}
	if p.cur == nil || (p.cur.Path != fields[1] && p.cur.Path != "") {
		p.start(fields[1])
	}
	p.cur.Path = fields[1]
	p.cur.Failed = append(p.cur.Failed, strings.Join(fields, " "))
	p.cur = nil
}

// benchmark parses "BenchmarkName-N  iterations  value unit  value unit...".
// A name alone on its line (printed before a benchmark's log output) is
// not a result.
func (p *parser) benchmark(s string) {
	fields := strings.Fields(s)
	if len(fields) < 4 || len(fields)%2 != 0 {
		return
	}
	n, err := strconv.ParseInt(fields[1], 10, 64)
	if err != nil || n < 0 {
		return
	}
	r := Result{Name: fields[0], Iterations: n}
	for i := 2; i < len(fields); i += 2 {
		v, err := strconv.ParseFloat(fields[i], 64)
		if err != nil {
			return
		}
		r.Metrics = append(r.Metrics, Metric{Value: v, Unit: fields[i+1]})
	}
	c := p.current()
	c.Results = append(c.Results, r)
}
