package rafttest

import (
	"container/heap"

	"github.com/bifrost-go/bifrost/raft"
)

// Time is simulated time in units. A node's logical clock ticks once every
// TickUnits units; network delays are drawn in units, so messages arrive
// between ticks as they would on a real network.
type Time int64

// TickUnits is the number of time units in one tick.
const TickUnits Time = 10

// Faults describes how the simulated network and disks misbehave. The
// zero value is a reliable network with a delay of 1 to 3 units per
// message and disks that never lose a write.
type Faults struct {
	// DelayMin and DelayMax bound the uniform per-message delay, in units
	// (a tenth of a tick). Zero means 1 and 3; DelayMin is at least 1.
	DelayMin, DelayMax Time
	// Reorder lets messages between two nodes overtake each other when
	// their delays differ. By default each link delivers in order, as a
	// connection does.
	Reorder bool
	// Drop is the probability that a message is lost.
	Drop float64
	// Duplicate is the probability that a message is delivered a second
	// time, with its own delay.
	Duplicate float64
	// LongDelay is the probability that a message is held back for
	// LongDelayMin to LongDelayMax units instead (long reordering: it
	// arrives long after newer messages, even on an in-order link, possibly
	// after the partition that it crossed has changed). Zero bounds mean
	// 20 and 200 ticks. Duplicates, too, arrive out of order.
	LongDelay                  float64
	LongDelayMin, LongDelayMax Time
	// TornWrite is the probability that a node crashes after writing a
	// Ready's hard state and entries but before syncing them. Messages
	// allowed before persisting are already on the wire; a random prefix
	// of the unsynced writes survives, the rest is lost. (A crash while a
	// write waits out DiskDelay does the same.)
	TornWrite float64
	// DiskDelay bounds the uniform time, in units, a Ready's writes take
	// to become durable. Meanwhile the node steps messages and ticks (so a
	// leader hears acknowledgements before its own write is durable) but
	// takes no new Ready. Zero makes writes durable at once.
	DiskDelay Time
}

func (f Faults) normalized() Faults {
	if f.DelayMin < 1 {
		f.DelayMin = 1
	}
	if f.DelayMax == 0 {
		f.DelayMax = 3
	}
	if f.DelayMax < f.DelayMin {
		f.DelayMax = f.DelayMin
	}
	if f.LongDelayMin == 0 {
		f.LongDelayMin = 20 * TickUnits
	}
	if f.LongDelayMax < f.LongDelayMin {
		f.LongDelayMax = 200 * TickUnits
		if f.LongDelayMax < f.LongDelayMin {
			f.LongDelayMax = f.LongDelayMin
		}
	}
	return f
}

// Stats counts the messages nodes sent, whether or not they arrived.
type Stats struct {
	Messages   map[raft.MessageType]int // messages sent, by type
	Bytes      map[raft.MessageType]int // encoded bytes sent, by type
	EntryBytes int                      // bytes of entry data carried by MsgApp
	Entries    int                      // entries carried by MsgApp
	Rejects    int                      // MsgAppResp with Reject set
	Dropped    int                      // messages lost to faults, partitions or crashed receivers
	Delivered  int                      // messages stepped into a live node
}

// Total is the number of messages sent of all types.
func (s Stats) Total() int {
	t := 0
	for _, n := range s.Messages {
		t += n
	}
	return t
}

// maxTypes bounds the message types the counters keep apart.
const maxTypes = 64

// counters is Stats kept in arrays, cheap to update per message.
type counters struct {
	msgs, bytes                             [maxTypes]int
	entryBytes, entries, rejects, drop, dlv int
}

func (k *counters) stats() Stats {
	s := Stats{
		Messages: map[raft.MessageType]int{}, Bytes: map[raft.MessageType]int{},
		EntryBytes: k.entryBytes, Entries: k.entries, Rejects: k.rejects,
		Dropped: k.drop, Delivered: k.dlv,
	}
	for i := range maxTypes {
		if k.msgs[i] > 0 {
			s.Messages[raft.MessageType(i)] = k.msgs[i]
			s.Bytes[raft.MessageType(i)] = k.bytes[i]
		}
	}
	return s
}

func (k *counters) countSend(m *raft.Message, size int) {
	t := int(m.Type) % maxTypes
	k.msgs[t]++
	k.bytes[t] += size
	if m.Type == raft.MsgApp {
		k.entries += len(m.Entries)
		for i := range m.Entries {
			k.entryBytes += len(m.Entries[i].Data)
		}
	}
	if m.Type == raft.MsgAppResp && m.Reject {
		k.rejects++
	}
}

// envelope is a message on the wire: encoded, so no memory is shared
// between sender and receiver, and the codec is exercised on every hop.
type envelope struct {
	at       Time
	seq      uint64 // breaks ties in at, so delivery order is deterministic
	from, to uint64
	data     []byte
}

// wire is the set of messages in flight, ordered by arrival time.
type wire []*envelope

func (w wire) Len() int { return len(w) }
func (w wire) Less(i, j int) bool {
	if w[i].at != w[j].at {
		return w[i].at < w[j].at
	}
	return w[i].seq < w[j].seq
}
func (w wire) Swap(i, j int) { w[i], w[j] = w[j], w[i] }
func (w *wire) Push(x any)   { *w = append(*w, x.(*envelope)) }
func (w *wire) Pop() any {
	old := *w
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*w = old[:len(old)-1]
	return e
}

// network holds the messages in flight and the links that are cut.
type network struct {
	wire   wire
	seq    uint64
	cut    [][]bool // cut[from][to]: messages from -> to are lost
	last   [][]Time // last[from][to]: latest arrival on the link, for in-order delivery
	faults Faults
}

func newNetwork(nodes int) network {
	square := func() [][]bool {
		m := make([][]bool, nodes+1)
		for i := range m {
			m[i] = make([]bool, nodes+1)
		}
		return m
	}
	last := make([][]Time, nodes+1)
	for i := range last {
		last[i] = make([]Time, nodes+1)
	}
	return network{cut: square(), last: last, faults: Faults{}.normalized()}
}

// inOrder returns the arrival time of a message on an in-order link: not
// before the previous one (the sequence number breaks the tie).
func (nw *network) inOrder(from, to uint64, at Time) Time {
	at = max(at, nw.last[from][to])
	nw.last[from][to] = at
	return at
}

func (nw *network) push(at Time, from, to uint64, data []byte) {
	nw.seq++
	heap.Push(&nw.wire, &envelope{at: at, seq: nw.seq, from: from, to: to, data: data})
}

// due pops the next message that arrives at or before now, or nil.
func (nw *network) due(now Time) *envelope {
	if len(nw.wire) == 0 || nw.wire[0].at > now {
		return nil
	}
	return heap.Pop(&nw.wire).(*envelope)
}

func (nw *network) healLinks() {
	for _, row := range nw.cut {
		clear(row)
	}
}
