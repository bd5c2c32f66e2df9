package raft

// TakeDurableCommitted returns the committed entries that are durable on
// this node and that no Ready has handed out yet, and records them as
// applied: the caller must apply them, in order, before it calls anything
// else on the Core. Later Readys do not hand them out again. applied is
// the index the application has applied through: nothing is returned
// unless every entry handed out before is applied, so the order of
// application holds whatever the driver applied early.
//
// It lets a driver that keeps stepping messages while a Ready's write is
// being synced apply what commits meanwhile without waiting for that
// sync: a leader learns from its followers that entries of an earlier,
// already durable Ready committed, and its callers need not wait one more
// disk flush for their answers. Entries that are not yet durable here stay
// for Ready.Committed, so a node never applies an entry that a crash could
// take from its log.
//
// A driver must not call it while a Ready that installs a snapshot is
// outstanding: the restore comes before any entry after it.
func (c *Core) TakeDurableCommitted(applied uint64) []Entry {
	hi := min(c.log.committed, c.log.stable)
	if hi <= c.log.applying || applied != c.log.applying {
		return nil
	}
	ents := c.log.slice(c.log.applying+1, hi+1)
	c.log.appliedTo(hi)
	return ents
}
