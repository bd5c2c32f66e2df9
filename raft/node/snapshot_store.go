package node

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/bifrost-go/bifrost/raft"
	"github.com/bifrost-go/bifrost/raft/wal"
)

// SnapshotStore keeps a node's newest snapshot durably. A Node saves a
// snapshot before it compacts its log into it and before it acknowledges
// one received from its leader, so whatever a store returns after a crash
// covers every entry the log no longer holds. A Node never overlaps two
// calls, but a snapshot it took itself is saved from a goroutine of its
// own, beside the driver (a large state takes a while to write): a
// Storage that is also the SnapshotStore must allow SaveSnapshot while
// its other methods run, as MemoryStorage does.
type SnapshotStore interface {
	// SaveSnapshot makes data the newest snapshot, durably, before it
	// returns. The store keeps data; the caller does not modify it.
	SaveSnapshot(meta raft.SnapshotMeta, data []byte) error
	// LoadSnapshot returns the newest snapshot saved, or a zero meta and
	// no data if there is none.
	LoadSnapshot() (raft.SnapshotMeta, []byte, error)
}

// ErrBadSnapshotFile reports a snapshot file whose header or contents do
// not check out.
var ErrBadSnapshotFile = errors.New("node: bad snapshot file")

// A snapshot file is a header and the snapshot:
//
//	magic [8]byte "BFSNAP\x00\x02"
//	index, term, size uint64 (little endian)
//	crc32c of the snapshot uint32
//	n uint32, the length of the configuration that follows
//	configuration, n bytes: the number of voters and each voter, then
//	  the same for learners, all unsigned varints; then, if any, the
//	  number of member addresses and each member id (ascending) with its
//	  address behind a varint length (files without them load with none)
//	crc32c of the header bytes before it uint32
//	the snapshot, size bytes
//
// Version 1 files ("BFSNAP\x00\x01", written before configuration changes)
// have no n and no configuration; they still load, with none.
const (
	snapMagic      = "BFSNAP\x00\x02"
	snapMagicV1    = "BFSNAP\x00\x01"
	snapFixedSize  = 36 // magic, index, term, size, snapshot crc
	snapHeaderSize = 40 // of a version 1 file
	snapSuffix     = ".snap"
	snapTempSuffix = ".tmp"
	// maxSnapConf bounds the configuration a header may claim.
	maxSnapConf = 1 << 20
)

// encodeSnapshotHeader returns the header of a file holding data.
func encodeSnapshotHeader(meta raft.SnapshotMeta, data []byte) []byte {
	var conf []byte
	for _, ids := range [2][]uint64{meta.Voters, meta.Learners} {
		conf = binary.AppendUvarint(conf, uint64(len(ids)))
		for _, id := range ids {
			conf = binary.AppendUvarint(conf, id)
		}
	}
	if len(meta.Addrs) > 0 {
		conf = binary.AppendUvarint(conf, uint64(len(meta.Addrs)))
		for _, id := range slices.Sorted(maps.Keys(meta.Addrs)) {
			conf = binary.AppendUvarint(conf, id)
			conf = binary.AppendUvarint(conf, uint64(len(meta.Addrs[id])))
			conf = append(conf, meta.Addrs[id]...)
		}
	}
	h := make([]byte, 0, snapFixedSize+8+len(conf))
	h = append(h, snapMagic...)
	h = binary.LittleEndian.AppendUint64(h, meta.Index)
	h = binary.LittleEndian.AppendUint64(h, meta.Term)
	h = binary.LittleEndian.AppendUint64(h, uint64(len(data)))
	h = binary.LittleEndian.AppendUint32(h, raft.SnapshotChecksum(data))
	h = binary.LittleEndian.AppendUint32(h, uint32(len(conf)))
	h = append(h, conf...)
	return binary.LittleEndian.AppendUint32(h, raft.SnapshotChecksum(h))
}

// decodeSnapshotFile checks a whole snapshot file and returns its meta
// and the snapshot, which aliases b.
func decodeSnapshotFile(b []byte) (raft.SnapshotMeta, []byte, error) {
	h, err := snapshotHeader(b)
	if err != nil {
		return raft.SnapshotMeta{}, nil, err
	}
	meta := raft.SnapshotMeta{Index: binary.LittleEndian.Uint64(h[8:]), Term: binary.LittleEndian.Uint64(h[16:])}
	if len(h) > snapHeaderSize {
		if meta.Voters, meta.Learners, meta.Addrs, err = decodeSnapConf(h[snapFixedSize+4 : len(h)-4]); err != nil {
			return raft.SnapshotMeta{}, nil, err
		}
	}
	data := b[len(h):]
	if size := binary.LittleEndian.Uint64(h[24:]); size != uint64(len(data)) {
		return raft.SnapshotMeta{}, nil, fmt.Errorf("%w: %d bytes, header says %d", ErrBadSnapshotFile, len(data), size)
	}
	if raft.SnapshotChecksum(data) != binary.LittleEndian.Uint32(h[32:]) {
		return raft.SnapshotMeta{}, nil, fmt.Errorf("%w: snapshot checksum", ErrBadSnapshotFile)
	}
	if meta.Index == 0 {
		return raft.SnapshotMeta{}, nil, fmt.Errorf("%w: index 0", ErrBadSnapshotFile)
	}
	return meta, data, nil
}

// snapshotHeader returns the header of either version at the start of b,
// its checksum checked.
func snapshotHeader(b []byte) ([]byte, error) {
	size := snapHeaderSize
	switch {
	case len(b) >= snapHeaderSize && string(b[:8]) == snapMagicV1:
	case len(b) >= snapHeaderSize && string(b[:8]) == snapMagic:
		n := binary.LittleEndian.Uint32(b[snapFixedSize:])
		if n > maxSnapConf || uint64(len(b)) < uint64(snapHeaderSize)+4+uint64(n) {
			return nil, fmt.Errorf("%w: configuration of %d bytes", ErrBadSnapshotFile, n)
		}
		size = snapHeaderSize + 4 + int(n)
	default:
		return nil, fmt.Errorf("%w: no header", ErrBadSnapshotFile)
	}
	h := b[:size]
	if raft.SnapshotChecksum(h[:size-4]) != binary.LittleEndian.Uint32(h[size-4:]) {
		return nil, fmt.Errorf("%w: header checksum", ErrBadSnapshotFile)
	}
	return h, nil
}

// decodeSnapConf reads the voters, learners and addresses of a header
// that fill b.
func decodeSnapConf(b []byte) (voters, learners []uint64, addrs map[uint64]string, err error) {
	bad := fmt.Errorf("%w: configuration", ErrBadSnapshotFile)
	uvarint := func() uint64 {
		v, k := binary.Uvarint(b)
		if k <= 0 {
			err = bad
			return 0
		}
		b = b[k:]
		return v
	}
	var lists [2][]uint64
	for i := range lists {
		n := uvarint()
		if err != nil || n > uint64(len(b)) {
			return nil, nil, nil, bad
		}
		for range n {
			lists[i] = append(lists[i], uvarint())
		}
	}
	if len(b) > 0 {
		// Addresses: each takes two bytes at least.
		n := uvarint()
		if err != nil || n == 0 || n > uint64(len(b))/2 {
			return nil, nil, nil, bad
		}
		addrs = make(map[uint64]string, n)
		var prev uint64
		for range n {
			id, size := uvarint(), uvarint()
			if err != nil || id <= prev || size > uint64(len(b)) {
				return nil, nil, nil, bad
			}
			addrs[id], b, prev = string(b[:size]), b[size:], id
		}
	}
	if err != nil {
		return nil, nil, nil, bad
	}
	if len(b) != 0 {
		return nil, nil, nil, fmt.Errorf("%w: %d bytes after the configuration", ErrBadSnapshotFile, len(b))
	}
	return lists[0], lists[1], addrs, nil
}

// fileSnapshotStore keeps snapshots as files in a directory, the newest
// only. A snapshot is written to a temporary file, fsynced, renamed into
// place and the directory fsynced, so a crash leaves either the old
// snapshot or the new one whole. Its calls never overlap (see
// SnapshotStore).
type fileSnapshotStore struct {
	fs  FS
	dir string
	log *slog.Logger
}

// FS is the file system under a node's snapshot files (Config.SnapshotFS):
// the WAL's, and renaming, which makes a whole new snapshot replace the
// old one. One FS may serve both a WAL and the snapshots.
type FS interface {
	wal.FS
	// Rename renames oldpath to newpath, replacing it; a SyncDir makes
	// the change durable.
	Rename(oldpath, newpath string) error
}

// osFS is the operating system's file system.
type osFS struct{ wal.FS }

func (osFS) Rename(oldpath, newpath string) error { return os.Rename(oldpath, newpath) }

// OSFS returns the operating system's file system, the default of
// Config.SnapshotFS, for a wrapper that changes part of it.
func OSFS() FS { return osFS{wal.OSFS()} }

// newFileSnapshotStore opens dir on fs (nil: the operating system's),
// creating it if needed.
func newFileSnapshotStore(fs FS, dir string, log *slog.Logger) (*fileSnapshotStore, error) {
	if fs == nil {
		fs = OSFS()
	}
	if err := fs.MkdirAll(dir); err != nil {
		return nil, fmt.Errorf("node: snapshot dir: %w", err)
	}
	return &fileSnapshotStore{fs: fs, dir: dir, log: log}, nil
}

// snapshotName orders files by index, then term, as strings.
func snapshotName(meta raft.SnapshotMeta) string {
	return fmt.Sprintf("%016x-%016x%s", meta.Index, meta.Term, snapSuffix)
}

// SaveSnapshot writes the snapshot durably, then removes older ones.
func (s *fileSnapshotStore) SaveSnapshot(meta raft.SnapshotMeta, data []byte) error {
	name := filepath.Join(s.dir, snapshotName(meta))
	if err := s.writeFileSynced(name+snapTempSuffix, encodeSnapshotHeader(meta, data), data); err != nil {
		return fmt.Errorf("node: save snapshot: %w", err)
	}
	if err := s.fs.Rename(name+snapTempSuffix, name); err != nil {
		return fmt.Errorf("node: save snapshot: %w", err)
	}
	if err := s.fs.SyncDir(s.dir); err != nil {
		return fmt.Errorf("node: save snapshot: %w", err)
	}
	return s.removeOlder(filepath.Base(name))
}

// writeFileSynced writes the parts to a new file at path, replacing
// what a crash may have left there, and fsyncs it.
func (s *fileSnapshotStore) writeFileSynced(path string, parts ...[]byte) error {
	if err := s.fs.Remove(path); err != nil {
		return err
	}
	f, err := s.fs.Create(path)
	if err != nil {
		return err
	}
	var off int64
	for _, p := range parts {
		if _, err := f.WriteAt(p, off); err != nil {
			f.Close()
			return err
		}
		off += int64(len(p))
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// removeOlder deletes the snapshots and temporary files other than keep.
func (s *fileSnapshotStore) removeOlder(keep string) error {
	names, err := s.names()
	if err != nil {
		return err
	}
	removed := false
	for _, n := range names {
		if n == keep || !strings.HasSuffix(n, snapSuffix) && !strings.HasSuffix(n, snapTempSuffix) {
			continue
		}
		if err := s.fs.Remove(filepath.Join(s.dir, n)); err != nil {
			return fmt.Errorf("node: remove old snapshot: %w", err)
		}
		removed = true
	}
	if removed {
		return s.fs.SyncDir(s.dir)
	}
	return nil
}

func (s *fileSnapshotStore) names() ([]string, error) {
	names, err := s.fs.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("node: snapshot dir: %w", err)
	}
	return names, nil
}

// LoadSnapshot returns the newest snapshot file that checks out. A bad
// one is logged and skipped: the node then finds whether an older one
// still covers what its log lacks.
func (s *fileSnapshotStore) LoadSnapshot() (raft.SnapshotMeta, []byte, error) {
	names, err := s.names()
	if err != nil {
		return raft.SnapshotMeta{}, nil, err
	}
	names = slices.DeleteFunc(names, func(n string) bool { return !strings.HasSuffix(n, snapSuffix) })
	slices.Sort(names)
	for _, n := range slices.Backward(names) {
		b, err := s.fs.ReadFile(filepath.Join(s.dir, n))
		if err != nil {
			return raft.SnapshotMeta{}, nil, fmt.Errorf("node: load snapshot: %w", err)
		}
		meta, data, err := decodeSnapshotFile(b)
		if err == nil {
			return meta, data, nil
		}
		s.log.Error("skipping snapshot file", "file", n, "err", err)
	}
	return raft.SnapshotMeta{}, nil, nil
}
