package rpc

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"sync"
	"testing"
)

// lockedBuffer is an io.Writer safe for concurrent use that counts
// writes.
type lockedBuffer struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	writes int
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.writes++
	return b.buf.Write(p)
}

// TestFrameWriterConcurrent writes frames from many goroutines and
// checks that every frame arrives whole.
func TestFrameWriterConcurrent(t *testing.T) {
	var out lockedBuffer
	w := &frameWriter{w: &out, max: DefaultMaxFrameSize}
	const writers, each = 16, 100
	var wg sync.WaitGroup
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				p := bytes.Repeat([]byte{byte(g)}, i)
				if err := w.writeFrame(header{kind: kindRequest, id: uint64(g*each + i)}, p, i%2 == 0); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	seen := make(map[uint64]bool)
	br := bufio.NewReader(&out.buf)
	for range writers * each {
		h, p := readFrameT(t, br)
		g, i := h.id/each, h.id%each
		if seen[h.id] || len(p) != int(i) || len(p) > 0 && p[0] != byte(g) {
			t.Fatalf("frame %d: duplicate %v or bad payload %x", h.id, seen[h.id], p)
		}
		seen[h.id] = true
	}
	t.Logf("%d frames in %d writes", writers*each, out.writes)
}

// failingWriter fails every write.
type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, io.ErrClosedPipe }

// TestFrameWriterErrors checks the size limit and the sticky error.
func TestFrameWriterErrors(t *testing.T) {
	w := &frameWriter{w: failingWriter{}, max: 100}
	if err := w.writeFrame(header{kind: kindRequest}, make([]byte, 100), false); !errors.Is(err, ErrFrameTooLarge) {
		t.Errorf("oversized: got %v", err)
	}
	for range 2 {
		if err := w.writeFrame(header{kind: kindRequest}, nil, false); !errors.Is(err, io.ErrClosedPipe) {
			t.Errorf("broken writer: got %v", err)
		}
	}
	ran := false
	w.whenFlushed(func() { ran = true })
	if !ran {
		t.Error("whenFlushed did not run on an idle writer")
	}
}

// repeatReader returns b over and over.
type repeatReader struct{ b []byte }

func (r *repeatReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		n += copy(p[n:], r.b)
	}
	return n, nil
}

// TestHugePrefixRejectedWithoutAllocating feeds a 4 GiB length prefix to
// the stream reader and checks that it is refused with no allocation and
// without consuming the body.
func TestHugePrefixRejectedWithoutAllocating(t *testing.T) {
	br := bufio.NewReaderSize(&repeatReader{b: rawFrame(1<<32-1, byte(kindRequest), headerSize-1)}, 4096)
	var err error
	allocs := testing.AllocsPerRun(100, func() {
		_, _, err = readHeader(br, DefaultMaxFrameSize)
	})
	if !errors.Is(err, ErrFrameTooLarge) {
		t.Errorf("got %v, want ErrFrameTooLarge", err)
	}
	if allocs != 0 {
		t.Errorf("rejecting the frame allocated %v times, want 0", allocs)
	}
	if br.Buffered() != 4096 {
		t.Errorf("buffered %d bytes after the refusal, want 4096 (nothing consumed)", br.Buffered())
	}
}

// TestReadHeaderTruncated checks that a stream ending inside a frame
// says so, while one ending between frames is a clean EOF.
func TestReadHeaderTruncated(t *testing.T) {
	frame := appendFrame(nil, header{kind: kindRequest, id: 1}, []byte("payload"))
	for cut := 1; cut < lengthSize+headerSize; cut++ {
		br := bufio.NewReader(bytes.NewReader(frame[:cut]))
		if _, _, err := readHeader(br, DefaultMaxFrameSize); err != io.ErrUnexpectedEOF {
			t.Errorf("cut at %d: got %v, want io.ErrUnexpectedEOF", cut, err)
		}
	}
	br := bufio.NewReader(bytes.NewReader(nil))
	if _, _, err := readHeader(br, DefaultMaxFrameSize); err != io.EOF {
		t.Errorf("empty stream: got %v, want io.EOF", err)
	}
}
