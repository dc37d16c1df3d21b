package files

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

// countingWriter records the size of every Write.
type countingWriter struct {
	bytes.Buffer
	writes []int
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.writes = append(w.writes, len(p))
	return w.Buffer.Write(p)
}

func TestCopyBufferedFillsTheBufferBeforeWriting(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), (3*copyBufSize+1000)/16)
	var w countingWriter
	// One byte per read: the writes must still be whole buffers, not one per read.
	n, err := copyBuffered(&w, iotest.OneByteReader(bytes.NewReader(data)))
	if err != nil || n != int64(len(data)) || !bytes.Equal(w.Bytes(), data) {
		t.Fatalf("copied %d of %d, err %v", n, len(data), err)
	}
	if len(w.writes) != 4 || w.writes[0] != copyBufSize || w.writes[3] != len(data)-3*copyBufSize {
		t.Fatalf("writes %v", w.writes)
	}
}

func TestCopyBufferedFailsOnATruncatedBody(t *testing.T) {
	// What net/http's body reader returns when the client sent less than its Content-Length (or a
	// chunked body without its last chunk): that must fail the copy, not end it as complete.
	src := io.MultiReader(bytes.NewReader([]byte("partial")), iotest.ErrReader(io.ErrUnexpectedEOF))
	var w countingWriter
	n, err := copyBuffered(&w, src)
	if !errors.Is(err, io.ErrUnexpectedEOF) || n != 7 {
		t.Fatalf("n %d err %v", n, err)
	}
}
