package bifrost

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bifrost-go/bifrost/sm"
)

// The watch routes stream the built-in map's changes as server-sent
// events (the HTML standard's text/event-stream):
//
//	GET /v1/watch/{key}      the changes of one key
//	GET /v1/watch?prefix=P   the changes of every key that starts with P (none or empty: all keys)
//
// Each change is one event, in log order, each once:
//
//	id: 1234-0
//	event: put
//	data: {"id":"1234-0","key":"k","value":"djE="}
//
//	id: 1240-0
//	event: delete
//	data: {"id":"1240-0","key":"k"}
//
// A value is bytes, so "value" is their base64 (standard alphabet, with
// padding), as encoding/json writes []byte. The id is the change's event
// id, INDEX-SUB: the log index of the command that made it and its
// place among that command's events; ids grow along the stream and are
// the same on every node.
//
// A stream resumes right after the id a client names, with nothing lost
// or repeated, on whichever node it reconnects to and across leader
// changes: the Last-Event-ID header (what EventSource sends when it
// reconnects), else the after or last_event_id query parameter (for
// curl). The header wins, as EventSource reconnects to the URL it
// started with. A bare INDEX means after every change of the commands
// up to that log index (the compacted event names one). Without an id,
// the stream starts with the changes after it opens. A malformed id is
// 400; an id past the log's end is 400 too.
//
// Resuming works while the group's event window (the last
// HostConfig.RetainEvents changes of the map, or RetainBytes of them if
// fewer) still holds the change after the id: otherwise,
// or if the stream falls that far behind, it ends with
//
//	event: compacted
//	data: {"index":5678}
//
// and the client must read the keys again (any read now sees index 5678
// at least) and watch with ?after=5678: the changes from there to its
// read replay, which leaves the same state as each carries the whole
// value.
//
// Every watchKeepAlive without a change to show, the stream sends a
// comment, to keep proxies from closing it, and an id-only block
// naming the last change it skipped, so that a reconnect does not start
// from a change that has since left the window. The stream ends when
// the client goes away or the API closes; a client that reconnects with
// its last id loses nothing either way.

// watchKeepAlive is how often an idle stream shows it is alive: under
// the 30s or more proxies commonly allow an idle connection.
const watchKeepAlive = 15 * time.Second

func (h *HTTP) watchKey(w http.ResponseWriter, r *http.Request) {
	k, ok := key(w, r)
	if !ok {
		return
	}
	h.watch(w, r, func(c string) bool { return c == k })
}

func (h *HTTP) watchPrefix(w http.ResponseWriter, r *http.Request) {
	p, _, ok := single(w, r, "prefix")
	if !ok {
		return
	}
	h.watch(w, r, func(c string) bool { return strings.HasPrefix(c, p) })
}

// watch streams the changes of the keys match picks. Every watch reads
// the map's one retained stream of changes and filters it here: that is
// the stream a resume can start anywhere in.
func (h *HTTP) watch(w http.ResponseWriter, r *http.Request, match func(string) bool) {
	after, resume, err := watchParams(r.Header.Values("Last-Event-ID"), r.URL.Query())
	if err != nil {
		fail(w, http.StatusBadRequest, err)
		return
	}
	st, err := h.openWatch(r.Context(), after, resume)
	if err != nil {
		failCall(w, err)
		return
	}
	defer st.Close(r.Context())
	out := newSSEWriter(w, h.cfg.Timeout)
	defer out.release()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no") // nginx would hold events back
	w.WriteHeader(http.StatusOK)
	if out.flush() != nil {
		return
	}
	streamChanges(r.Context(), out, st, match, watchKeepAlive)
}

func (h *HTTP) openWatch(ctx context.Context, after sm.EventID, resume bool) (*sm.Stream[sm.MapChange[string, []byte]], error) {
	ctx, cancel := context.WithTimeout(ctx, h.cfg.Timeout)
	defer cancel()
	if resume {
		return KV.Changed().OpenAfter(ctx, h.c, struct{}{}, after)
	}
	return KV.Changed().Open(ctx, h.c, struct{}{})
}

// watchParams returns the event id a watch resumes after, if it names
// one: the Last-Event-ID header's values, else the after or
// last_event_id query parameter. An empty value names none: it is what
// a stream that has shown no id yet has.
func watchParams(header []string, query url.Values) (after sm.EventID, resume bool, err error) {
	vs, name := header, "Last-Event-ID"
	if len(vs) == 0 || len(vs) == 1 && vs[0] == "" {
		vs, name = slices.Concat(query["after"], query["last_event_id"]), "after or last_event_id"
	}
	switch {
	case len(vs) > 1:
		return sm.EventID{}, false, fmt.Errorf("%s given %d times", name, len(vs))
	case len(vs) == 0 || vs[0] == "":
		return sm.EventID{}, false, nil
	}
	after, err = parseEventID(vs[0])
	if err != nil {
		return sm.EventID{}, false, fmt.Errorf("%s: %w", name, err)
	}
	return after, true, nil
}

// parseEventID reads an id as formatEventID writes it, INDEX-SUB, or a
// bare INDEX: after every event of that index.
func parseEventID(s string) (sm.EventID, error) {
	idx, sub, hasSub := strings.Cut(s, "-")
	i, err := strconv.ParseUint(idx, 10, 64)
	if err != nil {
		return sm.EventID{}, fmt.Errorf("event id %q: want INDEX or INDEX-SUB", s)
	}
	id := sm.EventID{Index: i, Sub: math.MaxUint64}
	if hasSub {
		if id.Sub, err = strconv.ParseUint(sub, 10, 64); err != nil {
			return sm.EventID{}, fmt.Errorf("event id %q: want INDEX or INDEX-SUB", s)
		}
	}
	return id, nil
}

func formatEventID(id sm.EventID) string { return fmt.Sprintf("%d-%d", id.Index, id.Sub) }

// changes is where a watch reads the map's changes: an *sm.Stream.
type changes interface {
	Next(ctx context.Context) (sm.Event[sm.MapChange[string, []byte]], error)
}

// streamChanges writes the changes of src that match picks to out until
// ctx ends, src fails or a write fails, with a keep-alive whenever it
// wrote nothing for keepAlive, even while src yields changes it skips.
// A stream that fell out of the window ends with the compacted event;
// any other end just closes the stream, and the client resumes from the
// last id it got.
func streamChanges(ctx context.Context, out *sseWriter, src changes, match func(string) bool, keepAlive time.Duration) {
	var seen, shown sm.EventID // the last change read, and the last id the client has
	due := time.Now().Add(keepAlive)
	for {
		next, cancel := context.WithDeadline(ctx, due)
		ev, err := src.Next(next)
		cancel()
		var compacted *sm.CompactedError
		switch {
		case err == nil && match(ev.Value.K):
			seen, shown = ev.ID, ev.ID
			err = out.change(ev)
			due = time.Now().Add(keepAlive)
		case err == nil:
			seen = ev.ID
		case errors.As(err, &compacted):
			out.compacted(compacted.Index)
			return
		case ctx.Err() != nil || !errors.Is(err, context.DeadlineExceeded):
			return
		default:
			err = nil // quiet until due: time for a keep-alive
		}
		if err == nil && !time.Now().Before(due) {
			err = out.keepAlive(seen, seen != shown)
			shown, due = seen, time.Now().Add(keepAlive)
		}
		if err != nil {
			return
		}
	}
}

// sseWriter writes server-sent events, each flushed at once, each write
// bounded by a deadline so that a client that stopped reading does not
// hold the stream forever.
type sseWriter struct {
	w       io.Writer
	rc      *http.ResponseController
	timeout time.Duration
}

func newSSEWriter(w http.ResponseWriter, timeout time.Duration) *sseWriter {
	return &sseWriter{w: w, rc: http.NewResponseController(w), timeout: timeout}
}

// watchChange is an event's data.
type watchChange struct {
	ID    string `json:"id"`
	Key   string `json:"key"`
	Value []byte `json:"value"`
}

// watchRemoval is a delete event's data: no value.
type watchRemoval struct {
	ID  string `json:"id"`
	Key string `json:"key"`
}

func (s *sseWriter) change(ev sm.Event[sm.MapChange[string, []byte]]) error {
	id := formatEventID(ev.ID)
	kind, data := "put", any(watchChange{ID: id, Key: ev.Value.K, Value: ev.Value.V})
	if ev.Value.V == nil {
		data = watchChange{ID: id, Key: ev.Value.K, Value: []byte{}} // "", not null
	}
	if ev.Value.Removed {
		kind, data = "delete", watchRemoval{ID: id, Key: ev.Value.K}
	}
	b, err := json.Marshal(data)
	if err != nil {
		return err
	}
	return s.write(fmt.Sprintf("id: %s\nevent: %s\ndata: %s\n\n", id, kind, b))
}

func (s *sseWriter) compacted(index uint64) error {
	return s.write(fmt.Sprintf("event: compacted\ndata: {\"index\":%d}\n\n", index))
}

// keepAlive writes a comment and, if moved, the id of the last change
// read: a client that reconnects resumes from there, not from a change
// far back that the window may have dropped since.
func (s *sseWriter) keepAlive(seen sm.EventID, moved bool) error {
	if moved {
		return s.write(fmt.Sprintf(": keep-alive\nid: %s\n\n", formatEventID(seen)))
	}
	return s.write(": keep-alive\n\n")
}

func (s *sseWriter) write(text string) error {
	// Not every ResponseWriter takes a deadline (a test's recorder does
	// not); those that do not have no stalled peer either.
	s.rc.SetWriteDeadline(time.Now().Add(s.timeout))
	if _, err := io.WriteString(s.w, text); err != nil {
		return err
	}
	return s.flush()
}

// release lifts the write deadline, which would otherwise outlive the
// stream on the connection and cut the next response sent on it.
func (s *sseWriter) release() { s.rc.SetWriteDeadline(time.Time{}) }

func (s *sseWriter) flush() error {
	if err := s.rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	return nil
}
