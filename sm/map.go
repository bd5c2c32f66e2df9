package sm

import (
	"bytes"
	"context"
	"iter"
	"slices"
	"sync"

	"github.com/bifrost-go/bifrost/rpc"
)

// Map is a replicated map from K to V: Get, Insert, InsertIfAbsent,
// Remove, CompareAndSwap, Len, Keys and Entries. Keys and values are
// encoded with rpc.Codec; CompareAndSwap compares encodings, and the
// snapshot, Keys and Entries order entries by encoded key, so K and V
// need encodings that are equal for equal values (the gob fallback is,
// but for types holding maps).
type Map[K comparable, V any] struct {
	name    string
	insert  *Command[Pair[K, V], Found[V]]
	absent  *Command[Pair[K, V], Found[V]]
	remove  *Command[K, Found[V]]
	cas     *Command[MapSwap[K, V], bool]
	get     *Query[K, Found[V]]
	len     *Query[struct{}, int]
	keys    *Query[struct{}, []K]
	entries *Query[struct{}, []Pair[K, V]]
	// the seed's on_inserted, on_key_inserted(k), on_removed and
	// on_key_removed(k)
	inserted, removed       *Subscription[struct{}, Pair[K, V]]
	keyInserted, keyRemoved *Subscription[K, V]
	changed                 *Subscription[struct{}, MapChange[K, V]] // retained
	kc                      rpc.Codec[K]
	vc                      rpc.Codec[V]
}

// Pair is a key and a value.
type Pair[K, V any] struct {
	K K
	V V
}

// Found is a value and whether there was one.
type Found[V any] struct {
	V     V
	Found bool
}

// MapChange is one change of a Map: K set to V, or with Removed, K removed
// (V is the value it had).
type MapChange[K, V any] struct {
	K       K
	V       V
	Removed bool
}

// MapSwap asks to set K to New if it holds Old.
type MapSwap[K, V any] struct {
	K        K
	Old, New V
}

// NewMap declares the map machine called name.
func NewMap[K comparable, V any](name string) *Map[K, V] {
	return &Map[K, V]{name: name,
		insert:      NewCommand[Pair[K, V], Found[V]](name, "insert"),
		absent:      NewCommand[Pair[K, V], Found[V]](name, "insert_if_absent"),
		remove:      NewCommand[K, Found[V]](name, "remove"),
		cas:         NewCommand[MapSwap[K, V], bool](name, "compare_and_swap"),
		get:         NewQuery[K, Found[V]](name, "get"),
		len:         NewQuery[struct{}, int](name, "len"),
		keys:        NewQuery[struct{}, []K](name, "keys"),
		entries:     NewQuery[struct{}, []Pair[K, V]](name, "entries"),
		inserted:    NewSubscription[struct{}, Pair[K, V]](name, "on_inserted"),
		removed:     NewSubscription[struct{}, Pair[K, V]](name, "on_removed"),
		keyInserted: NewSubscription[K, V](name, "on_key_inserted"),
		keyRemoved:  NewSubscription[K, V](name, "on_key_removed"),
		changed:     NewSubscription[struct{}, MapChange[K, V]](name, "on_changed"),
		kc:          rpc.NewCodec[K](), vc: rpc.NewCodec[V]()}
}

// Machine returns a new, empty map machine for a server's host.
func (mp *Map[K, V]) Machine() *Machine {
	st := &mapState[K, V]{kc: mp.kc, vc: mp.vc, m: map[K]V{}}
	m := NewMachine(mp.name, st)
	Retain(m, mp.changed)
	HandleCommand(m, mp.insert, func(a *Apply, p Pair[K, V]) (Found[V], error) {
		return st.put(p, true), mp.notify(a, mp.inserted, mp.keyInserted, p, false)
	})
	HandleCommand(m, mp.absent, func(a *Apply, p Pair[K, V]) (Found[V], error) {
		f := st.put(p, false)
		if f.Found {
			return f, nil
		}
		return f, mp.notify(a, mp.inserted, mp.keyInserted, p, false)
	})
	HandleCommand(m, mp.remove, func(a *Apply, k K) (Found[V], error) {
		f := st.delete(k)
		if !f.Found {
			return f, nil
		}
		return f, mp.notify(a, mp.removed, mp.keyRemoved, Pair[K, V]{k, f.V}, true)
	})
	HandleCommand(m, mp.cas, func(a *Apply, s MapSwap[K, V]) (bool, error) {
		ok, err := st.swap(s)
		if !ok || err != nil {
			return ok, err
		}
		return true, mp.notify(a, mp.inserted, mp.keyInserted, Pair[K, V]{s.K, s.New}, false)
	})
	HandleQuery(m, mp.get, func(_ *Read, k K) (Found[V], error) { return st.lookup(k), nil })
	HandleQuery(m, mp.len, func(*Read, struct{}) (int, error) { return st.size(), nil })
	HandleQuery(m, mp.keys, func(*Read, struct{}) ([]K, error) { return st.sortedKeys() })
	HandleQuery(m, mp.entries, func(*Read, struct{}) ([]Pair[K, V], error) { return st.sortedEntries() })
	return m
}

// notify tells the subscribers of all keys and those of p.K, and records
// the change in the retained stream of every change. The order of the
// three is part of the log's meaning: event ids number them.
func (mp *Map[K, V]) notify(a *Apply, all *Subscription[struct{}, Pair[K, V]], one *Subscription[K, V], p Pair[K, V], removed bool) error {
	if err := Notify(a, all, struct{}{}, p); err != nil {
		return err
	}
	if err := Notify(a, one, p.K, p.V); err != nil {
		return err
	}
	return Notify(a, mp.changed, struct{}{}, MapChange[K, V]{p.K, p.V, removed})
}

// OnInserted yields every key set (inserted, replaced or swapped) from
// now on, with its new value.
func (mp *Map[K, V]) OnInserted(ctx context.Context, c *Client) iter.Seq2[Event[Pair[K, V]], error] {
	return mp.inserted.Subscribe(ctx, c, struct{}{})
}

// OnKeyInserted yields every new value of k from now on.
func (mp *Map[K, V]) OnKeyInserted(ctx context.Context, c *Client, k K) iter.Seq2[Event[V], error] {
	return mp.keyInserted.Subscribe(ctx, c, k)
}

// OnRemoved yields every key removed from now on, with its last value.
func (mp *Map[K, V]) OnRemoved(ctx context.Context, c *Client) iter.Seq2[Event[Pair[K, V]], error] {
	return mp.removed.Subscribe(ctx, c, struct{}{})
}

// OnKeyRemoved yields the last value of k each time it is removed.
func (mp *Map[K, V]) OnKeyRemoved(ctx context.Context, c *Client, k K) iter.Seq2[Event[V], error] {
	return mp.keyRemoved.Subscribe(ctx, c, k)
}

// Inserted is the map's on_inserted subscription: every insert, as its
// key and value. For Open, Subscribe or ReadAndOpen.
func (mp *Map[K, V]) Inserted() *Subscription[struct{}, Pair[K, V]] { return mp.inserted }

// KeyInserted is on_key_inserted(k): the values inserted at one key.
func (mp *Map[K, V]) KeyInserted() *Subscription[K, V] { return mp.keyInserted }

// Removed is on_removed: every removal, as the key and the value it had.
func (mp *Map[K, V]) Removed() *Subscription[struct{}, Pair[K, V]] { return mp.removed }

// KeyRemoved is on_key_removed(k): the values removed from one key.
func (mp *Map[K, V]) KeyRemoved() *Subscription[K, V] { return mp.keyRemoved }

// Changed is on_changed: every insert and removal of every key, in log
// order, in one stream. The map retains it (Retain): every replica keeps
// the latest changes in its window whether anyone listens or not, so a
// subscriber that saw event X resumes after it with OpenAfter, through
// any client, even after the leader changed; a change's event id is
// the same on every replica. The cost is the window's: its last
// HostConfig.RetainEvents changes, values included, or RetainBytes of
// them if fewer, in memory and in snapshots.
func (mp *Map[K, V]) Changed() *Subscription[struct{}, MapChange[K, V]] { return mp.changed }

// InsertCommand, RemoveCommand and SwapCommand are the commands behind
// Insert, Remove and CompareAndSwap, for a caller that wants to know the
// index a change took effect at (Command.DoIndex).
func (mp *Map[K, V]) InsertCommand() *Command[Pair[K, V], Found[V]] { return mp.insert }

// RemoveCommand: see InsertCommand.
func (mp *Map[K, V]) RemoveCommand() *Command[K, Found[V]] { return mp.remove }

// SwapCommand: see InsertCommand.
func (mp *Map[K, V]) SwapCommand() *Command[MapSwap[K, V], bool] { return mp.cas }

// ReadKeyAndOpen reads k and opens a stream of the values inserted at k,
// at the same index: the first event is the first insert after the
// value returned.
func (mp *Map[K, V]) ReadKeyAndOpen(ctx context.Context, c *Client, k K) (v V, ok bool, _ *Stream[V], _ error) {
	f, st, err := ReadAndOpen(ctx, c, mp.get, k, mp.keyInserted, k)
	return f.V, f.Found, st, err
}

// ReadAllAndOpen reads every pair, ordered as Entries orders them, and
// opens a stream of every change (Changed) in one command: the pairs are
// the map exactly at the index where the stream starts, so its first
// event is the first change after them, and the pairs with the events
// applied in order follow the map change by change. Changed is
// retained: a stream that breaks resumes after its last event with
// Changed().OpenAfter, with nothing to read again.
func (mp *Map[K, V]) ReadAllAndOpen(ctx context.Context, c *Client) ([]Pair[K, V], *Stream[MapChange[K, V]], error) {
	return ReadAndOpen(ctx, c, mp.entries, struct{}{}, mp.changed, struct{}{})
}

// Insert sets k to v and returns the value it replaced, if any.
func (mp *Map[K, V]) Insert(ctx context.Context, c *Client, k K, v V) (old V, had bool, err error) {
	f, err := mp.insert.Do(ctx, c, Pair[K, V]{k, v})
	return f.V, f.Found, err
}

// InsertIfAbsent sets k to v unless k is present, and returns the value k
// holds afterwards and whether it inserted v.
func (mp *Map[K, V]) InsertIfAbsent(ctx context.Context, c *Client, k K, v V) (current V, inserted bool, err error) {
	f, err := mp.absent.Do(ctx, c, Pair[K, V]{k, v})
	if err != nil || !f.Found {
		return v, err == nil, err
	}
	return f.V, false, nil
}

// Remove deletes k and returns the value it held, if any.
func (mp *Map[K, V]) Remove(ctx context.Context, c *Client, k K) (old V, had bool, err error) {
	f, err := mp.remove.Do(ctx, c, k)
	return f.V, f.Found, err
}

// CompareAndSwap sets k to new if it holds old, and reports whether it
// did. An absent k holds nothing: the swap fails.
func (mp *Map[K, V]) CompareAndSwap(ctx context.Context, c *Client, k K, old, new V) (bool, error) {
	return mp.cas.Do(ctx, c, MapSwap[K, V]{k, old, new})
}

// Get reads k linearizably.
func (mp *Map[K, V]) Get(ctx context.Context, c *Client, k K) (v V, ok bool, err error) {
	return mp.GetAs(ctx, c, Linearizable, k)
}

// GetAs reads k in the given mode.
func (mp *Map[K, V]) GetAs(ctx context.Context, c *Client, mode ReadMode, k K) (v V, ok bool, err error) {
	f, err := mp.get.ReadAs(ctx, c, mode, k)
	return f.V, f.Found, err
}

// Len returns the number of keys, linearizably.
func (mp *Map[K, V]) Len(ctx context.Context, c *Client) (int, error) {
	return mp.len.Read(ctx, c, struct{}{})
}

// Keys returns the keys, ordered by their encoding, linearizably.
func (mp *Map[K, V]) Keys(ctx context.Context, c *Client) ([]K, error) {
	return mp.keys.Read(ctx, c, struct{}{})
}

// Entries returns every pair, ordered by the encoding of its key as
// Keys orders them, linearizably: one read, so the pairs are the map at
// one index.
func (mp *Map[K, V]) Entries(ctx context.Context, c *Client) ([]Pair[K, V], error) {
	return mp.EntriesAs(ctx, c, Linearizable)
}

// EntriesAs returns every pair, as Entries does, read in the given mode.
func (mp *Map[K, V]) EntriesAs(ctx context.Context, c *Client, mode ReadMode) ([]Pair[K, V], error) {
	return mp.entries.ReadAs(ctx, c, mode, struct{}{})
}

// mapState is the state of a Map machine.
type mapState[K comparable, V any] struct {
	kc rpc.Codec[K]
	vc rpc.Codec[V]
	mu sync.Mutex // protects m
	m  map[K]V
}

// put sets p.K to p.V, or with replace false only if p.K is absent, and
// returns what p.K held before.
func (s *mapState[K, V]) put(p Pair[K, V], replace bool) Found[V] {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, had := s.m[p.K]
	if replace || !had {
		s.m[p.K] = p.V
	}
	return Found[V]{old, had}
}

func (s *mapState[K, V]) delete(k K) Found[V] {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, had := s.m[k]
	delete(s.m, k)
	return Found[V]{old, had}
}

func (s *mapState[K, V]) swap(w MapSwap[K, V]) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, had := s.m[w.K]
	if !had {
		return false, nil
	}
	a, err := s.vc.Append(nil, cur)
	if err != nil {
		return false, err
	}
	b, err := s.vc.Append(nil, w.Old)
	if err != nil || !bytes.Equal(a, b) {
		return false, err
	}
	s.m[w.K] = w.New
	return true, nil
}

func (s *mapState[K, V]) lookup(k K) Found[V] {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[k]
	return Found[V]{v, ok}
}

func (s *mapState[K, V]) size() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

// encodedKey is a key with its encoding, for ordering.
type encodedKey[K any] struct {
	k   K
	enc []byte
}

// sorted returns the keys ordered by encoding. The caller holds mu.
func (s *mapState[K, V]) sorted() ([]encodedKey[K], error) {
	out := make([]encodedKey[K], 0, len(s.m))
	for k := range s.m {
		enc, err := s.kc.Append(nil, k)
		if err != nil {
			return nil, err
		}
		out = append(out, encodedKey[K]{k, enc})
	}
	slices.SortFunc(out, func(a, b encodedKey[K]) int { return bytes.Compare(a.enc, b.enc) })
	return out, nil
}

func (s *mapState[K, V]) sortedKeys() ([]K, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ks, err := s.sorted()
	out := make([]K, len(ks))
	for i, k := range ks {
		out[i] = k.k
	}
	return out, err
}

func (s *mapState[K, V]) sortedEntries() ([]Pair[K, V], error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ks, err := s.sorted()
	out := make([]Pair[K, V], len(ks))
	for i, k := range ks {
		out[i] = Pair[K, V]{k.k, s.m[k.k]}
	}
	return out, err
}

// Snapshot encodes the entries in key order.
func (s *mapState[K, V]) Snapshot() ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ks, err := s.sorted()
	if err != nil {
		return nil, err
	}
	b := appendUvarint(nil, uint64(len(ks)))
	for _, k := range ks {
		v, err := s.vc.Append(nil, s.m[k.k])
		if err != nil {
			return nil, err
		}
		b = appendBytes(appendBytes(b, k.enc), v)
	}
	return b, nil
}

func (s *mapState[K, V]) Restore(data []byte) error {
	m := map[K]V{}
	d := decoder{b: data}
	for n := d.count(); n > 0 && d.err == nil; n-- {
		kb, vb := d.bytes(), d.bytes()
		if d.err != nil {
			break
		}
		k, err := s.kc.Decode(slices.Clone(kb))
		if err != nil {
			return err
		}
		v, err := s.vc.Decode(slices.Clone(vb))
		if err != nil {
			return err
		}
		m[k] = v
	}
	if data != nil {
		if err := d.done(); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m = m
	return nil
}
