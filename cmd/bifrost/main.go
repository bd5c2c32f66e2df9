// Command bifrost runs the library's demo.
//
//	bifrost demo    typed RPC, then three Nodes on loopback: a replicated map,
//	                a subscription, failover, membership and the ring
package main

import (
	"context"
	"fmt"
	"os"
	"time"
)

func main() {
	if len(os.Args) != 2 || os.Args[1] != "demo" {
		fmt.Fprintln(os.Stderr, "usage: bifrost demo")
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := demo(ctx, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bifrost demo:", err)
		os.Exit(1)
	}
}
