package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Meta is what the report says about the run besides the figures.
type Meta struct {
	Command   string    // what regenerates the report
	Started   time.Time // zero if unknown
	Finished  time.Time // when the report was written
	NProc     int       // CPUs of the machine
	GoVersion string
	LoadStart string // /proc/loadavg when the run started, "" if unknown
	LoadEnd   string // and when it ended
}

// Write writes the markdown report of pkgs.
func Write(w io.Writer, meta Meta, pkgs []*Package) error {
	groups := merge(pkgs)
	var b strings.Builder
	writeHeader(&b, meta, groups)
	writeSummary(&b, groups)
	for _, g := range groups {
		writeGroup(&b, g)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writeHeader(b *strings.Builder, meta Meta, groups []*group) {
	fmt.Fprintf(b, "# Benchmarks\n\n")
	fmt.Fprintf(b, "Every figure here is from one run of `%s`, which runs each set of benchmarks "+
		"(the command is given with each package), keeps the raw output in `.bench/` "+
		"and writes this file with `internal/benchreport`.\n\n", meta.Command)
	fmt.Fprintf(b, "The figures come from a shared, noisy %d-core machine, with other work running "+
		"at the same time (see the load average below). Absolute figures move from run to run: "+
		"compare the ratios, ours and the peer measured within one run, one after the other.\n\n", meta.NProc)
	fmt.Fprintf(b, "| machine | |\n|---|---|\n")
	fmt.Fprintf(b, "| cpu | %s |\n", cell(firstCPU(groups)))
	fmt.Fprintf(b, "| nproc | %d |\n", meta.NProc)
	fmt.Fprintf(b, "| go | %s |\n", cell(meta.GoVersion))
	if !meta.Started.IsZero() {
		fmt.Fprintf(b, "| run | %s to %s (%s) |\n", meta.Started.UTC().Format(time.RFC3339),
			meta.Finished.UTC().Format(time.RFC3339), meta.Finished.Sub(meta.Started).Round(time.Second))
	} else {
		fmt.Fprintf(b, "| date | %s |\n", meta.Finished.UTC().Format(time.RFC3339))
	}
	if meta.LoadStart != "" || meta.LoadEnd != "" {
		fmt.Fprintf(b, "| load average (1, 5, 15 min) | at start %s; at end %s |\n",
			cell(loadavg(meta.LoadStart)), cell(loadavg(meta.LoadEnd)))
	}
	b.WriteString("\n")
}

func firstCPU(groups []*group) string {
	for _, g := range groups {
		if g.cpu != "" {
			return g.cpu
		}
	}
	return "unknown"
}

// loadavg keeps the three averages of a /proc/loadavg line.
func loadavg(s string) string {
	f := strings.Fields(s)
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func writeSummary(b *strings.Builder, groups []*group) {
	b.WriteString("## Ratios\n\n| package | benchmark | against | metric | ratio | what |\n|---|---|---|---|---:|---|\n")
	for _, g := range groups {
		for _, r := range g.ratios {
			against := r.peer
			if r.row == r.peer {
				against = r.ours
			}
			fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s |\n", cell(short(g.path)), cell(r.row), cell(against), cell(r.metric), ratioText(r.value), cell(r.label))
		}
	}
	b.WriteString("\n")
}

func writeGroup(b *strings.Builder, g *group) {
	fmt.Fprintf(b, "## %s\n\n", cell(short(g.path)))
	for _, c := range g.commands {
		fmt.Fprintf(b, "    %s\n", c)
	}
	if len(g.commands) > 0 {
		b.WriteString("\n")
	}
	if len(g.benches) == 0 {
		b.WriteString("**Not measured in this run.**\n\n")
	}
	if len(g.failed) > 0 {
		fmt.Fprintf(b, "Failed: %s\n\n", cell(strings.Join(g.failed, "; ")))
	}
	for _, fn := range functions(g.benches) {
		writeTable(b, g, fn)
	}
}

// short drops the module path, which every package shares.
func short(path string) string {
	if path == "" {
		return "(no package line)"
	}
	return strings.TrimPrefix(path, "github.com/bifrost-go/bifrost/")
}

// functions is the benchmark functions in the order first printed.
func functions(bs []*bench) []string {
	var fns []string
	for _, b := range bs {
		if fn := topLevel(b.name); !slices.Contains(fns, fn) {
			fns = append(fns, fn)
		}
	}
	return fns
}

func topLevel(name string) string {
	fn, _, _ := strings.Cut(name, "/")
	return fn
}

func writeTable(b *strings.Builder, g *group, fn string) {
	var rows []*bench
	var units []string
	for _, x := range g.benches {
		if topLevel(x.name) != fn {
			continue
		}
		rows = append(rows, x)
		for _, u := range x.units {
			if !slices.Contains(units, u) {
				units = append(units, u)
			}
		}
	}
	withRatio := slices.ContainsFunc(rows, func(x *bench) bool { return len(rowRatios(g, x.name)) > 0 })
	fmt.Fprintf(b, "### %s\n\n| benchmark | iterations |", cell(fn))
	for _, u := range units {
		fmt.Fprintf(b, " %s |", cell(u))
	}
	if withRatio {
		b.WriteString(" ratio |")
	}
	b.WriteString("\n|---|---:|" + strings.Repeat("---:|", len(units)))
	if withRatio {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	for _, x := range rows {
		writeRow(b, g, x, units, withRatio)
	}
	b.WriteString("\n")
}

func writeRow(b *strings.Builder, g *group, x *bench, units []string, withRatio bool) {
	fmt.Fprintf(b, "| %s | %s |", cell(x.name), strings.Join(x.iterations, ", "))
	for _, u := range units {
		v, ok := x.means[u]
		if !ok {
			b.WriteString(" |")
			continue
		}
		fmt.Fprintf(b, " %s |", num(v))
	}
	if withRatio {
		var cs []string
		for _, r := range rowRatios(g, x.name) {
			cs = append(cs, "**"+ratioText(r.value)+"** "+r.metric+", "+r.label)
		}
		fmt.Fprintf(b, " %s |", cell(strings.Join(cs, "; ")))
	}
	b.WriteString("\n")
}

func rowRatios(g *group, name string) []ratio {
	var out []ratio
	for _, r := range g.ratios {
		if r.row == name {
			out = append(out, r)
		}
	}
	return out
}

// num prints three or so significant figures: enough to compare, few
// enough to read.
func num(v float64) string {
	a := math.Abs(v)
	switch {
	case a >= 100 || a == math.Trunc(a):
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case a >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}

func ratioText(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) + "×" }

// cell keeps text from breaking a markdown table row.
func cell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}
