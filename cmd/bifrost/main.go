// Command bifrost runs the library's demo, or a node.
//
//	bifrost demo    typed RPC, then three Nodes on loopback: a replicated map,
//	                a subscription, failover, membership and the ring
//	bifrost node    one node of a cluster, with the HTTP API: bifrost node -h
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	var usage usageError
	switch {
	case errors.As(err, &usage):
		fmt.Fprintln(os.Stderr, "bifrost:", err)
		os.Exit(2)
	case err != nil:
		fmt.Fprintln(os.Stderr, "bifrost:", err)
		os.Exit(1)
	}
}

// run runs the subcommand args names.
func run(ctx context.Context, args []string, out, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{errors.New("usage: bifrost demo | bifrost node [flags]")}
	}
	switch args[0] {
	case "demo":
		if len(args) != 1 {
			return usageError{errors.New("usage: bifrost demo")}
		}
		ctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		return demo(ctx, out)
	case "node":
		return runNode(ctx, args[1:], out, stderr)
	}
	return usageError{fmt.Errorf("unknown command %q: want demo or node", args[0])}
}
