// Package wal is a durable write-ahead log for the raft core: the hard state
// (term, vote, commit) and the log entries, kept in segment files on disk.
//
// # Use
//
// Open recovers the directory and returns a WAL; Recovered tells the driver
// the hard state and every live entry, in order. From then on the driver
// calls Save with what the core asks it to persist, and answers nobody until
// Save returns: Save returns only after the records are fsynced.
//
//	w, err := wal.Open(wal.Config{Dir: dir})
//	if err != nil { ... }
//	rec := w.Recovered() // rec.HardState, rec.Entries: rec.Compacted+1, +2, ...
//	...
//	err = w.Save(rd.HardState, rd.Entries) // durable when it returns
//
// Save is safe for concurrent use and commits in groups: callers append
// their records to a shared buffer under a mutex, then wait for an fsync that
// covers them. While one fsync runs, later callers keep appending, and the
// next fsync serves all of them at once. Append and Sync split Save in two
// for a driver that wants to overlap the disk with other work: Append
// buffers, Sync makes everything appended so far durable.
//
// # Log semantics
//
// Entries are contiguous. A batch whose first index is at most the last
// index replaces the log from that index on (raft's conflict truncation); a
// batch that would leave a gap is refused with ErrGap. Compact(i) declares
// entries up to and including i covered by a snapshot: they are no longer
// returned, whole segments holding only such entries are deleted, and the
// next entry saved must have an index above i.
//
// # Files
//
// Segment files are named %016x-%016x.wal: sequence number, then the index
// of the first entry the segment may hold. A segment starts with a header
// record repeating the state at its creation (sequence, last index,
// compaction point, hard state), so deleting older segments never loses the
// hard state or where the log starts. Every record is framed as
//
//	[length uint32][crc32c uint32][type byte][payload]
//
// little endian, the length counting type and payload, the CRC (Castagnoli)
// covering type and payload. Entry and hard state payloads are the raft
// package's binary encodings. A new segment begins once the active one has
// grown past Config.SegmentBytes; the old one is cut to its last record and
// fsynced first, and the directory is fsynced after each creation and
// removal. On Linux the active segment is preallocated (fallocate), so a
// full disk shows when a segment starts, not in the middle of one. The
// WAL also keeps the megabyte after its last record written with zeros:
// an fsync of appends into blocks that already hold data flushes the data
// alone, while appends into fresh or fallocated blocks make every fsync
// commit metadata too, which on ext4 costs about half as much again.
//
// # Recovery
//
// Open replays the segments in sequence order with the same semantics as
// Save. A bad record in the last segment is a write torn by a crash: the
// segment is truncated at the first bad record and the event is logged
// (zeros to the end of the file are preallocated space, not a tear). A
// bad record in any earlier segment, a missing segment, a gap in indices or
// a header that disagrees with the records before it is an error wrapping
// ErrCorrupt. Recovery never returns data from a record whose CRC failed.
package wal
