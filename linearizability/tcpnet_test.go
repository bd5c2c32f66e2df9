package linearizability

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"sync"
	"time"
)

// Errors of the real-TCP runner's transport.
var (
	errTCPRefused = errors.New("tcpnet: connection refused: down or partitioned")
	errTCPCut     = errors.New("tcpnet: connection cut")
)

// tcpNet injects faults into the loopback TCP connections of the
// real-TCP runner: every connection a member's pools or a client dials
// goes through dialer, which knows who dials whom. A write may be
// delayed, or lost, which cuts its connection (a byte stream cannot lose
// a frame and go on). Partitions block directions: a connection whose
// bytes would cross a blocked direction is cut when they try, and a dial
// across one is refused, so a partition can be asymmetric (a member that
// hears its peer but cannot answer it). A member that is down refuses
// dials and loses its connections. It is safe for concurrent use.
type tcpNet struct {
	mu      sync.Mutex // protects the following
	rng     *rand.Rand
	drop    float64       // probability that a write is lost
	delay   time.Duration // writes take up to this long
	blocked map[[2]uint64]bool
	down    map[uint64]bool
	addrs   map[string]uint64 // members' addresses
	conns   map[*tcpConn]struct{}
	cuts    int
	refused int
}

func newTCPNet(seed uint64) *tcpNet {
	return &tcpNet{rng: rand.New(rand.NewPCG(seed, 0x746370)), blocked: map[[2]uint64]bool{},
		down: map[uint64]bool{}, addrs: map[string]uint64{}, conns: map[*tcpConn]struct{}{}}
}

// name records the address of member id.
func (tn *tcpNet) name(id uint64, addr string) {
	tn.mu.Lock()
	defer tn.mu.Unlock()
	tn.addrs[addr] = id
}

// setFaults sets the loss and delay of writes from now on.
func (tn *tcpNet) setFaults(drop float64, delay time.Duration) {
	tn.mu.Lock()
	defer tn.mu.Unlock()
	tn.drop, tn.delay = drop, delay
}

// block stops bytes from from to to, and cuts the connections that
// carry them.
func (tn *tcpNet) block(from, to uint64) {
	tn.mu.Lock()
	tn.blocked[[2]uint64{from, to}] = true
	tn.mu.Unlock()
	tn.cutWhere(func(c *tcpConn) bool { return c.from == from && c.to == to || c.from == to && c.to == from })
}

// heal ends every partition and fault; members that are down stay down.
func (tn *tcpNet) heal() {
	tn.mu.Lock()
	defer tn.mu.Unlock()
	clear(tn.blocked)
	tn.drop, tn.delay = 0, 0
}

// setDown takes member id down (it crashed or stopped) or back up; down,
// it loses its connections.
func (tn *tcpNet) setDown(id uint64, down bool) {
	tn.mu.Lock()
	tn.down[id] = down
	tn.mu.Unlock()
	if down {
		tn.cutWhere(func(c *tcpConn) bool { return c.from == id || c.to == id })
	}
}

func (tn *tcpNet) cutWhere(match func(*tcpConn) bool) {
	tn.mu.Lock()
	cut := takeWhere(tn.conns, match)
	tn.cuts += len(cut)
	tn.mu.Unlock()
	for _, c := range cut {
		c.Conn.Close()
	}
}

// dialer returns the dial of from's pools.
func (tn *tcpNet) dialer(from uint64) func(context.Context, string) (net.Conn, error) {
	return func(ctx context.Context, addr string) (net.Conn, error) {
		tn.mu.Lock()
		to := tn.addrs[addr]
		if tn.down[from] || tn.down[to] || tn.blocked[[2]uint64{from, to}] {
			tn.refused++
			tn.mu.Unlock()
			return nil, errTCPRefused
		}
		tn.mu.Unlock()
		var d net.Dialer
		raw, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, err
		}
		c := &tcpConn{Conn: raw, tn: tn, from: from, to: to}
		tn.mu.Lock()
		tn.conns[c] = struct{}{}
		tn.mu.Unlock()
		return c, nil
	}
}

// crossing decides the fate of bytes from from to to: lost (the
// connection is cut) or delayed by the returned duration.
func (tn *tcpNet) crossing(from, to uint64) (time.Duration, bool) {
	tn.mu.Lock()
	defer tn.mu.Unlock()
	if tn.down[from] || tn.down[to] || tn.blocked[[2]uint64{from, to}] || tn.rng.Float64() < tn.drop {
		return 0, true
	}
	if tn.delay <= 0 {
		return 0, false
	}
	return time.Duration(tn.rng.Int64N(int64(tn.delay))), false
}

func (tn *tcpNet) forget(c *tcpConn) {
	tn.mu.Lock()
	if _, ok := tn.conns[c]; ok {
		delete(tn.conns, c)
		tn.cuts++
	}
	tn.mu.Unlock()
	c.Conn.Close()
}

func (tn *tcpNet) stats() (cuts, refused int) {
	tn.mu.Lock()
	defer tn.mu.Unlock()
	return tn.cuts, tn.refused
}

// tcpConn is the dialling end of a connection from from to to. Its
// writes carry from's bytes to to, its reads to's bytes to from.
type tcpConn struct {
	net.Conn
	tn       *tcpNet
	from, to uint64
}

func (c *tcpConn) Write(b []byte) (int, error) {
	d, lost := c.tn.crossing(c.from, c.to)
	if lost {
		c.tn.forget(c)
		return 0, errTCPCut
	}
	if d > 0 {
		t := time.NewTimer(d) // the fault itself: the bytes are slow
		<-t.C
	}
	return c.Conn.Write(b)
}

func (c *tcpConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		d, lost := c.tn.crossing(c.to, c.from)
		if lost {
			c.tn.forget(c)
			return 0, errTCPCut
		}
		if d > 0 {
			t := time.NewTimer(d)
			<-t.C
		}
	}
	return n, err
}

func (c *tcpConn) Close() error {
	c.tn.mu.Lock()
	delete(c.tn.conns, c)
	c.tn.mu.Unlock()
	return c.Conn.Close()
}
