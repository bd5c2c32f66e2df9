package rafttest_test

import (
	"fmt"

	"github.com/bifrost-go/bifrost/raft/rafttest"
)

// exampleT stands in for the *testing.T a test would pass.
type exampleT struct{}

func (exampleT) Helper()                      {}
func (exampleT) Logf(string, ...any)          {}
func (exampleT) Fatalf(f string, args ...any) { panic(fmt.Sprintf(f, args...)) }

// A scenario: elect a leader, commit a command, lose the leader, commit
// another with the two that remain, then heal and check that everything
// acknowledged is applied everywhere.
func Example() {
	c := rafttest.NewCluster(exampleT{}, rafttest.Options{Nodes: 3, Seed: 7})
	lead := c.WaitLeader(30)
	c.One([]byte("x=1"), 3, 40)

	c.Isolate(lead)
	c.One([]byte("x=2"), 2, 60)
	fmt.Println("new leader elected:", c.Leader() != lead)

	c.CheckLiveness(100, 100)
	fmt.Println("acknowledged:", len(c.Acked()))
	// Output:
	// new leader elected: true
	// acknowledged: 3
}
