package sm

import (
	"fmt"
	"strings"
	"testing"
)

// checkWindow checks what the event window holds after event n (ids 1 to
// n were recorded, each with size bytes): the newest events, in order,
// up to the limit in count and in bytes, a quarter more at most, the
// newest always; lost names the one before the oldest; the byte count
// is the events'.
func checkWindow(t *testing.T, s *subscriptions, n int) {
	t.Helper()
	lim := s.limit
	total := 0
	for i, ev := range s.events {
		if want := uint64(n - len(s.events) + 1 + i); ev.id.Index != want {
			t.Fatalf("after %d events: event %d of the window is %d, want %d", n, i, ev.id.Index, want)
		}
		total += eventSize(ev)
	}
	if total != s.bytes {
		t.Fatalf("after %d events: bytes %d, the events' sizes %d", n, s.bytes, total)
	}
	if len(s.events) == 0 {
		t.Fatalf("after %d events: none kept", n)
	}
	if len(s.events) > 1 && (len(s.events) > lim.events+max(1, lim.events/4) || total > lim.bytes+max(1, lim.bytes/4)) {
		t.Fatalf("after %d events: %d events of %d bytes, over %+v by more than a quarter", n, len(s.events), total, lim)
	}
	if oldest := s.events[0].id.Index; oldest > 1 && s.lost.Index != oldest-1 {
		t.Fatalf("after %d events: the oldest is %d but lost names %d", n, oldest, s.lost.Index)
	}
	// The window kept as much as its limit allows: one more older
	// event would have gone over it.
	if oldest := s.events[0].id.Index; oldest > 1 {
		next := total + eventSize(s.events[0])
		if len(s.events) < lim.events && next <= lim.bytes {
			t.Fatalf("after %d events: %d events of %d bytes dropped %d, which fit in %+v", n, len(s.events), total, oldest-1, lim)
		}
	}
}

// The window keeps the newest events up to its limit in count and in
// bytes, whichever it reaches first, and a snapshot restores the same.
func TestEventWindowLimits(t *testing.T) {
	for _, tt := range []struct {
		name  string
		limit windowLimit
		size  int // payload bytes of each event
	}{
		{"count", windowLimit{events: 8, bytes: 1 << 20}, 10},
		{"bytes", windowLimit{events: 1000, bytes: 20 * (100 + 64)}, 100},
		{"one event over the byte limit", windowLimit{events: 1000, bytes: 100}, 500},
		{"both", windowLimit{events: 30, bytes: 40 * (50 + 64)}, 50},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newSubscriptions(tt.limit)
			payload := []byte(strings.Repeat("v", tt.size))
			for n := 1; n <= 200; n++ {
				s.record(event{id: EventID{Index: uint64(n)}, payload: payload}, true)
				checkWindow(t, &s, n)
			}
			d := decoder{b: s.appendBinary(nil)}
			restored := decodeSubscriptions(&d, tt.limit, true)
			if err := d.done(); err != nil {
				t.Fatal(err)
			}
			if restored.bytes != s.bytes || len(restored.events) != len(s.events) || restored.lost != s.lost {
				t.Fatalf("restored %d events of %d bytes lost %v, want %d of %d lost %v",
					len(restored.events), restored.bytes, restored.lost, len(s.events), s.bytes, s.lost)
			}
			// Both go on trimming at the same events.
			for n := 201; n <= 260; n++ {
				ev := event{id: EventID{Index: uint64(n)}, payload: payload}
				s.record(ev, true)
				restored.record(ev, true)
				if fmt.Sprint(restored.events[0].id, len(restored.events)) != fmt.Sprint(s.events[0].id, len(s.events)) {
					t.Fatalf("after %d events: restored window starts at %v with %d, the original at %v with %d",
						n, restored.events[0].id, len(restored.events), s.events[0].id, len(s.events))
				}
			}
		})
	}
}
