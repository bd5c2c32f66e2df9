package peers

import (
	"fmt"
	"strconv"
	"testing"

	"github.com/bifrost-go/bifrost/chash"
	"github.com/golang/groupcache/consistenthash"
	"github.com/serialx/hashring"
	"github.com/stathat/consistent"
)

// The ring comparisons: the same keys and the same equal servers on every
// library. Each peer runs as its documentation shows it; where its default
// point count is far from bifrost's, a second variant uses bifrost's
// per-server count (chash.DefaultPoints) so lookups search rings of the
// same size.
//
//   - groupcache/consistenthash: New(50, nil), the replica count its users
//     commonly pick (groupcache's own HTTPPool uses 50), crc32 keys, then
//     New(512, nil).
//   - stathat/consistent: New(), 20 replicas a server, crc32, a read lock
//     on every Get; then 512 replicas.
//   - serialx/hashring: New(servers), one md5 point a server; then
//     NewWithWeights with weight 512, which is 512 points a server.

// ringSizes are the server counts every ring benchmark sweeps.
var ringSizes = []int{10, 100, 1000}

// ringServers returns n server names, "node-0"...
func ringServers(n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = "node-" + strconv.Itoa(i)
	}
	return names
}

// ringKeys returns the keys every lookup benchmark uses, as in the chash
// package's own benchmarks: more than the caches hold rings for.
func ringKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = "key-" + strconv.Itoa(i)
	}
	return keys
}

// lookupFunc maps a key to a server.
type lookupFunc func(key string) string

// ringPeer builds a ring of servers in one library and returns its lookup.
type ringPeer struct {
	name  string
	build func(tb testing.TB, servers []string) lookupFunc
}

var ringPeers = []ringPeer{
	{"bifrost", buildBifrost},
	{"groupcache", func(tb testing.TB, s []string) lookupFunc { return buildGroupcache(s, 50) }},
	{"groupcache-512", func(tb testing.TB, s []string) lookupFunc { return buildGroupcache(s, chash.DefaultPoints) }},
	{"stathat", func(tb testing.TB, s []string) lookupFunc { return buildStathat(tb, s, 20) }},
	{"stathat-512", func(tb testing.TB, s []string) lookupFunc { return buildStathat(tb, s, chash.DefaultPoints) }},
	{"serialx", func(tb testing.TB, s []string) lookupFunc { return buildSerialx(tb, hashring.New(s)) }},
	{"serialx-512", func(tb testing.TB, s []string) lookupFunc {
		w := make(map[string]int, len(s))
		for _, name := range s {
			w[name] = chash.DefaultPoints
		}
		return buildSerialx(tb, hashring.NewWithWeights(w))
	}},
}

func buildBifrost(tb testing.TB, servers []string) lookupFunc {
	w := make(map[string]uint64, len(servers))
	for _, s := range servers {
		w[s] = 1
	}
	r, err := chash.NewRing(w, chash.RingConfig{})
	if err != nil {
		tb.Fatal(err)
	}
	return func(key string) string {
		s, _ := r.LookupString(key)
		return s
	}
}

func buildGroupcache(servers []string, replicas int) lookupFunc {
	m := consistenthash.New(replicas, nil)
	m.Add(servers...)
	return m.Get
}

func buildStathat(tb testing.TB, servers []string, replicas int) lookupFunc {
	c := consistent.New()
	c.NumberOfReplicas = replicas
	c.Set(servers)
	return func(key string) string {
		s, err := c.Get(key)
		if err != nil {
			tb.Fatal(err)
		}
		return s
	}
}

func buildSerialx(tb testing.TB, r *hashring.HashRing) lookupFunc {
	return func(key string) string {
		s, ok := r.GetNode(key)
		if !ok {
			tb.Fatal("serialx: empty ring")
		}
		return s
	}
}

func BenchmarkLookupString(b *testing.B) {
	keys := ringKeys(1 << 16)
	mask := len(keys) - 1
	for _, p := range ringPeers {
		for _, n := range ringSizes {
			lookup := p.build(b, ringServers(n))
			b.Run(fmt.Sprintf("%s/servers=%d", p.name, n), func(b *testing.B) {
				b.ReportAllocs()
				var sink int
				for i := 0; b.Loop(); i++ {
					sink += len(lookup(keys[i&mask]))
				}
			})
		}
	}
}

// TestRingBalance logs how evenly each library spreads a million keys over
// 100 equal servers (max/mean of the keys a server gets), for the notes.
// It asserts nothing about the peers.
func TestRingBalance(t *testing.T) {
	if testing.Short() {
		t.Skip("places a million keys in each ring")
	}
	keys := ringKeys(1 << 20)
	servers := ringServers(100)
	for _, p := range ringPeers {
		lookup := p.build(t, servers)
		counts := make(map[string]int, len(servers))
		for _, k := range keys {
			counts[lookup(k)]++
		}
		most := 0
		for _, c := range counts {
			most = max(most, c)
		}
		mean := float64(len(keys)) / float64(len(servers))
		t.Logf("%-15s 100 servers: max/mean %.3f, %d servers own keys", p.name, float64(most)/mean, len(counts))
	}
}
