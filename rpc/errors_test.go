package rpc

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

// TestErrorCodes checks that each error survives the trip through an
// error frame as something errors.Is or errors.As recognises.
func TestErrorCodes(t *testing.T) {
	sentinels := []error{ErrServiceNotFound, ErrMethodNotFound, ErrShutdown, ErrFrameTooLarge, context.DeadlineExceeded}
	for _, want := range sentinels {
		wrapped := fmt.Errorf("while calling: %w", want)
		if got := decodeError(appendError(nil, wrapped)); !errors.Is(got, want) {
			t.Errorf("%v: came back as %v", want, got)
		}
	}
	var re *RemoteError
	got := decodeError(appendError(nil, &RemoteError{Message: "boom"}))
	if !errors.As(got, &re) || re.Message != "boom" {
		t.Errorf("remote error came back as %v", got)
	}
	if got := decodeError(appendError(nil, errors.New("plain"))); !errors.As(got, &re) || re.Message != "plain" {
		t.Errorf("plain error came back as %v", got)
	}
	for _, p := range [][]byte{nil, {200, 'x'}} {
		if got := decodeError(p); !errors.As(got, &re) {
			t.Errorf("payload %x: got %v, want a RemoteError", p, got)
		}
	}
}

// TestRemoteErrorText checks the message format.
func TestRemoteErrorText(t *testing.T) {
	if got, want := (&RemoteError{Message: "no space"}).Error(), "rpc: remote error: no space"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
