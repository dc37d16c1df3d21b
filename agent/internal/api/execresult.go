package api

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"

	"faas/agent/internal/process"
)

// encodeSlice bounds the memory of escaping: JSON writes a control byte as a
// 6-byte \u00XX escape, so a 16 MiB flood of them was a ~100 MiB string per
// stream when the result was marshalled whole. Output is escaped one slice at
// a time straight into the response instead.
const encodeSlice = 32 << 10

// writeCaptured writes the one-shot exec result (process.Result's shape)
// without holding more than the captured bytes and one encoded slice.
func writeCaptured(w http.ResponseWriter, c *process.Captured, encoding string) {
	if encoding == "" {
		encoding = "text"
	}
	sig, _ := marshal(c.Signal)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 64<<10)
	fmt.Fprintf(bw, `{"exitCode":%d,"signal":%s,"durationMs":%d,"timedOut":%t,"truncated":%t,"outputEncoding":%q,"stdout":"`,
		c.ExitCode, sig, c.DurationMs, c.TimedOut, c.Truncated, encoding)
	writeOutput(bw, c.Stdout, encoding)
	bw.WriteString(`","stderr":"`)
	writeOutput(bw, c.Stderr, encoding)
	bw.WriteString("\"}\n")
	bw.Flush()
}

func writeOutput(bw *bufio.Writer, b []byte, encoding string) {
	if encoding == "base64" {
		enc := base64.NewEncoder(base64.StdEncoding, bw)
		enc.Write(b)
		enc.Close()
		return
	}
	for len(b) > 0 {
		n := min(len(b), encodeSlice)
		// Cut before a rune's lead byte so a valid character is never split
		// (an invalid byte may be, which only doubles its U+FFFD).
		for n < len(b) && n > encodeSlice-utf8.UTFMax && !utf8.RuneStart(b[n]) {
			n--
		}
		q, _ := marshal(strings.ToValidUTF8(string(b[:n]), "\uFFFD"))
		bw.Write(q[1 : len(q)-1])
		b = b[n:]
	}
}
