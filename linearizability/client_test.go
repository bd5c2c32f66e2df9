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
	// readOnly makes the client issue only Gets. Commands are what move
	// a client's sm.Client to the leader, so a reader stays with the
	// first server that answers it.
	readOnly bool

	sessions int // sessions given up on for a new one
	instant  int // Linearizable or Lease reads served in no fake time
}

func newClient(t *testing.T, c *cluster, h *History, idx int, reads sm.ReadMode) *client {
	cl := &client{t: t, idx: idx, c: c, h: h, reads: reads,
		rng:   rand.New(rand.NewPCG(c.cfg.seed, uint64(idx)+0xc11e)),
		links: &clientLinks{l: c.links, client: idx}}
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
	var out, detail string
	var err error
	switch in.Kind {
	case OpGet:
		out, detail, err = cl.get(ctx, in.Key)
	case OpPut:
		detail, err = cl.update(ctx, Put, Pair{Key: in.Key, Value: in.Value})
	case OpAppend:
		detail, err = cl.update(ctx, Append, Pair{Key: in.Key, Value: in.Value})
	}
	if err == nil {
		cl.h.Return(id, out)
		cl.h.Annotate(id, detail)
	} else if ctx.Err() == nil {
		cl.t.Errorf("client %d: %v %q: %v", cl.idx, in.Kind, in.Key, err)
	}
}

// update runs cmd until it applied, and describes where.
func (cl *client) update(ctx context.Context, cmd *sm.Command[Pair, struct{}], p Pair) (detail string, err error) {
	for {
		actx, cancel := ctx, context.CancelFunc(func() {})
		if cl.newSessionOnTimeout {
			actx, cancel = context.WithTimeout(ctx, retryTimeout)
		}
		_, err := cmd.Do(actx, cl.sm, p)
		cancel()
		switch {
		case err == nil:
			return fmt.Sprintf("answered by index %d (session %d of the client)", cl.sm.Seen(), cl.sessions+1), nil
		case ctx.Err() != nil || !errors.Is(err, context.DeadlineExceeded):
			return "", err
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

// get reads key in the client's read mode and describes where.
func (cl *client) get(ctx context.Context, key string) (value, detail string, err error) {
	start, before := time.Now(), cl.links.now()
	r, err := Get.ReadAs(ctx, cl.sm, cl.reads, key)
	if err != nil {
		return "", "", err
	}
	if took := cl.links.now().sub(before); took.requests == 1 && took.replies == 1 && time.Since(start) == took.delay {
		// All the time the read took was on the client's links: the
		// server answered in no fake time, without a message to
		// anyone.
		cl.instant++
	}
	return r.Value, fmt.Sprintf("%s read at index %d", readModeNames[cl.reads], r.Index), nil
}

// run issues random operations until ctx ends: Gets, Appends of values
// unique to the client and request (so a duplicate shows), and Puts that
// keep the values short; only Gets for a reader.
func (cl *client) run(ctx context.Context, keys int) {
	for n := 0; ctx.Err() == nil; n++ {
		if sleep(ctx, time.Duration(cl.rng.IntN(20))*time.Millisecond) != nil {
			return
		}
		key := fmt.Sprintf("k%d", cl.rng.IntN(keys))
		value := fmt.Sprintf("%d.%d ", cl.idx, n)
		switch p := cl.rng.IntN(100); {
		case p < 45 || cl.readOnly:
			cl.do(ctx, Input{Kind: OpGet, Key: key})
		case p < 90:
			cl.do(ctx, Input{Kind: OpAppend, Key: key, Value: value})
		default:
			cl.do(ctx, Input{Kind: OpPut, Key: key, Value: value})
		}
	}
}
