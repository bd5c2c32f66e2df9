package rpc

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

// TestServerCallContext checks the handler context on a fake clock: no
// deadline, a deadline reached with and without Done, and cancellation.
func TestServerCallContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sc := newServerCall(nil, header{id: 1}, 0)
		if _, ok := sc.Deadline(); ok || sc.Err() != nil || sc.Value("k") != nil {
			t.Fatal("a call without deadline looks ended")
		}
		sc.cancel(context.Canceled, true)
		sc.cancel(context.DeadlineExceeded, false) // ignored: already over
		<-sc.Done()
		if sc.Err() != context.Canceled || !sc.cancelledByPeer() {
			t.Errorf("after cancel: %v, by peer %v", sc.Err(), sc.cancelledByPeer())
		}

		d := time.Now().Add(time.Second)
		waiter := newServerCall(nil, header{id: 2, deadline: d.UnixNano()}, 0)
		if got, ok := waiter.Deadline(); !ok || !got.Equal(d) {
			t.Errorf("deadline %v, %v; want %v", got, ok, d)
		}
		<-waiter.Done() // the timer ends it on the fake clock
		if !time.Now().Equal(d) || !errors.Is(waiter.Err(), context.DeadlineExceeded) {
			t.Errorf("ended at %v with %v, want %v and DeadlineExceeded", time.Now(), waiter.Err(), d)
		}

		poller := newServerCall(nil, header{id: 3, deadline: time.Now().Add(time.Second).UnixNano()}, 0)
		time.Sleep(2 * time.Second) // fake time: the bubble's clock jumps
		if !errors.Is(poller.Err(), context.DeadlineExceeded) {
			t.Errorf("Err without Done after the deadline: %v", poller.Err())
		}
		select {
		case <-poller.Done():
		default:
			t.Error("Done not closed after Err saw the deadline")
		}
	})
}

// TestServerCallInlinePayload checks where the payload lives.
func TestServerCallInlinePayload(t *testing.T) {
	if sc := newServerCall(nil, header{}, inlinePayload); &sc.payload[0] != &sc.inline[0] {
		t.Error("small payload not stored inline")
	}
	if sc := newServerCall(nil, header{}, inlinePayload+1); len(sc.payload) != inlinePayload+1 || &sc.payload[0] == &sc.inline[0] {
		t.Error("large payload stored inline")
	}
}
