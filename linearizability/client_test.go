package linearizability

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/bifrost-go/bifrost/rpc"
	"github.com/bifrost-go/bifrost/sm"
)

// maxBackoff bounds the wait of a client's sm.Client between attempts,
// so that a client that was cut off for a whole phase tries again soon
// after the heal.
const maxBackoff = 100 * time.Millisecond

// retryTimeout is how long a client that retries in a new session
// (negative control only) waits for an update before it gives up on its
// session: about the time a commit takes on the unreliable network, so
// that many updates time out while still in flight.
const retryTimeout = 150 * time.Millisecond

// readModeNames names the sm read modes in operation details.
var readModeNames = map[sm.ReadMode]string{sm.Linearizable: "linearizable", sm.Lease: "lease", sm.Follower: "follower"}

// client runs operations against a cluster as an application would:
// through an sm.Client of its own, over rpc connections of its own that
// its pool dials on the cluster's client links. Finding the leader,
// retrying and exactly-once are the sm.Client's. Not safe for concurrent
// use: one goroutine per client.
type client struct {
	t     *testing.T
	idx   int // the client's index, for the history and the links
	c     *cluster
	h     *History
	rng   *rand.Rand
	reads sm.ReadMode
	links *clientLinks
	pool  *rpc.Pool
	sm    *sm.Client
	// newSessionOnTimeout makes the client retry an update that takes
	// longer than retryTimeout through a new sm.Client, in a new
	// session that the hosts' dedupe cannot recognise (negative control
	// only).
	newSessionOnTimeout bool
	// readOnly makes the client issue only reads. Commands are what move
	// a client's sm.Client to the leader, so a reader stays with the
	// first server that answers it.
	readOnly bool
	// skipReadIndex is the broken variant: reads skip the read index
	// (negative control only).
	skipReadIndex bool
	work          *workload

	sessions int // sessions given up on for a new one
	instant  int // Linearizable or Lease reads served in no fake time
}

func newClient(t *testing.T, c *cluster, h *History, idx, keys int, reads sm.ReadMode) *client {
	cl := &client{t: t, idx: idx, c: c, h: h, reads: reads,
		rng:   rand.New(rand.NewPCG(c.cfg.seed, uint64(idx)+0xc11e)),
		links: &clientLinks{l: c.links, client: idx}}
	cl.work = &workload{client: idx, keys: keys, seen: map[string]Output{}, intn: cl.rng.IntN}
	cl.connect()
	return cl
}

// connect gives the client a new pool and sm.Client, which opens a new
// session with its first command.
func (cl *client) connect() {
	pool, err := rpc.NewPool(rpc.ClientConfig{Dial: cl.links.dial})
	if err != nil {
		cl.t.Fatal(err)
	}
	c, err := sm.NewClient(sm.ClientConfig{Group: group, Servers: cl.c.serversFrom(cl.idx), Pool: pool, MaxBackoff: maxBackoff})
	if err != nil {
		cl.t.Fatal(err)
	}
	cl.pool, cl.sm = pool, c
}

// close closes the client's session, within ctx, and its connections.
func (cl *client) close(ctx context.Context) error {
	err := cl.sm.Close(ctx)
	cl.pool.Close()
	return err
}

// do runs one operation until it completes or ctx ends; an operation
// that did not complete stays pending in the history.
func (cl *client) do(ctx context.Context, in Input) {
	id := cl.h.Invoke(cl.idx, in)
	var out Output
	var detail string
	var err error
	if in.Kind.IsRead() {
		out, detail, err = cl.read(ctx, in)
	} else {
		out, detail, err = cl.update(ctx, in)
	}
	if err == nil {
		cl.h.Return(id, out)
		cl.h.Annotate(id, detail)
		cl.work.saw(in, out)
	} else if ctx.Err() == nil {
		cl.t.Errorf("client %d: %v %q: %v", cl.idx, in.Kind, in.Key, err)
	}
}

// update runs in until it applied, and describes where.
func (cl *client) update(ctx context.Context, in Input) (Output, string, error) {
	for {
		actx, cancel := ctx, context.CancelFunc(func() {})
		if cl.newSessionOnTimeout {
			actx, cancel = context.WithTimeout(ctx, retryTimeout)
		}
		out, err := perform(actx, cl.sm, sm.Linearizable, in)
		cancel()
		switch {
		case err == nil:
			return out, fmt.Sprintf("answered by index %d (session %d of the client)", cl.sm.Seen(), cl.sessions+1), nil
		case ctx.Err() != nil || !errors.Is(err, context.DeadlineExceeded):
			return Output{}, "", err
		}
		cl.abandonSession()
	}
}

// abandonSession forgets the client's session without telling the
// servers, as a client that restarts would, and starts a new one.
func (cl *client) abandonSession() {
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // closes the client at once: nothing is sent
	cl.close(ctx)
	cl.sessions++
	cl.connect()
}

// read runs the read in in the client's read mode and describes where.
// With skipReadIndex (the broken variant) it asks for a follower read,
// which no replica confirms with the leader, while the history records
// it as a read of the scenario's mode.
func (cl *client) read(ctx context.Context, in Input) (Output, string, error) {
	mode := cl.reads
	if cl.skipReadIndex {
		mode = sm.Follower
	}
	start, before := time.Now(), cl.links.now()
	out, err := perform(ctx, cl.sm, mode, in)
	if err != nil {
		return Output{}, "", err
	}
	if took := cl.links.now().sub(before); took.requests == 1 && took.replies == 1 && time.Since(start) == took.delay {
		// All the time the read took was on the client's links: the
		// server answered in no fake time, without a message to
		// anyone.
		cl.instant++
	}
	return out, fmt.Sprintf("%s read, client at index %d", readModeNames[mode], cl.sm.Seen()), nil
}

// run issues operations of the client's workload until ctx ends, only
// reads for a reader.
func (cl *client) run(ctx context.Context) {
	for ctx.Err() == nil {
		if sleep(ctx, time.Duration(cl.rng.IntN(20))*time.Millisecond) != nil {
			return
		}
		cl.do(ctx, cl.work.next(cl.readOnly))
	}
}
