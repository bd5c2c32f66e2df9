package rpc

import (
	"bufio"
	"io"
	"runtime"
	"sync"
)

// Buffer sizes, in bytes.
const (
	defaultReadBufferSize = 16 << 10 // bufio.Reader per connection: 100 small frames; a payload larger than what is buffered is read around it
	maxSpareBuffer        = 1 << 20  // larger write buffers are not kept for reuse
)

// readHeader reads a frame's length prefix and header from r and returns
// the header and the payload length; the caller then reads exactly that
// many payload bytes. The length is checked against max before anything
// is allocated, so a 4 GiB prefix costs nothing.
func readHeader(r *bufio.Reader, max int) (header, int, error) {
	p, err := r.Peek(lengthSize)
	if err != nil {
		return header{}, 0, eofError(len(p), err)
	}
	n, err := frameLength(p, max)
	if err != nil {
		return header{}, 0, err
	}
	if p, err = r.Peek(lengthSize + headerSize); err != nil {
		return header{}, 0, eofError(len(p), err)
	}
	h, err := decodeHeader(p[lengthSize:])
	if err != nil {
		return header{}, 0, err
	}
	_, _ = r.Discard(lengthSize + headerSize) // cannot fail: the bytes were peeked
	return h, n - headerSize, nil
}

// eofError turns an EOF in the middle of a frame into io.ErrUnexpectedEOF;
// an EOF between frames is a clean close and stays io.EOF.
func eofError(buffered int, err error) error {
	if err == io.EOF && buffered > 0 {
		return io.ErrUnexpectedEOF
	}
	return err
}

// frameWriter lets many goroutines write frames to one connection.
// Frames are appended to a buffer; the goroutine that finds nobody
// writing becomes the flusher and writes until the buffer is empty, so
// an idle connection writes at once (no hand-off to another goroutine)
// and a busy one writes many frames per system call.
type frameWriter struct {
	w   io.Writer
	max int // largest frame length allowed, in bytes

	mu       sync.Mutex // protects the following
	buf      []byte     // frames waiting to be written
	spare    []byte     // the other buffer, reused while buf is written
	flushing bool       // a goroutine is writing to w
	err      error      // first write error; every later write fails with it
	onIdle   func()     // run by the flusher when it is done, see whenFlushed
}

// writeFrame queues one frame and, unless another goroutine is already
// writing, writes it. It returns ErrFrameTooLarge, without writing, for a
// payload that would make the frame longer than the maximum.
//
// busy says that other frames are likely to follow soon (other calls are
// in flight): the writer then yields once before writing, so that the
// goroutines about to write join the same system call. On an idle
// connection it writes at once.
func (w *frameWriter) writeFrame(h header, payload []byte, busy bool) error {
	if headerSize+len(payload) > w.max {
		return ErrFrameTooLarge
	}
	w.mu.Lock()
	if w.err != nil {
		err := w.err
		w.mu.Unlock()
		return err
	}
	w.buf = appendFrame(w.buf, h, payload)
	if w.flushing {
		w.mu.Unlock()
		return nil
	}
	w.flushing = true
	if busy {
		w.mu.Unlock()
		runtime.Gosched()
		w.mu.Lock()
	}
	return w.flushLocked()
}

// flushLocked writes buffered frames until none are left. It is called
// with mu held and returns with mu released.
func (w *frameWriter) flushLocked() error {
	for len(w.buf) > 0 && w.err == nil {
		out := w.buf
		w.buf, w.spare = w.spare[:0], nil
		w.mu.Unlock()
		_, err := w.w.Write(out)
		w.mu.Lock()
		if cap(out) <= maxSpareBuffer {
			w.spare = out[:0]
		}
		if err != nil {
			w.err = err
		}
	}
	w.flushing = false
	err, onIdle := w.err, w.onIdle
	w.onIdle = nil
	w.mu.Unlock()
	if onIdle != nil {
		onIdle()
	}
	return err
}

// whenFlushed runs fn once every queued frame has been written (or the
// writing failed): at once if nobody is writing, else on the flusher's
// goroutine when it is done.
func (w *frameWriter) whenFlushed(fn func()) {
	w.mu.Lock()
	if w.flushing {
		w.onIdle = fn
		w.mu.Unlock()
		return
	}
	w.mu.Unlock()
	fn()
}
