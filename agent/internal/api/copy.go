package api

import (
	"io"
	"sync"
)

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

// copyTo streams n bytes (all when n < 0) through a pooled fixed buffer.
func copyTo(w io.Writer, r io.Reader, n int64) (int64, error) {
	if n >= 0 {
		r = io.LimitReader(r, n)
	}
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	return io.CopyBuffer(struct{ io.Writer }{w}, struct{ io.Reader }{r}, *bp)
}
