package process

import (
	"io"
	"os"
	"strings"
	"unicode/utf8"
)

const readChunk = 32 << 10

// pump reads f until EOF/deadline and hands out valid UTF-8 strings. A
// multi-byte rune split across two reads is carried over rather than being
// replaced, so chunk boundaries never corrupt text.
func pump(f *os.File, emit func(string)) {
	defer f.Close()
	buf := make([]byte, readChunk+utf8.UTFMax)
	carry := 0
	for {
		n, err := f.Read(buf[carry : carry+readChunk])
		n += carry
		if n > 0 {
			cut := n - incompleteTail(buf[:n])
			if cut > 0 {
				emit(strings.ToValidUTF8(string(buf[:cut]), "\uFFFD"))
			}
			carry = copy(buf, buf[cut:n])
		}
		if err != nil {
			if carry > 0 {
				emit(strings.ToValidUTF8(string(buf[:carry]), "\uFFFD"))
			}
			return
		}
	}
}

// incompleteTail returns how many trailing bytes form the start of a rune
// that needs more bytes than are present.
func incompleteTail(b []byte) int {
	for i := 1; i <= utf8.UTFMax-1 && i <= len(b); i++ {
		c := b[len(b)-i]
		if c&0xC0 == 0x80 {
			continue // continuation byte, keep looking for the lead byte
		}
		need := 0
		switch {
		case c&0xE0 == 0xC0:
			need = 2
		case c&0xF0 == 0xE0:
			need = 3
		case c&0xF8 == 0xF0:
			need = 4
		}
		if need > i {
			return i
		}
		return 0
	}
	return 0
}

// capWriter keeps the first max bytes and discards (but still consumes) the
// rest, so a chatty child never blocks on a full pipe.
type capWriter struct {
	b         []byte
	max       int
	truncated bool
}

func (w *capWriter) Write(p []byte) (int, error) {
	room := w.max - len(w.b)
	if len(p) > room {
		w.truncated = true
		if room > 0 {
			w.b = append(w.b, p[:room]...)
		}
		return len(p), nil
	}
	w.b = append(w.b, p...)
	return len(p), nil
}

func copyCapped(w *capWriter, f *os.File) {
	defer f.Close()
	buf := make([]byte, readChunk)
	io.CopyBuffer(struct{ io.Writer }{w}, struct{ io.Reader }{f}, buf)
}
