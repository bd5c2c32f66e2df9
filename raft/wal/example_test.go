package wal_test

import (
	"fmt"
	"log"
	"os"

	"github.com/bifrost-go/bifrost/raft"
	"github.com/bifrost-go/bifrost/raft/wal"
)

func Example() {
	dir, err := os.MkdirTemp("", "wal-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	w, err := wal.Open(wal.Config{Dir: dir})
	if err != nil {
		log.Fatal(err)
	}
	// Durable when Save returns: only now may the node answer its peers.
	err = w.Save(raft.HardState{Term: 1, Vote: 1}, []raft.Entry{
		{Index: 1, Term: 1, Type: raft.EntryNoop},
		{Index: 2, Term: 1, Data: []byte("x=1")},
	})
	if err != nil {
		log.Fatal(err)
	}
	w.Close()

	w, err = wal.Open(wal.Config{Dir: dir}) // as after a restart
	if err != nil {
		log.Fatal(err)
	}
	defer w.Close()
	rec := w.Recovered()
	fmt.Printf("term %d, vote %d\n", rec.HardState.Term, rec.HardState.Vote)
	for _, e := range rec.Entries {
		fmt.Printf("%d@%d %s %q\n", e.Index, e.Term, e.Type, e.Data)
	}
	// Output:
	// term 1, vote 1
	// 1@1 noop ""
	// 2@1 normal "x=1"
}
