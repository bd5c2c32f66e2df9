package metrics

import (
	"encoding/json"
	"io"
	"math"
	"strconv"
)

// ContentType is the media type of WriteText's output.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// WriteText writes every family in the Prometheus text exposition format
// (version 0.0.4): a HELP and a TYPE line, then its series, families by
// name and series by labels, so that two scrapes of the same state are
// the same bytes. A histogram's series are its cumulative buckets, le
// ending with +Inf, then _sum and _count.
func (r *Registry) WriteText(w io.Writer) error {
	var b []byte
	for _, f := range r.snapshot() {
		b = appendFamily(b, &f)
	}
	_, err := w.Write(b)
	return err
}

func appendFamily(b []byte, f *family) []byte {
	b = append(b, "# HELP "...)
	b = append(b, f.name...)
	b = append(b, ' ')
	b = appendEscaped(b, f.help, false)
	b = append(b, "\n# TYPE "...)
	b = append(b, f.name...)
	b = append(b, ' ')
	b = append(b, f.kind...)
	b = append(b, '\n')
	for _, s := range f.series {
		switch {
		case s.counter != nil:
			b = appendSample(b, f.name, "", s.labels, "")
			b = strconv.AppendUint(b, s.counter(), 10)
			b = append(b, '\n')
		case s.gauge != nil:
			b = appendSample(b, f.name, "", s.labels, "")
			b = appendFloat(b, s.gauge())
			b = append(b, '\n')
		default:
			b = appendHistogram(b, f.name, s.labels, s.hist())
		}
	}
	return b
}

func appendHistogram(b []byte, name, labels string, h HistogramSnapshot) []byte {
	for i, le := range h.Bounds {
		b = appendSample(b, name, "_bucket", labels, string(appendFloat(nil, le)))
		b = strconv.AppendUint(b, h.Cumulative[i], 10)
		b = append(b, '\n')
	}
	b = appendSample(b, name, "_bucket", labels, "+Inf")
	b = strconv.AppendUint(b, h.Count, 10)
	b = append(b, '\n')
	b = appendSample(b, name, "_sum", labels, "")
	b = appendFloat(b, h.Sum)
	b = append(b, '\n')
	b = appendSample(b, name, "_count", labels, "")
	b = strconv.AppendUint(b, h.Count, 10)
	return append(b, '\n')
}

// appendSample appends a sample's name and labels, le among them if not
// empty, and the space before its value.
func appendSample(b []byte, name, suffix, labels, le string) []byte {
	b = append(b, name...)
	b = append(b, suffix...)
	if labels != "" || le != "" {
		b = append(b, '{')
		b = append(b, labels...)
		if le != "" {
			if labels != "" {
				b = append(b, ',')
			}
			b = appendLabel(b, "le", le)
		}
		b = append(b, '}')
	}
	return append(b, ' ')
}

// appendLabel appends name="value", the value escaped.
func appendLabel(b []byte, name, value string) []byte {
	b = append(b, name...)
	b = append(b, '=', '"')
	b = appendEscaped(b, value, true)
	return append(b, '"')
}

// appendEscaped escapes what the format says: backslash and newline in
// HELP text, and the double quote too in a label value.
func appendEscaped(b []byte, s string, quote bool) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			b = append(b, `\\`...)
		case c == '\n':
			b = append(b, `\n`...)
		case c == '"' && quote:
			b = append(b, `\"`...)
		default:
			b = append(b, c)
		}
	}
	return b
}

// appendFloat appends v as the format spells it: Go's shortest form, and
// +Inf, -Inf and NaN.
func appendFloat(b []byte, v float64) []byte {
	switch {
	case math.IsInf(v, 1):
		return append(b, "+Inf"...)
	case math.IsInf(v, -1):
		return append(b, "-Inf"...)
	case math.IsNaN(v):
		return append(b, "NaN"...)
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}

// String returns the registry as a JSON object, which makes it an
// expvar.Var: each family by name, a family of one unlabelled series as
// its value, otherwise an object of its series keyed by their labels
// (a="x",b="y"). A histogram is {"count", "sum", "buckets"}, the buckets
// cumulative and keyed by upper bound.
func (r *Registry) String() string {
	out := map[string]any{}
	for _, f := range r.snapshot() {
		if len(f.series) == 1 && f.series[0].labels == "" {
			out[f.name] = jsonValue(f.series[0])
			continue
		}
		m := map[string]any{}
		for _, s := range f.series {
			m[s.labels] = jsonValue(s)
		}
		out[f.name] = m
	}
	p, err := json.Marshal(out)
	if err != nil {
		return "{}" // jsonValue leaves nothing json cannot encode
	}
	return string(p)
}

func jsonValue(s *series) any {
	switch {
	case s.counter != nil:
		return s.counter()
	case s.gauge != nil:
		return jsonFloat(s.gauge())
	}
	h := s.hist()
	buckets := make(map[string]uint64, len(h.Bounds)+1)
	for i, le := range h.Bounds {
		buckets[string(appendFloat(nil, le))] = h.Cumulative[i]
	}
	buckets["+Inf"] = h.Count
	return map[string]any{"count": h.Count, "sum": jsonFloat(h.Sum), "buckets": buckets}
}

// jsonFloat is v, or its name when JSON has no number for it.
func jsonFloat(v float64) any {
	if math.IsInf(v, 0) || math.IsNaN(v) {
		return string(appendFloat(nil, v))
	}
	return v
}
