package api

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

var (
	fakeHostMu sync.Mutex
	fakeHost   = "test-host"
)

func TestMain(m *testing.M) {
	// Never rename the machine running the tests.
	setHostname = func(h string) error { fakeHostMu.Lock(); fakeHost = h; fakeHostMu.Unlock(); return nil }
	getHostname = func() (string, error) { fakeHostMu.Lock(); defer fakeHostMu.Unlock(); return fakeHost, nil }
	// A test run started under nohup has SIGHUP ignored, and an ignored signal stays ignored across
	// fork and exec: the terminal tests' programs would survive their hangup. A handled signal is
	// reset to the default on exec, as it is for the agent (PID 1 in a sandbox never ignores it).
	signal.Notify(make(chan os.Signal, 1), syscall.SIGHUP)
	os.Exit(m.Run())
}

// testKey is the key newServer's agents hold; their requests carry it unless
// they set Authorization themselves (auth_test.go tests the key itself).
const testKey = "test-key-0123456789abcdef0123456789abcdef"

func newServer(t *testing.T) *httptest.Server {
	t.Helper()
	s := New("test")
	d := digest(testKey)
	s.key = &d
	h := s.Handler()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "" {
			r.Header.Set("Authorization", "Bearer "+testKey)
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	return ts
}

// newBareServer is an agent as booted: no key, no identity, nothing added to requests.
func newBareServer(t *testing.T) *httptest.Server {
	t.Helper()
	ts := httptest.NewServer(New("test").Handler())
	t.Cleanup(ts.Close)
	return ts
}

func do(t *testing.T, ts *httptest.Server, method, path string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = strings.NewReader(b)
	case io.Reader:
		rd = b
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, ts.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, out
}

// doJSON performs a request, checks the status and decodes the response.
func doJSON[T any](t *testing.T, ts *httptest.Server, method, path string, body any, want int) T {
	t.Helper()
	code, out := do(t, ts, method, path, body)
	if code != want {
		t.Fatalf("%s %s: status %d, want %d: %s", method, path, code, want, out)
	}
	var v T
	if len(out) > 0 {
		if err := json.Unmarshal(out, &v); err != nil {
			t.Fatalf("%s %s: decode %q: %v", method, path, out, err)
		}
	}
	return v
}

type errBody struct {
	Error struct{ Code, Message string } `json:"error"`
}

func wantError(t *testing.T, ts *httptest.Server, method, path string, body any, status int, code string) {
	t.Helper()
	e := doJSON[errBody](t, ts, method, path, body, status)
	if e.Error.Code != code {
		t.Fatalf("%s %s: error code %q, want %q (%s)", method, path, e.Error.Code, code, e.Error.Message)
	}
}

func readNDJSON(t *testing.T, r io.Reader) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4<<20), 4<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("bad ndjson line %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

// gone reports whether pid has disappeared (exited and reaped) within d.
func gone(pid int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); os.IsNotExist(err) {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// zombieChildren lists our children in state Z.
func zombieChildren() []int {
	me := os.Getpid()
	ents, _ := os.ReadDir("/proc")
	var z []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		rest := s[strings.LastIndexByte(s, ')')+2:]
		f := strings.Fields(rest)
		if len(f) > 1 && f[0] == "Z" && f[1] == strconv.Itoa(me) {
			z = append(z, pid)
		}
	}
	return z
}

// watchHeap samples HeapInuse every interval from now on; the returned func stops
// sampling and gives the heap in use at the start and the peak growth above it.
func watchHeap(interval time.Duration) func() (base uint64, growth int64) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	var peak atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-time.After(interval):
			}
		}
	}()
	return func() (uint64, int64) {
		close(stop)
		wg.Wait()
		return base, int64(peak.Load()) - int64(base)
	}
}
