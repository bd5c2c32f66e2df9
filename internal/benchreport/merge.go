package main

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// bench is the results of one name within a package: -count repeats it.
type bench struct {
	name       string // without the -GOMAXPROCS suffix
	iterations []string
	values     map[string][]float64 // by unit, one per run
	means      map[string]float64   // by unit, filled once every run is in
	units      []string             // in the order printed
}

// group is a package with every run of it merged, as the Makefile may run
// one package more than once with different -benchtime.
type group struct {
	path     string
	cpu      string
	commands []string
	failed   []string
	benches  []*bench
	ratios   []ratio
}

// merge groups the packages of every run by import path.
func merge(pkgs []*Package) []*group {
	var groups []*group
	byPath := map[string]*group{}
	for _, p := range pkgs {
		g := byPath[p.Path]
		if g == nil {
			g = &group{path: p.Path}
			byPath[p.Path] = g
			groups = append(groups, g)
		}
		g.add(p)
	}
	for _, g := range groups {
		g.ratios = ratios(g.means())
	}
	return groups
}

func (g *group) add(p *Package) {
	if g.cpu == "" {
		g.cpu = p.CPU
	}
	if p.Command != "" && !slices.Contains(g.commands, p.Command) {
		g.commands = append(g.commands, p.Command)
	}
	g.failed = append(g.failed, p.Failed...)
	for _, r := range trimProcs(p.Results) {
		b := g.bench(r.Name)
		b.iterations = append(b.iterations, strconv.FormatInt(r.Iterations, 10))
		for _, m := range r.Metrics {
			if !slices.Contains(b.units, m.Unit) {
				b.units = append(b.units, m.Unit)
			}
			b.values[m.Unit] = append(b.values[m.Unit], m.Value)
		}
	}
}

func (g *group) bench(name string) *bench {
	for _, b := range g.benches {
		if b.name == name {
			return b
		}
	}
	b := &bench{name: name, values: map[string][]float64{}, means: map[string]float64{}}
	g.benches = append(g.benches, b)
	return b
}

// means averages each name's runs, and returns the means by name and
// unit, with the names in the order first printed.
func (g *group) means() (map[string]map[string]float64, []string) {
	means := map[string]map[string]float64{}
	var names []string
	for _, b := range g.benches {
		for unit, vs := range b.values {
			b.means[unit] = mean(vs)
		}
		means[b.name] = b.means
		names = append(names, b.name)
	}
	return means, names
}

func mean(vs []float64) float64 {
	var s float64
	for _, v := range vs {
		s += v
	}
	return s / float64(len(vs))
}

var procsSuffix = regexp.MustCompile(`-\d+$`)

// trimProcs drops the -GOMAXPROCS suffix go test adds to every name. It
// is only told apart from a name that ends in a number (watch-100) by
// being on every line of the run, so a suffix that is not is kept.
func trimProcs(rs []Result) []Result {
	if len(rs) == 0 {
		return rs
	}
	suffix := procsSuffix.FindString(rs[0].Name)
	for _, r := range rs {
		if suffix == "" || !strings.HasSuffix(r.Name, suffix) {
			return rs
		}
	}
	out := slices.Clone(rs)
	for i := range out {
		out[i].Name = strings.TrimSuffix(out[i].Name, suffix)
	}
	return out
}
