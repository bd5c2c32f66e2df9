package main

import "regexp"

// A pair says which benchmark is held against which. A result whose name
// (without the -GOMAXPROCS suffix) matches match gets a ratio: the value
// of the first of metrics that both ours and peer report, ours ÷ peer.
// ours and peer are expanded from match as regexp.Expand does ($0 is the
// whole name, $1 the first group), and looked up in the same package.
// A pair with no peer shows a ratio the benchmark measured itself, the
// first of metrics it reports.
type pair struct {
	match   *regexp.Regexp
	ours    string
	peer    string
	metrics []string
	label   string // what is divided by what, and which way is better
}

// pairs is every comparison the report computes, one line per rule, so
// that a new benchmark pairing is added here and nowhere else.
var pairs = []pair{
	// bench: ours against the standard library and against raw raft.
	{re(`^BenchmarkCall/bifrost-(serial|parallel64)(-timeout)?$`), "$0", "BenchmarkCall/netrpc-$1", []string{"ns/op"}, "bifrost ÷ net/rpc (<1: faster)"},
	{re(`^BenchmarkSMCommand/sm/(callers=\d+)$`), "$0", "BenchmarkSMCommand/raw/$1", []string{"ns/op"}, "sm ÷ raw Propose (sm's overhead)"},
	{re(`^BenchmarkSMCommand/interleaved/callers=\d+$`), "$0", "", []string{"sm/raw"}, "sm ÷ raw Propose in alternating rounds (target ≤ 1.15)"},
	{re(`^BenchmarkSMEvents/subscribers=(\d+)/clients=1$`), "$0", "BenchmarkSMEvents/subscribers=$1/clients=$1", []string{"events/s"}, "one client ÷ a client each"},
	{re(`^BenchmarkSMStalledSubscriber/stalled=1$`), "$0", "BenchmarkSMStalledSubscriber/stalled=0", []string{"p99-ns"}, "stalled ÷ healthy (target ≤ 1.10)"},
	{re(`^BenchmarkReads/op=(readindex|lease)/(callers=\d+)$`), "$0", "BenchmarkReads/op=command/$2", []string{"ops/s"}, "reads ÷ commands (target ≥ 3 for readindex)"},

	// bench/peers: hashicorp/raft, the disk, and the other rings.
	{re(`^BenchmarkCommit/bifrost-(mem|disk)-(serial|parallel64)$`), "$0", "BenchmarkCommit/hashicorp-$1-$2", []string{"commits/s"}, "bifrost ÷ hashicorp (>1: faster)"},
	{re(`^BenchmarkCommit/(bifrost|hashicorp)-disk-serial$`), "$0", "BenchmarkFsync/overwrite", []string{"ns/op"}, "commit ÷ one overwrite fsync"},
	{re(`^BenchmarkLookupString/((?:groupcache|stathat|serialx)(?:-512)?)/(servers=\d+)$`), "BenchmarkLookupString/bifrost/$2", "$0", []string{"ns/op"}, "bifrost ÷ this (<1: bifrost faster)"},

	// bench/peers/etcd: etcd doing the same work.
	{re(`^BenchmarkEvents/bifrost$`), "$0", "BenchmarkEvents/etcd", []string{"events/s"}, "bifrost ÷ etcd (>1: faster)"},
	{re(`^BenchmarkVsEtcd/bifrost-(.+)$`), "$0", "BenchmarkVsEtcd/etcd-$1", []string{"events/s", "ops/s"}, "bifrost ÷ etcd (>1: faster)"},
	{re(`^BenchmarkVsEtcdMemory/bifrost$`), "$0", "BenchmarkVsEtcdMemory/etcd", []string{"leader-peak-RSS-MB"}, "bifrost ÷ etcd (<1: smaller)"},
	{re(`^BenchmarkVsEtcdMemory/bifrost$`), "$0", "BenchmarkVsEtcdMemory/etcd", []string{"follower-peak-RSS-MB"}, "bifrost ÷ etcd (<1: smaller)"},
}

func re(s string) *regexp.Regexp { return regexp.MustCompile(s) }

// A ratio is one pair applied to one package's results.
type ratio struct {
	row, ours, peer string // names; row is the result the ratio is shown on
	metric          string
	value           float64
	label           string
}

// ratios applies every pair to the results of one package, means by name.
func ratios(means map[string]map[string]float64, names []string) []ratio {
	var out []ratio
	for _, name := range names {
		for _, p := range pairs {
			if r, ok := p.apply(means, name); ok {
				out = append(out, r)
			}
		}
	}
	return out
}

func (p pair) apply(means map[string]map[string]float64, name string) (ratio, bool) {
	m := p.match.FindStringSubmatchIndex(name)
	if m == nil {
		return ratio{}, false
	}
	ours := string(p.match.ExpandString(nil, p.ours, name, m))
	peer := string(p.match.ExpandString(nil, p.peer, name, m))
	for _, unit := range p.metrics {
		if v, ok := means[ours][unit]; ok && peer == "" {
			return ratio{row: name, ours: ours, peer: "(measured together)", metric: unit, value: v, label: p.label}, true
		}
		o, ok1 := means[ours][unit]
		q, ok2 := means[peer][unit]
		if ok1 && ok2 && q != 0 {
			return ratio{row: name, ours: ours, peer: peer, metric: unit, value: o / q, label: p.label}, true
		}
	}
	return ratio{}, false
}
