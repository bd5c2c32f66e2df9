package rpc

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
)

// Handler answers calls of one method. The context carries the caller's
// deadline and is cancelled when the caller gives up, the connection
// closes or the server closes.
//
// A []byte request that came over the network belongs to the handler:
// the server allocates it for this call alone and never reuses it, so
// the handler may keep it after returning. One that came through a
// LocalClient is the caller's own slice: copy it to keep it. A []byte
// response is read after the handler returns, so nothing may change it
// until the answer is written (see "Who owns a []byte" in the package
// doc).
type Handler[Req, Resp any] func(ctx context.Context, req Req) (Resp, error)

// Method is the typed name of a method: its service, its own name and
// the Go types of its request and response. Clients call through it;
// servers get one back from Register. A Method is safe for concurrent
// use.
type Method[Req, Resp any] struct {
	service, name       string
	serviceID, methodID uint64
	req                 codec[Req]
	resp                codec[Resp]
	scratch             scratchPool
}

// NewMethod returns the method called name of the service called
// service. Both ends must use the same names and compatible types.
func NewMethod[Req, Resp any](service, name string) *Method[Req, Resp] {
	return &Method[Req, Resp]{
		service:   service,
		name:      name,
		serviceID: ServiceID(service),
		methodID:  MethodID(name),
		req:       newCodec[Req](),
		resp:      newCodec[Resp](),
	}
}

// String returns "service.method".
func (m *Method[Req, Resp]) String() string { return m.service + "." + m.name }

// Call sends req to the method through c and waits for the response, the
// context to end or the connection to break. The context's deadline
// travels with the request; when the context ends first, the server is
// told to cancel the handler and Call returns the context's error. (The
// cancel frame is written by the caller, so on a connection whose peer
// has stopped reading Call returns once that write does.) Over a network
// connection a []byte request is copied before Call returns and a []byte
// response is the caller's to keep; through a LocalClient both are the
// very slices the two ends passed.
func (m *Method[Req, Resp]) Call(ctx context.Context, c *Client, req Req) (Resp, error) {
	if c.local != nil {
		return callLocal(ctx, c.local, m, req)
	}
	var zero Resp
	payload, buf, err := m.req.encodeScratch(&m.scratch, req)
	if err != nil {
		m.scratch.put(buf)
		return zero, fmt.Errorf("rpc: encode %s request: %w", m, err)
	}
	p, err := c.call(ctx, m.serviceID, m.methodID, payload)
	m.scratch.put(buf)
	if err != nil {
		return zero, err
	}
	resp, err := m.resp.decode(p)
	if err != nil {
		return zero, fmt.Errorf("rpc: decode %s response: %w", m, err)
	}
	return resp, nil
}

// Notify sends req to the method through c as a one-way request: no
// answer comes back, not even an error, so Notify returns as soon as the
// request is queued for writing. The server runs notification handlers
// one at a time on the connection's reader, in the order sent, so
// notifications through one Client arrive in order; their handlers must
// be quick. Notify fails only when the request cannot be sent: the
// connection is closed (ErrClosed), the frame is too large, or ctx has
// ended; through a LocalClient, the handler runs on the caller's
// goroutine and a server that is stopping fails it with ErrShutdown or
// ErrClosed. Over a network connection a []byte request is copied before
// Notify returns; through a LocalClient the handler gets the slice
// itself.
func (m *Method[Req, Resp]) Notify(ctx context.Context, c *Client, req Req) error {
	if c.local != nil {
		return notifyLocal(ctx, c.local, m, req)
	}
	payload, buf, err := m.req.encodeScratch(&m.scratch, req)
	if err == nil {
		err = c.notify(ctx, m.serviceID, m.methodID, payload)
	} else {
		err = fmt.Errorf("rpc: encode %s request: %w", m, err)
	}
	m.scratch.put(buf)
	return err
}

// entry is a registered method with its types erased, as the server's
// dispatch sees it.
type entry struct {
	// serve decodes the request, runs the handler and encodes the
	// response; a non-nil buffer is scratch to hand back to scratch.
	serve   func(ctx context.Context, req []byte) ([]byte, *[]byte, error)
	scratch *scratchPool
	// typed is the Handler[Req, Resp], for in-process calls that skip
	// the codecs.
	typed any
	// quick counts the handler's recent quick runs; see inlineOK.
	quick atomic.Int32
}

// Register adds the method called name, answered by h, to s and returns
// the Method that calls it. It fails with ErrDuplicate when s already has
// a method of that name or id. A handler may keep a []byte request that
// came over the network, which is never reused, but must copy one that
// came through a LocalClient; see Handler.
func Register[Req, Resp any](s *Service, name string, h Handler[Req, Resp]) (*Method[Req, Resp], error) {
	m := NewMethod[Req, Resp](s.name, name)
	e := &entry{serve: serveFunc(m, h), scratch: &m.scratch, typed: h}
	if err := s.add(m.methodID, e); err != nil {
		return nil, fmt.Errorf("%w: method %s", err, m)
	}
	return m, nil
}

// serveFunc erases the types of h behind m's codecs. Handler errors
// become RemoteErrors so that only their message crosses the wire.
func serveFunc[Req, Resp any](m *Method[Req, Resp], h Handler[Req, Resp]) func(context.Context, []byte) ([]byte, *[]byte, error) {
	return func(ctx context.Context, p []byte) ([]byte, *[]byte, error) {
		req, err := m.req.decode(p)
		if err != nil {
			return nil, nil, &RemoteError{Message: fmt.Sprintf("decode %s request: %v", m, err)}
		}
		resp, err := h(ctx, req)
		if err != nil {
			return nil, nil, handlerError(ctx, err)
		}
		b, buf, err := m.resp.encodeScratch(&m.scratch, resp)
		if err != nil {
			m.scratch.put(buf)
			return nil, nil, &RemoteError{Message: fmt.Sprintf("encode %s response: %v", m, err)}
		}
		return b, buf, nil
	}
}

// handlerError is what the caller learns of a handler's error: the
// deadline, if that is what stopped it, or else its message.
func handlerError(ctx context.Context, err error) error {
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == context.DeadlineExceeded {
		return context.DeadlineExceeded
	}
	return &RemoteError{Message: err.Error()}
}

// Service is a named set of methods. Add it to one or more servers with
// Server.AddService; methods may be registered before or after.
type Service struct {
	name string
	id   uint64

	mu      sync.Mutex                        // serialises registrations
	methods atomic.Pointer[map[uint64]*entry] // copy on write; read without locks
}

// NewService returns an empty service called name; its wire id is
// ServiceID(name).
func NewService(name string) *Service {
	s := &Service{name: name, id: ServiceID(name)}
	s.methods.Store(&map[uint64]*entry{})
	return s
}

// Name returns the service's name.
func (s *Service) Name() string { return s.name }

// add registers e under id, copying the method table so that readers
// never lock.
func (s *Service) add(id uint64, e *entry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := *s.methods.Load()
	if _, dup := old[id]; dup {
		return ErrDuplicate
	}
	next := maps.Clone(old)
	next[id] = e
	s.methods.Store(&next)
	return nil
}

// method returns the entry for id, or nil.
func (s *Service) method(id uint64) *entry { return (*s.methods.Load())[id] }
