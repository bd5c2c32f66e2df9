package raft_test

import (
	"fmt"

	"github.com/bifrost-go/bifrost/raft"
)

// Example drives a one-node group the way a driver does: tick until it
// leads, propose, and run each Ready through storage and the application.
func Example() {
	c, err := raft.New(raft.Config{ID: 1, Voters: []uint64{1}})
	if err != nil {
		panic(err)
	}
	var (
		hs      raft.HardState
		log     []raft.Entry
		applied []string
	)
	handle := func() {
		for c.HasReady() {
			rd := c.Ready()
			// send(rd.Messages): nobody to send to in a group of one.
			if rd.HardStateChanged {
				hs = rd.HardState
			}
			if len(rd.Entries) > 0 { // replace the suffix, then fsync
				log = append(log[:rd.Entries[0].Index-1], rd.Entries...)
			}
			// send(rd.AfterPersist)
			for _, e := range rd.Committed {
				if e.Type == raft.EntryNormal { // skip the leader's no-op
					applied = append(applied, string(e.Data))
				}
			}
			c.Advance(rd)
		}
	}
	for c.Status().Role != raft.RoleLeader {
		c.Tick()
		handle()
	}
	c.Propose([]byte("x=1"))
	c.Propose([]byte("y=2"))
	handle()
	fmt.Println(applied, "term", hs.Term, "commit", hs.Commit, "log", len(log))
	// Output: [x=1 y=2] term 1 commit 3 log 3
}

// Example_readIndex serves a linearizable read on a one-node group: the
// read index comes back in Ready.ReadStates under the caller's request id,
// and the read may go ahead once the application has applied that far.
func Example_readIndex() {
	c, _ := raft.New(raft.Config{ID: 1, Voters: []uint64{1}})
	applied := uint64(0)
	var reads []raft.ReadState
	handle := func() {
		for c.HasReady() {
			rd := c.Ready()
			reads = append(reads, rd.ReadStates...)
			if n := len(rd.Committed); n > 0 {
				applied = rd.Committed[n-1].Index
			}
			c.Advance(rd)
		}
	}
	for c.Status().Role != raft.RoleLeader {
		c.Tick()
		handle()
	}
	c.Propose([]byte("x=1"))
	handle()
	// A request id is never reused, not even for a retry.
	if err := c.ReadIndex(0x5eed0001); err != nil {
		panic(err)
	}
	handle()
	for _, rs := range reads {
		fmt.Printf("read %#x: index %d, applied %d, may read: %v\n", rs.ID, rs.Index, applied, applied >= rs.Index)
	}
	// Output: read 0x5eed0001: index 2, applied 2, may read: true
}
