package metrics

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

// parsed is one family as the strict parser read it back.
type parsed struct {
	help, kind string
	samples    []sample
}

type sample struct {
	name   string // with its suffix (_bucket, _sum, _count)
	labels map[string]string
	value  float64
}

// parseText reads the exposition format strictly: every family opens
// with HELP then TYPE, its samples follow at once and belong to it,
// families come sorted and once each, and every line ends in a newline.
func parseText(text string) (map[string]*parsed, []string, error) {
	if text != "" && !strings.HasSuffix(text, "\n") {
		return nil, nil, fmt.Errorf("output does not end in a newline")
	}
	fams := map[string]*parsed{}
	var order []string
	var cur string
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	for i := 0; i < len(lines) && text != ""; i++ {
		line := lines[i]
		if rest, ok := strings.CutPrefix(line, "# HELP "); ok {
			name, help, _ := strings.Cut(rest, " ")
			if _, dup := fams[name]; dup {
				return nil, nil, fmt.Errorf("family %s twice", name)
			}
			i++
			if i == len(lines) || !strings.HasPrefix(lines[i], "# TYPE "+name+" ") {
				return nil, nil, fmt.Errorf("HELP of %s not followed by its TYPE", name)
			}
			kind := strings.TrimPrefix(lines[i], "# TYPE "+name+" ")
			if kind != "counter" && kind != "gauge" && kind != "histogram" {
				return nil, nil, fmt.Errorf("%s: type %q", name, kind)
			}
			h, err := unescape(help, false)
			if err != nil {
				return nil, nil, err
			}
			fams[name], cur = &parsed{help: h, kind: kind}, name
			order = append(order, name)
			continue
		}
		s, err := parseSample(line)
		if err != nil {
			return nil, nil, fmt.Errorf("line %d %q: %w", i+1, line, err)
		}
		f := fams[cur]
		if f == nil || !belongs(s.name, cur, f.kind) {
			return nil, nil, fmt.Errorf("sample %s outside its family (in %q)", s.name, cur)
		}
		f.samples = append(f.samples, s)
	}
	if !slices.IsSorted(order) {
		return nil, nil, fmt.Errorf("families not sorted: %v", order)
	}
	return fams, order, nil
}

func belongs(name, family, kind string) bool {
	if kind != "histogram" {
		return name == family
	}
	return name == family+"_bucket" || name == family+"_sum" || name == family+"_count"
}

func parseSample(line string) (sample, error) {
	s := sample{labels: map[string]string{}}
	i := strings.IndexAny(line, "{ ")
	if i <= 0 {
		return s, fmt.Errorf("no name")
	}
	s.name, line = line[:i], line[i:]
	if !validName(s.name, true) {
		return s, fmt.Errorf("bad name %q", s.name)
	}
	if line[0] == '{' {
		var err error
		if line, err = parseLabels(line[1:], s.labels); err != nil {
			return s, err
		}
	}
	v, ok := strings.CutPrefix(line, " ")
	if !ok || strings.ContainsAny(v, " \t") {
		return s, fmt.Errorf("want one space then the value, got %q", line)
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return s, err
	}
	s.value = f
	return s, nil
}

// parseLabels reads name="value",... up to the closing brace, and returns
// what follows it.
func parseLabels(line string, into map[string]string) (string, error) {
	for {
		eq := strings.Index(line, `="`)
		if eq <= 0 || !validName(line[:eq], false) {
			return "", fmt.Errorf("bad label in %q", line)
		}
		name := line[:eq]
		line = line[eq+2:]
		end := -1
		for j := 0; j < len(line); j++ {
			if line[j] == '\\' {
				j++
			} else if line[j] == '"' {
				end = j
				break
			}
		}
		if end < 0 {
			return "", fmt.Errorf("unterminated value of %s", name)
		}
		v, err := unescape(line[:end], true)
		if err != nil {
			return "", err
		}
		if _, dup := into[name]; dup {
			return "", fmt.Errorf("label %s twice", name)
		}
		into[name] = v
		line = line[end+1:]
		switch {
		case strings.HasPrefix(line, "}"):
			return line[1:], nil
		case strings.HasPrefix(line, ","):
			line = line[1:]
		default:
			return "", fmt.Errorf("want , or } after label %s", name)
		}
	}
}

func unescape(s string, quoted bool) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\n' || quoted && c == '"' {
			return "", fmt.Errorf("unescaped %q in %q", c, s)
		}
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		if i++; i == len(s) {
			return "", fmt.Errorf("dangling backslash in %q", s)
		}
		switch s[i] {
		case '\\':
			b.WriteByte('\\')
		case 'n':
			b.WriteByte('\n')
		case '"':
			if !quoted {
				return "", fmt.Errorf(`\" in HELP text %q`, s)
			}
			b.WriteByte('"')
		default:
			return "", fmt.Errorf("unknown escape \\%c in %q", s[i], s)
		}
	}
	return b.String(), nil
}

// checkHistograms holds every histogram to the format: per series,
// buckets with increasing le, counts monotone, the last +Inf and equal to
// _count, and one _sum.
func checkHistograms(t *testing.T, fams map[string]*parsed) {
	t.Helper()
	for name, f := range fams {
		if f.kind != "histogram" {
			continue
		}
		type state struct {
			les         []float64
			counts      []float64
			count, sums int
			countV, inf float64
			sawInf      bool
		}
		series := map[string]*state{}
		for _, s := range f.samples {
			le, hasLe := s.labels["le"]
			delete(s.labels, "le")
			key := fmt.Sprint(s.labels)
			st := series[key]
			if st == nil {
				st = &state{}
				series[key] = st
			}
			switch {
			case strings.HasSuffix(s.name, "_bucket"):
				if !hasLe || st.sawInf {
					t.Errorf("%s%s: bucket without le or after +Inf", name, key)
				}
				v, err := strconv.ParseFloat(le, 64)
				if err != nil {
					t.Errorf("%s%s: le %q: %v", name, key, le, err)
				}
				if n := len(st.les); n > 0 && (v <= st.les[n-1] || s.value < st.counts[n-1]) {
					t.Errorf("%s%s: le %v count %v after le %v count %v", name, key, v, s.value, st.les[n-1], st.counts[n-1])
				}
				st.les, st.counts = append(st.les, v), append(st.counts, s.value)
				if math.IsInf(v, 1) {
					st.sawInf, st.inf = true, s.value
				}
			case strings.HasSuffix(s.name, "_sum"):
				st.sums++
			default:
				st.count++
				st.countV = s.value
			}
		}
		for key, st := range series {
			if !st.sawInf || st.count != 1 || st.sums != 1 || st.inf != st.countV {
				t.Errorf("%s%s: +Inf %v (seen %v), _count %v (%d), _sum %d times", name, key, st.inf, st.sawInf, st.countV, st.count, st.sums)
			}
		}
	}
}

func TestWriteTextParsesBack(t *testing.T) {
	r := NewRegistry()
	r.Counter("reads_total", "Reads served.", Labels{"mode": "lease"}).Add(3)
	r.Counter("reads_total", "Reads served.", Labels{"mode": "follower"}).Add(1)
	r.Gauge("applied_index", "The last index applied.", nil).Set(42)
	r.GaugeFunc("ratio", "A ratio.", Labels{"b": "2", "a": "1"}, func() float64 { return 0.5 })
	r.CounterFunc("a_total", "Sorted first.", nil, func() uint64 { return math.MaxUint64 })
	h := r.Histogram("fsync_seconds", "Fsync latency.", Labels{"dir": "wal"}, []float64{0.001, 0.01, 0.1})
	for _, v := range []float64{0.0005, 0.001, 0.005, 0.05, 2} {
		h.Observe(v)
	}
	r.Histogram("empty_seconds", "Never observed.", nil, LatencyBuckets)
	var buf bytes.Buffer
	if err := r.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	fams, order, err := parseText(buf.String())
	if err != nil {
		t.Fatalf("%v in\n%s", err, buf.String())
	}
	if want := []string{"a_total", "applied_index", "empty_seconds", "fsync_seconds", "ratio", "reads_total"}; !slices.Equal(order, want) {
		t.Errorf("families: got %v, want %v", order, want)
	}
	checkHistograms(t, fams)
	for _, want := range []string{
		`reads_total{mode="follower"} 1` + "\n", `reads_total{mode="lease"} 3` + "\n", `ratio{a="1",b="2"} 0.5` + "\n",
		"# TYPE reads_total counter\n", "a_total 18446744073709551615\n", "applied_index 42\n",
		`fsync_seconds_bucket{dir="wal",le="0.001"} 2` + "\n", `fsync_seconds_bucket{dir="wal",le="+Inf"} 5` + "\n",
		`fsync_seconds_count{dir="wal"} 5` + "\n", "# HELP fsync_seconds Fsync latency.\n",
	} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, buf.String())
		}
	}
	var again bytes.Buffer
	r.WriteText(&again)
	if !bytes.Equal(buf.Bytes(), again.Bytes()) {
		t.Errorf("two scrapes of one state differ:\n%s\n%s", buf.String(), again.String())
	}
}

// Any label value and help text survive escaping: the strict parser reads
// back exactly what was registered.
func TestEscapingRoundTrips(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		value := rapid.String().Draw(t, "value")
		help := rapid.String().Draw(t, "help")
		r := NewRegistry()
		r.Counter("x_total", help, Labels{"v": value}).Inc()
		var buf bytes.Buffer
		r.WriteText(&buf)
		fams, _, err := parseText(buf.String())
		if err != nil {
			t.Fatalf("%v in %q", err, buf.String())
		}
		f := fams["x_total"]
		if f.help != help || len(f.samples) != 1 || f.samples[0].labels["v"] != value {
			t.Fatalf("got help %q labels %q, want %q and %q", f.help, f.samples[0].labels, help, value)
		}
	})
}

func TestRegistryRefusesBadRegistrations(t *testing.T) {
	for name, f := range map[string]func(r *Registry){
		"bad metric name": func(r *Registry) { r.Counter("1x", "", nil) },
		"bad label name":  func(r *Registry) { r.Counter("x", "", Labels{"a-b": ""}) },
		"reserved label":  func(r *Registry) { r.Counter("x", "", Labels{"__a": ""}) },
		"le on histogram": func(r *Registry) { r.Histogram("x", "", Labels{"le": "1"}, LatencyBuckets) },
		"series twice":    func(r *Registry) { r.Counter("x", "", Labels{"a": "1"}); r.Counter("x", "", Labels{"a": "1"}) },
		"other kind":      func(r *Registry) { r.Counter("x", "", nil); r.Gauge("x", "", Labels{"a": "1"}) },
		"other help":      func(r *Registry) { r.Counter("x", "a", nil); r.Counter("x", "b", Labels{"a": "1"}) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("did not panic")
				}
			}()
			f(NewRegistry())
		})
	}
}

func TestStringIsJSON(t *testing.T) {
	r := NewRegistry()
	r.Counter("plain_total", "", nil).Add(7)
	r.Counter("by_mode_total", "", Labels{"mode": "lease"}).Add(2)
	r.GaugeFunc("inf", "", nil, func() float64 { return math.Inf(1) })
	r.Histogram("h_seconds", "", nil, []float64{1}).Observe(0.5)
	var got map[string]any
	if err := json.Unmarshal([]byte(r.String()), &got); err != nil {
		t.Fatalf("%v: %s", err, r.String())
	}
	h := got["h_seconds"].(map[string]any)
	if got["plain_total"] != 7.0 || got["by_mode_total"].(map[string]any)[`mode="lease"`] != 2.0 ||
		got["inf"] != "+Inf" || h["count"] != 1.0 || h["buckets"].(map[string]any)["1"] != 1.0 {
		t.Fatalf("got %s", r.String())
	}
}
