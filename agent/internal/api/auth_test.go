package api

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"faas/agent/internal/process"
)

const (
	keyA = "key-a-0123456789abcdef0123456789abcdef"
	keyB = "key-b-0123456789abcdef0123456789abcdef"
	keyC = "key-c-0123456789abcdef0123456789abcdef"
)

// call makes one request with the given Authorization header ("" = none).
func call(t *testing.T, ts *httptest.Server, method, path, auth, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func want401(t *testing.T, ts *httptest.Server, method, path, auth, body string) {
	t.Helper()
	code, out := call(t, ts, method, path, auth, body)
	if code != 401 || !strings.Contains(out, `"code":"unauthorized"`) {
		t.Fatalf("%s %s (auth %q): %d %s, want 401 unauthorized", method, path, auth, code, out)
	}
	if strings.Contains(out, "inst_") || strings.Contains(out, "key-") {
		t.Fatalf("the 401 leaks something: %s", out)
	}
}

var everyRoute = [][2]string{
	{"GET", "/v1/health"}, {"POST", "/v1/exec"}, {"POST", "/v1/exec/stream"},
	{"POST", "/v1/processes"}, {"GET", "/v1/processes"}, {"GET", "/v1/processes/1"},
	{"POST", "/v1/processes/1/wait"}, {"POST", "/v1/processes/1/stdin"}, {"POST", "/v1/processes/1/stdin/close"},
	{"POST", "/v1/processes/1/signal"}, {"GET", "/v1/processes/1/output"},
	{"GET", "/v1/files/stat?path=/"}, {"GET", "/v1/files/list?path=/"}, {"GET", "/v1/files/read?path=/etc/hostname"},
	{"PUT", "/v1/files/write?path=/tmp/x"}, {"POST", "/v1/files/mkdir"}, {"POST", "/v1/files/remove"},
	{"POST", "/v1/files/rename"}, {"PUT", "/v1/files/tar?path=/tmp"}, {"GET", "/v1/files/tar?path=/tmp"},
	{"GET", "/v1/changes"}, {"POST", "/v1/changes/apply"},
	{"GET", "/v1/pty"}, {"GET", "/v1/nope"}, {"DELETE", "/v1/identity"},
}

// Before the first identity nothing at all answers, health included.
func TestAuthUnprovisionedRefusesEverything(t *testing.T) {
	ts := newBareServer(t)
	for _, r := range everyRoute {
		want401(t, ts, r[0], r[1], "", `{"command":"echo pwned > /tmp/pwned"}`)
		want401(t, ts, r[0], r[1], "Bearer "+keyA, `{"command":"echo pwned > /tmp/pwned"}`)
	}
}

func TestAuthKeyedRefusesMissingOrWrongKey(t *testing.T) {
	ts := newBareServer(t)
	if code, out := call(t, ts, "PUT", "/v1/identity", "", `{"instanceId":"inst_a","key":"`+keyA+`"}`); code != 200 || !strings.Contains(out, `"keyed":true`) {
		t.Fatalf("provisioning: %d %s", code, out)
	}
	for _, auth := range []string{"", "Bearer", "Bearer " + keyB, "Bearer " + keyA[:len(keyA)-1], "Basic " + keyA, keyA, "Bearer " + keyA + "x"} {
		for _, r := range everyRoute {
			want401(t, ts, r[0], r[1], auth, `{"command":"true"}`)
		}
	}
	code, out := call(t, ts, "POST", "/v1/exec", "Bearer "+keyA, `{"command":"echo ok"}`)
	if code != 200 || !strings.Contains(out, `"stdout":"ok\n"`) {
		t.Fatalf("exec with the key: %d %s", code, out)
	}
	if code, _ := call(t, ts, "GET", "/v1/health", "bearer "+keyA, ""); code != 200 {
		t.Fatalf("the scheme is case-insensitive (RFC 9110); got %d", code)
	}
}

func TestAuthFirstIdentityMustSetAValidKey(t *testing.T) {
	ts := newBareServer(t)
	for _, body := range []string{
		`{"instanceId":"inst_a"}`,                                             // no key
		`{"instanceId":"inst_a","key":"short"}`,                               // too short
		`{"instanceId":"inst_a","key":"` + strings.Repeat("k", 257) + `"}`,    // too long
		`{"instanceId":"inst_a","key":"` + keyA[:20] + " " + keyA[20:] + `"}`, // not a header token
	} {
		if code, out := call(t, ts, "PUT", "/v1/identity", "", body); code != 400 {
			t.Fatalf("%s: %d %s, want 400", body, code, out)
		}
	}
	// The body read before anyone is known is small.
	big := `{"instanceId":"inst_a","key":"` + keyA + `","hostname":"` + strings.Repeat("h", 70<<10) + `"}`
	if code, out := call(t, ts, "PUT", "/v1/identity", "", big); code != 413 {
		t.Fatalf("oversized first identity: %d %s", code, out)
	}
	want401(t, ts, "POST", "/v1/exec", "Bearer "+keyA, `{"command":"true"}`) // still unprovisioned
}

// Re-keying: the key of the snapshot a sandbox was restored from stops
// working once the engine gives the new instance its own.
func TestAuthRekey(t *testing.T) {
	ts := newBareServer(t)
	call(t, ts, "PUT", "/v1/identity", "", `{"instanceId":"inst_parent","key":"`+keyA+`"}`)
	code, out := call(t, ts, "PUT", "/v1/identity", "Bearer "+keyA, `{"instanceId":"inst_child","key":"`+keyB+`"}`)
	if code != 200 || !strings.Contains(out, `"previousInstanceId":"inst_parent"`) {
		t.Fatalf("rekey: %d %s", code, out)
	}
	want401(t, ts, "GET", "/v1/health", "Bearer "+keyA, "")
	want401(t, ts, "PUT", "/v1/identity", "Bearer "+keyA, `{"instanceId":"inst_x","key":"`+keyC+`"}`)
	if code, _ := call(t, ts, "GET", "/v1/health", "Bearer "+keyB, ""); code != 200 {
		t.Fatalf("new key refused: %d", code)
	}
	// An identity without `key` keeps the current one.
	if code, _ := call(t, ts, "PUT", "/v1/identity", "Bearer "+keyB, `{"instanceId":"inst_child","maxProcesses":5}`); code != 200 {
		t.Fatalf("identity with the key: %d", code)
	}
	if code, _ := call(t, ts, "GET", "/v1/health", "Bearer "+keyB, ""); code != 200 {
		t.Fatal("key lost by an identity without one")
	}
	process.SetMaxProcesses(0)
}

// Code that does not hold the key cannot change identity, hostname or limits.
func TestAuthIdentityCannotBeChangedWithoutTheKey(t *testing.T) {
	ts := newBareServer(t)
	call(t, ts, "PUT", "/v1/identity", "", `{"instanceId":"inst_real","hostname":"inst-real","maxProcesses":64,"key":"`+keyA+`"}`)
	t.Cleanup(func() { process.SetMaxProcesses(0) })
	evil := `{"instanceId":"inst_evil","hostname":"evil","maxProcesses":0,"key":"` + keyC + `"}`
	for _, auth := range []string{"", "Bearer " + keyB, "Bearer " + keyC} {
		want401(t, ts, "PUT", "/v1/identity", auth, evil)
	}
	if h, _ := getHostname(); h != "inst-real" {
		t.Fatalf("hostname changed to %q", h)
	}
	if n := process.MaxProcesses(); n != 64 {
		t.Fatalf("maxProcesses changed to %d", n)
	}
	code, out := call(t, ts, "GET", "/v1/health", "Bearer "+keyA, "")
	if code != 200 || !strings.Contains(out, `"instanceId":"inst_real"`) {
		t.Fatalf("identity changed: %d %s", code, out)
	}
	want401(t, ts, "GET", "/v1/health", "Bearer "+keyC, "")
}

// Two first identities racing: exactly one provisions, the other is refused.
func TestAuthFirstUseRace(t *testing.T) {
	for round := 0; round < 20; round++ {
		ts := newBareServer(t)
		var wg sync.WaitGroup
		codes := make([]int, 2)
		for i, k := range []string{keyA, keyB} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				codes[i], _ = call(t, ts, "PUT", "/v1/identity", "", `{"instanceId":"inst_a","key":"`+k+`"}`)
			}()
		}
		wg.Wait()
		if !(codes[0] == 200 && codes[1] == 401 || codes[0] == 401 && codes[1] == 200) {
			t.Fatalf("round %d: codes %v, want one 200 and one 401", round, codes)
		}
		winner := keyA
		if codes[1] == 200 {
			winner = keyB
		}
		if code, _ := call(t, ts, "GET", "/v1/health", "Bearer "+winner, ""); code != 200 {
			t.Fatalf("winner's key refused")
		}
	}
}
