package rpc

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
)

// defaultMaxInFlight is the default bound on running requests per
// server connection.
const defaultMaxInFlight = 1024

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
	// ReadBufferSize is the size, in bytes, of each connection's read
	// buffer. Zero means 64 KiB; at least 64 bytes.
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
	// buffer. Zero means 64 KiB; at least 64 bytes.
	ReadBufferSize int
	// TLS, when not nil, makes Dial speak TLS with this configuration.
	// Set Certificates for mutual TLS and RootCAs to trust the server.
	TLS *tls.Config
	// Dialer dials TCP connections for Dial and Pool. Nil means a zero
	// net.Dialer.
	Dialer *net.Dialer
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
	c.Logger = orDiscard(c.Logger)
	return c, nil
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
