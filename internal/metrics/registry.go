package metrics

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
)

// Kind is a metric family's type, as the TYPE line names it.
type Kind string

// The kinds a Registry knows.
const (
	KindCounter   Kind = "counter"
	KindGauge     Kind = "gauge"
	KindHistogram Kind = "histogram"
)

// Labels name one series of a family: label names to values. A series'
// labels are fixed when it is registered, so updating it never formats or
// looks anything up.
type Labels map[string]string

// Registry names metrics and writes them out (WriteText, String). It holds
// live values (Counter, Gauge, Histogram) and functions read at each
// scrape (CounterFunc, GaugeFunc, HistogramFunc), which is how a part that
// keeps its own numbers is reported without copying them on its hot path.
// A Registry is safe for concurrent use.
//
// Registering is the program's wiring, so a bad name, a family registered
// again with another kind or help, or a series registered twice panics,
// as expvar.Publish does.
type Registry struct {
	mu       sync.Mutex // protects the following
	families map[string]*family
	names    []string // of families, sorted
}

// family is the series of one metric name.
type family struct {
	name, help string
	kind       Kind
	series     []*series // sorted by labels
}

// series is one labelled value. Exactly one of the readers is set.
type series struct {
	labels  string // rendered and escaped, without braces: a="x",b="y"
	counter func() uint64
	gauge   func() float64
	hist    func() HistogramSnapshot
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{families: map[string]*family{}} }

// Counter registers and returns a new counter.
func (r *Registry) Counter(name, help string, l Labels) *Counter {
	c := new(Counter)
	r.CounterFunc(name, help, l, c.Load)
	return c
}

// Gauge registers and returns a new gauge.
func (r *Registry) Gauge(name, help string, l Labels) *Gauge {
	g := new(Gauge)
	r.GaugeFunc(name, help, l, func() float64 { return float64(g.Load()) })
	return g
}

// Histogram registers and returns a new histogram with the given bounds.
func (r *Registry) Histogram(name, help string, l Labels, bounds []float64) *Histogram {
	h := NewHistogram(bounds)
	r.HistogramFunc(name, help, l, h.Snapshot)
	return h
}

// CounterFunc registers a counter whose value f returns at each scrape.
func (r *Registry) CounterFunc(name, help string, l Labels, f func() uint64) {
	r.add(name, help, KindCounter, l, &series{counter: f})
}

// GaugeFunc registers a gauge whose value f returns at each scrape.
func (r *Registry) GaugeFunc(name, help string, l Labels, f func() float64) {
	r.add(name, help, KindGauge, l, &series{gauge: f})
}

// HistogramFunc registers a histogram whose state f returns at each
// scrape.
func (r *Registry) HistogramFunc(name, help string, l Labels, f func() HistogramSnapshot) {
	r.add(name, help, KindHistogram, l, &series{hist: f})
}

func (r *Registry) add(name, help string, kind Kind, l Labels, s *series) {
	if err := checkSeries(name, kind, l); err != nil {
		panic(err)
	}
	s.labels = renderLabels(l)
	r.mu.Lock()
	defer r.mu.Unlock()
	f := r.families[name]
	if f == nil {
		f = &family{name: name, help: help, kind: kind}
		r.families[name] = f
		i, _ := slices.BinarySearch(r.names, name)
		r.names = slices.Insert(r.names, i, name)
	}
	if f.kind != kind || f.help != help {
		panic(fmt.Sprintf("metrics: %s registered as %s %q and as %s %q", name, f.kind, f.help, kind, help))
	}
	i, dup := slices.BinarySearchFunc(f.series, s.labels, func(x *series, l string) int { return strings.Compare(x.labels, l) })
	if dup {
		panic(fmt.Sprintf("metrics: series %s{%s} registered twice", name, s.labels))
	}
	f.series = slices.Insert(f.series, i, s)
}

// checkSeries enforces the exposition format's names.
func checkSeries(name string, kind Kind, l Labels) error {
	if !validName(name, true) {
		return fmt.Errorf("metrics: bad metric name %q", name)
	}
	for k := range l {
		if !validName(k, false) || strings.HasPrefix(k, "__") || kind == KindHistogram && k == "le" {
			return fmt.Errorf("metrics: bad label name %q of %s", k, name)
		}
	}
	return nil
}

// validName reports whether s matches [a-zA-Z_:][a-zA-Z0-9_:]*, without
// the colons for a label name.
func validName(s string, colon bool) bool {
	for i, c := range []byte(s) {
		ok := c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' ||
			i > 0 && c >= '0' && c <= '9' || colon && c == ':'
		if !ok {
			return false
		}
	}
	return s != ""
}

// renderLabels returns l in its exposition form, sorted by name.
func renderLabels(l Labels) string {
	var b []byte
	for _, k := range slices.Sorted(maps.Keys(l)) {
		if len(b) > 0 {
			b = append(b, ',')
		}
		b = appendLabel(b, k, l[k])
	}
	return string(b)
}

// snapshot returns the families as they are registered now; the series
// slices are copies, so writing needs no lock while others register.
func (r *Registry) snapshot() []family {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]family, 0, len(r.names))
	for _, n := range r.names {
		f := *r.families[n]
		f.series = slices.Clone(f.series)
		out = append(out, f)
	}
	return out
}
