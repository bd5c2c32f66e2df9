package rpc

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
)

// defaultMaxInFlight is the default bound on running requests per
// server connection.
const defaultMaxInFlight = 1024

// DefaultMaxInFlightBytes is the default server-wide budget, in bytes,
// of requests in flight: 64 MiB, eight frames of the default maximum
// size. Small calls never come near it (a thousand 1 KiB calls hold
// 1 MiB), while a few clients sending large requests to slow handlers
// are held to a bound a small machine can afford.
const DefaultMaxInFlightBytes = 64 << 20

// Config configures a Server. The zero value is a valid configuration
// with the defaults given on each field.
type Config struct {
	// MaxFrameSize is the largest frame, in bytes of header plus
	// payload, the server accepts or sends. A longer incoming frame
	// closes the connection before its body is read; a longer response
	// becomes an ErrFrameTooLarge error. Zero means DefaultMaxFrameSize
	// (8 MiB); at most 2 GiB - 1.
	MaxFrameSize int
	// MaxInFlight is the number of requests one connection may have
	// running at once. When it is reached the server stops reading
	// from that connection until a handler returns, which pushes back
	// on the client through TCP flow control instead of failing calls.
	// Frames behind the waiting request, cancel frames included, wait
	// with it; deadlines still end handlers on the server's clock.
	// Zero means 1024.
	MaxInFlight int
	// MaxInFlightBytes is the server-wide budget, in bytes of frame
	// (header plus payload), of requests and notifications in flight,
	// shared by all connections. A request holds its bytes from just
	// before its body is read until its handler returns. A connection
	// whose next frame does not fit stops reading, as at MaxInFlight,
	// until handlers return and release bytes; waiting connections are
	// served in arrival order, so a large request is never starved by
	// small ones. Calls are never failed for want of budget. Zero means
	// DefaultMaxInFlightBytes (64 MiB), or MaxFrameSize if that is
	// larger; a value below MaxFrameSize is refused, since a frame of
	// the maximum size must always fit.
	MaxInFlightBytes int64
	// MaxConnections bounds the connections served at once, over all
	// listeners. When it is reached Serve stops accepting until a
	// connection closes, so further clients wait in the listener's
	// backlog (and their dials may time out) instead of being refused.
	// Zero means no limit.
	MaxConnections int
	// ReadBufferSize is the size, in bytes, of each connection's read
	// buffer. Zero means 16 KiB; at least 64 bytes. It is held for the
	// connection's life, idle or not: the memory of a server with many
	// quiet clients is mostly these.
	ReadBufferSize int
	// TLS, when not nil, makes every accepted connection speak TLS with
	// this configuration. Set ClientAuth to
	// tls.RequireAndVerifyClientCert and ClientCAs for mutual TLS.
	TLS *tls.Config
	// Logger receives connection events: broken connections, bad
	// frames, failed handshakes. Nil discards them.
	Logger *slog.Logger
}

// ClientConfig configures a Client or a Pool. The zero value is a valid
// configuration with the defaults given on each field.
type ClientConfig struct {
	// MaxFrameSize is the largest frame, in bytes of header plus
	// payload, the client sends or accepts. A larger request fails with
	// ErrFrameTooLarge without being sent; a larger response breaks the
	// connection. Zero means DefaultMaxFrameSize (8 MiB); at most
	// 2 GiB - 1.
	MaxFrameSize int
	// ReadBufferSize is the size, in bytes, of the connection's read
	// buffer. Zero means 16 KiB; at least 64 bytes. It is held for the
	// connection's life, idle or not: the memory of a server with many
	// quiet clients is mostly these.
	ReadBufferSize int
	// TLS, when not nil, makes Dial speak TLS with this configuration.
	// Set Certificates for mutual TLS and RootCAs to trust the server.
	TLS *tls.Config
	// Dialer dials TCP connections for Dial and Pool. Nil means a zero
	// net.Dialer.
	Dialer *net.Dialer
	// Dial, when not nil, makes the connections of Dial and Pool in
	// place of TCP through Dialer: an in-memory network in tests, a unix
	// socket, a proxy. It gets Dial's context and address, and TLS, if
	// set, runs over the connection it returns. Nil means TCP via Dialer.
	Dial func(ctx context.Context, addr string) (net.Conn, error)
	// Logger receives connection events. Nil discards them.
	Logger *slog.Logger
}

// withDefaults fills zero fields and rejects bad values.
func (c Config) withDefaults() (Config, error) {
	var err error
	if c.MaxFrameSize, err = orDefault("MaxFrameSize", c.MaxFrameSize, DefaultMaxFrameSize, headerSize, maxFrameLimit); err != nil {
		return c, err
	}
	if c.MaxInFlight, err = orDefault("MaxInFlight", c.MaxInFlight, defaultMaxInFlight, 1, 1<<20); err != nil {
		return c, err
	}
	if c.ReadBufferSize, err = orDefault("ReadBufferSize", c.ReadBufferSize, defaultReadBufferSize, 64, 1<<30); err != nil {
		return c, err
	}
	if c.MaxConnections, err = orDefault("MaxConnections", c.MaxConnections, 0, 1, 1<<30); err != nil {
		return c, err
	}
	if c.MaxInFlightBytes, err = inFlightBytes(c.MaxInFlightBytes, c.MaxFrameSize); err != nil {
		return c, err
	}
	c.Logger = orDiscard(c.Logger)
	return c, nil
}

// inFlightBytes applies MaxInFlightBytes' default and its lower bound
// of one maximum frame.
func inFlightBytes(v int64, maxFrame int) (int64, error) {
	switch {
	case v == 0:
		return max(DefaultMaxInFlightBytes, int64(maxFrame)), nil
	case v < int64(maxFrame):
		return 0, fmt.Errorf("rpc: config: MaxInFlightBytes is %d, want 0 or at least MaxFrameSize (%d)", v, maxFrame)
	}
	return v, nil
}

// withDefaults fills zero fields and rejects bad values.
func (c ClientConfig) withDefaults() (ClientConfig, error) {
	var err error
	if c.MaxFrameSize, err = orDefault("MaxFrameSize", c.MaxFrameSize, DefaultMaxFrameSize, headerSize, maxFrameLimit); err != nil {
		return c, err
	}
	if c.ReadBufferSize, err = orDefault("ReadBufferSize", c.ReadBufferSize, defaultReadBufferSize, 64, 1<<30); err != nil {
		return c, err
	}
	if c.Dialer == nil {
		c.Dialer = &net.Dialer{}
	}
	c.Logger = orDiscard(c.Logger)
	return c, nil
}

// orDefault returns def for zero and v for a value in [lo, hi].
func orDefault(name string, v, def, lo, hi int) (int, error) {
	if v == 0 {
		return def, nil
	}
	if v < lo || v > hi {
		return 0, fmt.Errorf("rpc: config: %s is %d, want 0 or %d to %d", name, v, lo, hi)
	}
	return v, nil
}

// orDiscard returns l, or a logger that discards everything.
func orDiscard(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}
