package raft

// chunkLen is how many entries one array of a chunkedEntries holds.
const chunkLen = 1024

// chunkedEntries is the storage under raftLog: a sequence of entries kept
// in fixed-size arrays, addressed by position (0 for the first entry
// held). A single growing slice copies the whole log every time it
// doubles, and a busy leader spent a tenth of its CPU on those copies and
// the garbage they left; here an append writes into the last array or
// starts a new one, and nothing already stored moves.
//
// Like raftLog it never rewrites an entry it has handed out: truncate and
// dropFront copy the array they cut into, and slice copies only a range
// that spans two arrays, into a fresh array. The zero value is empty.
type chunkedEntries struct {
	chunks [][]Entry // every array has capacity chunkLen; all but the last are full
	skip   int       // slots before position 0 in chunks[0]: dropped by dropFront
	n      int       // entries held
}

// entriesOf returns a chunkedEntries holding a copy of ents.
func entriesOf(ents []Entry) chunkedEntries {
	var c chunkedEntries
	c.append(ents...)
	return c
}

func (c *chunkedEntries) len() int { return c.n }

// slot returns the array and the offset within it of position p, which may
// be c.n (the slot the next append fills).
func (c *chunkedEntries) slot(p int) (chunk, off int) {
	q := p + c.skip
	return q / chunkLen, q % chunkLen
}

// at returns the entry at position p, which must be below len.
func (c *chunkedEntries) at(p int) *Entry {
	k, off := c.slot(p)
	return &c.chunks[k][off]
}

// append adds ents after the last entry, filling the last array before
// starting a new one.
func (c *chunkedEntries) append(ents ...Entry) {
	for len(ents) > 0 {
		k, off := c.slot(c.n)
		if k == len(c.chunks) {
			c.chunks = append(c.chunks, make([]Entry, off, chunkLen))
		}
		m := min(chunkLen-off, len(ents))
		c.chunks[k] = append(c.chunks[k], ents[:m]...)
		c.n += m
		ents = ents[m:]
	}
}

// truncate keeps the first n entries. The array holding the cut is
// replaced by a copy of its kept part, so the next appends cannot write
// over entries handed out before.
func (c *chunkedEntries) truncate(n int) {
	k, off := c.slot(n)
	if k < len(c.chunks) && off > 0 {
		kept := make([]Entry, off, chunkLen)
		copy(kept, c.chunks[k])
		c.chunks[k] = kept
		k++
	}
	clear(c.chunks[k:]) // let the dropped arrays go
	c.chunks = c.chunks[:k]
	c.n = n
}

// dropFront forgets the first n entries (compaction). The array holding
// the new first entry is replaced by a copy without the dropped ones, so
// they can be collected while slices handed out earlier stay intact.
func (c *chunkedEntries) dropFront(n int) {
	k, off := c.slot(n)
	clear(c.chunks[:k]) // the backing array would keep them alive
	c.chunks = c.chunks[k:]
	c.skip, c.n = off, c.n-n
	if len(c.chunks) == 0 {
		c.chunks, c.skip = nil, 0 // off is chunkLen-aligned here, so 0
		return
	}
	fresh := make([]Entry, len(c.chunks[0]), chunkLen)
	copy(fresh[off:], c.chunks[0][off:])
	c.chunks[0] = fresh
}

// slice returns the entries at positions [lo, hi), capped so that
// appending to the result cannot write into the log. A range within one
// array shares it; one across arrays is copied.
func (c *chunkedEntries) slice(lo, hi int) []Entry {
	if lo >= hi {
		return nil
	}
	k, off := c.slot(lo)
	if end := off + hi - lo; end <= chunkLen {
		return c.chunks[k][off:end:end]
	}
	out := make([]Entry, 0, hi-lo)
	for p := lo; p < hi; {
		k, off := c.slot(p)
		m := min(chunkLen-off, hi-p)
		out = append(out, c.chunks[k][off:off+m]...)
		p += m
	}
	return out
}
