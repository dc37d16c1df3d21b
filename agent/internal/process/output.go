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
	keep := p
	if room := w.max - len(w.b); len(p) > room {
		w.truncated = true
		keep = p[:max(room, 0)]
	}
	if len(keep) == 0 {
		return len(p), nil
	}
	if need := len(w.b) + len(keep); need > cap(w.b) {
		// Grow by doubling but never past the cap: append's own growth
		// could reserve up to twice the cap.
		nb := make([]byte, len(w.b), min(max(2*cap(w.b), need, 4096), w.max))
		copy(nb, w.b)
		w.b = nb
	}
	w.b = append(w.b, keep...)
	return len(p), nil
}

// bytes returns what was kept; a cut through a multi-byte character drops
// its partial bytes rather than leaving them to become U+FFFD.
func (w *capWriter) bytes() []byte {
	if w.truncated {
		return w.b[:len(w.b)-incompleteTail(w.b)]
	}
	return w.b
}

func copyCapped(w *capWriter, f *os.File) {
	defer f.Close()
	buf := make([]byte, readChunk)
	io.CopyBuffer(struct{ io.Writer }{w}, struct{ io.Reader }{f}, buf)
}
