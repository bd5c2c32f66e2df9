package rpc

import (
	"context"
	"errors"
	"fmt"
)

// Errors returned by clients and servers. Each is checked with errors.Is;
// causes are wrapped with %w.
var (
	// ErrClosed means the connection, client or server is closed; calls
	// in flight on a connection that breaks fail with it.
	ErrClosed = errors.New("rpc: connection closed")
	// ErrServiceNotFound means the server has no service with the
	// requested service id.
	ErrServiceNotFound = errors.New("rpc: service not found")
	// ErrMethodNotFound means the service has no method with the
	// requested method id.
	ErrMethodNotFound = errors.New("rpc: method not found")
	// ErrFrameTooLarge means a frame is longer than the configured
	// maximum; it is refused before its body is read or allocated.
	ErrFrameTooLarge = errors.New("rpc: frame too large")
	// ErrMalformedFrame means bytes on the wire are not a valid frame.
	ErrMalformedFrame = errors.New("rpc: malformed frame")
	// ErrShutdown means the server is shutting down and refused a new
	// call; the call was not run.
	ErrShutdown = errors.New("rpc: server shutting down")
	// ErrServerClosed is returned by Serve after Close or Shutdown.
	ErrServerClosed = errors.New("rpc: server closed")
	// ErrDuplicate means a service or method name (or its id) is
	// registered twice.
	ErrDuplicate = errors.New("rpc: duplicate registration")
)

// RemoteError is an error returned by the remote handler. Message is the
// handler's error text; the original error value does not cross the wire.
type RemoteError struct {
	Message string
}

// Error returns the remote message with the package prefix.
func (e *RemoteError) Error() string { return "rpc: remote error: " + e.Message }

// Error codes: the first payload byte of an error frame.
const (
	codeRemote byte = 1 + iota
	codeServiceNotFound
	codeMethodNotFound
	codeShutdown
	codeFrameTooLarge
	codeDeadline
)

// appendError encodes err as an error-frame payload: a code byte, then
// for remote errors the message.
func appendError(dst []byte, err error) []byte {
	var re *RemoteError
	switch {
	case errors.As(err, &re):
		return append(append(dst, codeRemote), re.Message...)
	case errors.Is(err, ErrServiceNotFound):
		return append(dst, codeServiceNotFound)
	case errors.Is(err, ErrMethodNotFound):
		return append(dst, codeMethodNotFound)
	case errors.Is(err, ErrShutdown):
		return append(dst, codeShutdown)
	case errors.Is(err, ErrFrameTooLarge):
		return append(dst, codeFrameTooLarge)
	case errors.Is(err, context.DeadlineExceeded):
		return append(dst, codeDeadline)
	}
	return append(append(dst, codeRemote), err.Error()...)
}

// decodeError turns an error-frame payload back into an error. Unknown
// codes become a RemoteError so that newer servers stay readable.
func decodeError(p []byte) error {
	if len(p) == 0 {
		return &RemoteError{Message: "empty error frame"}
	}
	switch p[0] {
	case codeServiceNotFound:
		return ErrServiceNotFound
	case codeMethodNotFound:
		return ErrMethodNotFound
	case codeShutdown:
		return ErrShutdown
	case codeFrameTooLarge:
		return ErrFrameTooLarge
	case codeDeadline:
		return fmt.Errorf("rpc: remote: %w", context.DeadlineExceeded)
	case codeRemote:
		return &RemoteError{Message: string(p[1:])}
	}
	return &RemoteError{Message: fmt.Sprintf("unknown error code %d: %s", p[0], p[1:])}
}
