package raft

import (
	"cmp"
	"errors"
	"slices"
)

// Host is what surrounds a Core: the network, the disk and the
// application. A Driver calls it, from the goroutine that calls the
// Driver, in the order the Ready protocol requires; the Host does the I/O
// and nothing else, so one implementation of the protocol serves every
// driver, the simulator's included.
type Host interface {
	// Take sees each Ready before any of it is acted on: a hook for
	// learning the addresses of members its entries add, and for checks.
	Take(rd *Ready)
	// Send hands messages to the network without waiting for it.
	Send(msgs []Message)
	// SendSnapshot completes MsgSnap requests with the chunks of the
	// snapshot each names (see Ready.SnapshotRequests) and sends them.
	SendSnapshot(reqs []Message)
	// Write stores rd's SnapshotChunks, makes a non-zero rd.Snapshot
	// durable, then writes rd.HardState (if HardStateChanged) and
	// rd.Entries. It reports whether they are durable when it returns;
	// if not, the Host calls Driver.Synced once they are, and no other
	// Ready is taken meanwhile. An error stops the protocol: the node
	// must not go on.
	Write(rd *Ready) (durable bool, err error)
	// Restore replaces the application's state with the snapshot meta
	// names, which the Ready that installs it made durable.
	Restore(meta SnapshotMeta) error
	// Apply applies committed entries, in log order, each once: the
	// leaders' no-ops and configuration entries too, so the application
	// always knows the index it is at.
	Apply(entries []Entry) error
	// Reads hands over the outcomes of read requests. A read goes ahead
	// once the application has applied up to its Index.
	Reads(states []ReadState)
}

// ErrNotWriting reports a call of Driver.Synced with no write in flight.
var ErrNotWriting = errors.New("raft: synced, but no write is in flight")

// Driver runs the Ready protocol (see the package doc) between a Core and
// its Host. After every input to the core (Tick, Step, Propose, a read
// request) the caller calls Run; when a write the Host reported not yet
// durable becomes durable, it calls Synced. The Driver then decides what
// leaves before the write and what after it, drops the replies that the
// core's newer term made stale, applies committed entries as soon as
// they are durable, restores snapshots before applying what follows them
// and advances the core. While one write is in flight the caller goes on
// stepping messages and proposals, which gather into the next Ready: that
// is how a busy node batches. A Driver is not safe for concurrent use.
type Driver struct {
	core *Core
	host Host
	// writing is the Ready whose write the Host is making durable, if
	// any, and rest its committed entries not applied yet.
	writing *Ready
	rest    []Entry
	applied uint64 // the last index handed to Host.Apply or restored
}

// NewDriver returns a Driver for core, which may have been built from a
// restart's state: the application has applied up to core's Applied.
func NewDriver(core *Core, host Host) *Driver {
	return &Driver{core: core, host: host, applied: core.Status().Applied}
}

// Applied returns the last index the application applied or restored.
// It runs ahead of the core's Status while a write is in flight, since
// entries durable already are applied early.
func (d *Driver) Applied() uint64 { return d.applied }

// Writing reports whether a write is in flight: the Host owes a Synced.
func (d *Driver) Writing() bool { return d.writing != nil }

// Run handles the core's Readys until one waits for the disk or none is
// left. While a write is in flight it sends the messages that need no
// persistence (Core.TakeMessages), so heartbeats and their answers never
// wait for the disk, and applies the entries that committed meanwhile
// among those durable already (Core.TakeDurableCommitted): on a leader
// these are the previous Ready's, which followers acknowledge during
// this write, so their callers are answered without waiting for another
// flush. An error from the Host is returned as it is.
func (d *Driver) Run() error {
	for d.writing == nil && d.core.HasReady() {
		if err := d.handle(d.core.Ready()); err != nil {
			return err
		}
	}
	if d.writing == nil {
		return nil
	}
	if msgs := d.core.TakeMessages(); len(msgs) > 0 {
		d.host.Send(msgs)
	}
	if !d.writing.Snapshot.IsZero() {
		return nil // a snapshot being installed is restored first
	}
	return d.apply(d.core.TakeDurableCommitted(d.applied))
}

// Synced finishes the Ready whose write just became durable, then runs
// on (Run).
func (d *Driver) Synced() error {
	rd, rest := d.writing, d.rest
	if rd == nil {
		return ErrNotWriting
	}
	d.writing, d.rest = nil, nil
	if err := d.finish(rd, rest); err != nil {
		return err
	}
	return d.Run()
}

// handle acts on one Ready: a leader's appends and heartbeats go out at
// once, so that it writes its log in parallel with replicating it; then
// the write, and what needs it durable after it.
func (d *Driver) handle(rd Ready) error {
	d.host.Take(&rd)
	if len(rd.Messages) > 0 {
		d.host.Send(rd.Messages)
	}
	if len(rd.SnapshotRequests) > 0 {
		d.host.SendSnapshot(rd.SnapshotRequests)
	}
	durable, err := d.host.Write(&rd)
	switch {
	case err != nil:
		return err
	case durable:
		return d.finish(&rd, rd.Committed)
	}
	d.writing = &rd
	d.rest, err = d.applyDurable(&rd)
	return err
}

// applyDurable applies, as the write of rd begins, its committed entries
// that earlier Readys made durable, and returns the rest. Nothing before
// the restore of a snapshot rd installs.
func (d *Driver) applyDurable(rd *Ready) (rest []Entry, err error) {
	if !rd.Snapshot.IsZero() {
		return rd.Committed, nil
	}
	k := len(rd.Committed)
	if len(rd.Entries) > 0 {
		first := rd.Entries[0].Index
		k, _ = slices.BinarySearchFunc(rd.Committed, first, func(e Entry, i uint64) int { return cmp.Compare(e.Index, i) })
	}
	return rd.Committed[k:], d.apply(rd.Committed[:k])
}

// finish does what needed rd durable: send the replies that promise it,
// hand over reads, restore a received snapshot, apply what is left,
// advance the core.
func (d *Driver) finish(rd *Ready, rest []Entry) error {
	// Messages stepped during the write may have moved the core to a
	// newer term, and replies of the old one may no longer be true.
	if msgs := slices.DeleteFunc(rd.AfterPersist, d.core.Stale); len(msgs) > 0 {
		d.host.Send(msgs)
	}
	if len(rd.ReadStates) > 0 {
		d.host.Reads(rd.ReadStates)
	}
	if meta := rd.Snapshot; !meta.IsZero() {
		if err := d.host.Restore(meta); err != nil {
			return err
		}
		d.applied = meta.Index
	}
	if err := d.apply(rest); err != nil {
		return err
	}
	d.core.Advance(*rd)
	return nil
}

func (d *Driver) apply(entries []Entry) error {
	if len(entries) == 0 {
		return nil
	}
	if err := d.host.Apply(entries); err != nil {
		return err
	}
	d.applied = entries[len(entries)-1].Index
	return nil
}
