package rpc

import (
	"context"
	"errors"
	"fmt"
)

// LocalClient returns a client that calls s in the same process, without
// a network or a connection. When the method's types are the ones it was
// registered with, the handler is called directly on the caller's
// goroutine with the caller's context, and request and response are
// passed as they are, without encoding: a []byte or pointer the caller
// passes is the one the handler sees. Errors are the same as over the
// network: handler errors arrive as *RemoteError.
func (s *Server) LocalClient() *Client { return s.local }

// callLocal is Method.Call for a client from LocalClient.
func callLocal[Req, Resp any](ctx context.Context, s *Server, m *Method[Req, Resp], req Req) (Resp, error) {
	var zero Resp
	e, err := s.lookup(m.serviceID, m.methodID)
	if err != nil {
		return zero, err
	}
	if err := ctx.Err(); err != nil {
		return zero, err
	}
	if err := s.enterLocal(); err != nil {
		return zero, err
	}
	defer s.localWG.Done()
	var resp Resp
	if h, ok := e.typed.(Handler[Req, Resp]); ok {
		resp, err = h(ctx, req)
	} else {
		resp, err = callErased(ctx, e, m, req)
	}
	s.countLocal(m.serviceID, err != nil)
	return resp, localError(ctx, err)
}

// callErased runs e through the codecs, as a network call would, for a
// Method whose types differ from the registered ones.
func callErased[Req, Resp any](ctx context.Context, e *entry, m *Method[Req, Resp], req Req) (Resp, error) {
	var zero Resp
	p, buf, err := m.req.encodeScratch(&m.scratch, req)
	if err != nil {
		m.scratch.put(buf)
		return zero, fmt.Errorf("rpc: encode %s request: %w", m, err)
	}
	out, rbuf, err := e.serve(ctx, p)
	m.scratch.put(buf)
	if err != nil {
		return zero, err
	}
	resp, err := m.resp.decode(out)
	if !m.resp.raw {
		e.scratch.put(rbuf) // else resp may alias it
	}
	if err != nil {
		return zero, fmt.Errorf("rpc: decode %s response: %w", m, err)
	}
	return resp, nil
}

// notifyLocal is Method.Notify for a client from LocalClient: the handler
// runs on the caller's goroutine and, as over the network, its result and
// error are dropped.
func notifyLocal[Req, Resp any](ctx context.Context, s *Server, m *Method[Req, Resp], req Req) error {
	_, err := callLocal(ctx, s, m, req)
	if errors.Is(err, ErrClosed) || errors.Is(err, ErrShutdown) || ctx.Err() != nil {
		return err
	}
	if err != nil {
		s.cfg.Logger.Debug("rpc: notification failed", "method", m.String(), "err", err)
	}
	return nil
}

// enterLocal counts an in-process call, unless the server is stopping.
func (s *Server) enterLocal() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch s.state {
	case stateDraining:
		return ErrShutdown
	case stateClosed:
		return ErrClosed
	}
	s.localWG.Add(1)
	return nil
}

// localError makes a handler's error look as it would over the network:
// the caller's context error if the caller gave up, else a RemoteError.
func localError(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	if _, ok := err.(*RemoteError); ok {
		return err
	}
	return &RemoteError{Message: err.Error()}
}
