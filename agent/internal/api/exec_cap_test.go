package api

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"faas/agent/internal/process"
)

// The cap keeps the first maxOutputBytes and drains the rest: the command is
// not killed by SIGPIPE and runs to its own end.
func TestExecOutputCapDrainsTheRest(t *testing.T) {
	ts := newServer(t)
	r := doJSON[process.Result](t, ts, "POST", "/v1/exec", spec{
		"command":        "head -c 5000000 /dev/zero | tr '\\0' x; echo done >&2",
		"maxOutputBytes": 1000,
	}, 200)
	if r.ExitCode != 0 || !r.Truncated || r.Stdout != strings.Repeat("x", 1000) || r.Stderr != "done\n" {
		t.Fatalf("exit %d truncated %v stdout %d bytes stderr %q", r.ExitCode, r.Truncated, len(r.Stdout), r.Stderr)
	}
	small := doJSON[process.Result](t, ts, "POST", "/v1/exec", spec{"command": "printf abc", "maxOutputBytes": 3}, 200)
	if small.Truncated || small.Stdout != "abc" {
		t.Fatalf("exactly the cap is not truncated: %+v", small)
	}
	// A cut through a multi-byte character drops its partial bytes.
	euro := doJSON[process.Result](t, ts, "POST", "/v1/exec", spec{"command": "printf 'a€'", "maxOutputBytes": 3}, 200)
	if !euro.Truncated || euro.Stdout != "a" {
		t.Fatalf("cut rune: %+v", euro)
	}
	wantError(t, ts, "POST", "/v1/exec", spec{"command": "true", "maxOutputBytes": process.MaxCapture + 1}, 400, "invalid_request")
	wantError(t, ts, "POST", "/v1/exec", spec{"command": "true", "maxOutputBytes": -1}, 400, "invalid_request")
	wantError(t, ts, "POST", "/v1/exec", spec{"command": "true", "outputEncoding": "hex"}, 400, "invalid_request")
}

// base64 carries raw bytes exactly (the engine asks for it: no 6x escapes on
// the wire, and it does the UTF-8 repair itself).
func TestExecBase64Output(t *testing.T) {
	ts := newServer(t)
	r := doJSON[process.Result](t, ts, "POST", "/v1/exec", spec{"command": "printf '\\000\\001\\377ok'; printf 'e\\n' >&2", "outputEncoding": "base64"}, 200)
	out, err := base64.StdEncoding.DecodeString(r.Stdout)
	if err != nil || string(out) != "\x00\x01\xffok" || r.OutputEncoding != "base64" || r.Stderr != base64.StdEncoding.EncodeToString([]byte("e\n")) {
		t.Fatalf("%+v (%v)", r, err)
	}
	text := doJSON[process.Result](t, ts, "POST", "/v1/exec", spec{"command": "printf '\\001<&>\\n'"}, 200)
	if text.Stdout != "\x01<&>\n" || text.OutputEncoding != "text" {
		t.Fatalf("text: %+v", text)
	}
}

// Text output escaped in slices must decode to the same string as the whole,
// including multi-byte characters at slice boundaries.
func TestWriteOutputSlicesKeepRunes(t *testing.T) {
	in := strings.Repeat("a€\x01", encodeSlice) // 5 bytes per unit, boundaries fall mid-rune
	rec := &strings.Builder{}
	rw := &recorder{w: rec, h: http.Header{}}
	writeCaptured(rw, &process.Captured{Stdout: []byte(in)}, "")
	var got process.Result
	if err := json.Unmarshal([]byte(rec.String()), &got); err != nil {
		t.Fatal(err)
	}
	if got.Stdout != in {
		t.Fatal("sliced escaping changed the text")
	}
}

type recorder struct {
	w io.Writer
	h http.Header
}

func (r *recorder) Header() http.Header         { return r.h }
func (r *recorder) Write(b []byte) (int, error) { return r.w.Write(b) }
func (r *recorder) WriteHeader(int)             {}

// TestExecFloodMemoryBounded: eight concurrent execs each printing 16 MiB of
// control bytes (6-byte JSON escapes each) must cost the agent about the cap
// per stream, not the output: this is what put a 2 GB instance into `error`.
func TestExecFloodMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("large output")
	}
	ts := newServer(t)
	heap := watchHeap(5 * time.Millisecond)
	var wg sync.WaitGroup
	var bad atomic.Int32
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := `{"command":"head -c 16777216 /dev/zero | tr '\\0' '\\1'; head -c 16777216 /dev/zero | tr '\\0' '\\2' >&2"}`
			resp, err := http.Post(ts.URL+"/v1/exec", "application/json", strings.NewReader(body))
			if err != nil {
				bad.Add(1)
				return
			}
			// Decode as it arrives (the client shares this heap: it must not buffer either).
			var n int64
			n, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			// 1 MiB of \u0001 per stream is 6 MiB of JSON text.
			if resp.StatusCode != 200 || n < 12<<20 {
				bad.Add(1)
			}
		}()
	}
	wg.Wait()
	base, growth := heap()
	if bad.Load() > 0 {
		t.Fatalf("%d execs failed", bad.Load())
	}
	t.Logf("heap in use: base %d MiB, peak growth %.1f MiB over 8 x 32 MiB of output", base>>20, float64(growth)/(1<<20))
	// 8 execs x 2 streams x 1 MiB kept = 16 MiB, plus slices, pipes and GC
	// slack; before the cap and the sliced encoding this was over 1 GiB.
	if growth > 64<<20 {
		t.Fatalf("heap grew by %d MiB", growth>>20)
	}
}
