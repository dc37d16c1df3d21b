package api

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"faas/agent/internal/process"
)

type spec = map[string]any

func TestExecBasics(t *testing.T) {
	ts := newServer(t)
	dir := t.TempDir()
	cases := []struct {
		name            string
		spec            spec
		code            int
		stdout, stderr  string
		stderrHasPrefix bool
	}{
		{"argv", spec{"argv": []string{"echo", "hello", "world"}}, 0, "hello world\n", "", false},
		{"shell", spec{"command": "echo out; echo err >&2; exit 3"}, 3, "out\n", "err\n", false},
		{"env", spec{"command": "echo $FOO-$PATH", "env": map[string]string{"FOO": "bar"}}, 0, "bar-" + os.Getenv("PATH") + "\n", "", false},
		{"cwd", spec{"argv": []string{"pwd"}, "cwd": dir}, 0, dir + "\n", "", false},
		{"user", spec{"argv": []string{"id", "-u"}, "user": "nobody"}, 0, "65534\n", "", false},
		{"numeric user", spec{"argv": []string{"id", "-u"}, "user": 65534}, 0, "65534\n", "", false},
		{"stdin", spec{"argv": []string{"cat"}, "stdin": "in put"}, 0, "in put", "", false},
		{"missing binary", spec{"argv": []string{"no-such-binary-xyz"}}, 127, "", "faas-agent: ", true},
		{"not executable", spec{"argv": []string{"/etc/hostname"}}, 126, "", "faas-agent: ", true},
		{"bad cwd", spec{"argv": []string{"true"}, "cwd": "/no/such/dir"}, 127, "", "faas-agent: ", true},
		{"unknown user", spec{"argv": []string{"true"}, "user": "no-such-user"}, 127, "", "faas-agent: ", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := doJSON[process.Result](t, ts, "POST", "/v1/exec", c.spec, 200)
			if r.ExitCode != c.code || r.Stdout != c.stdout {
				t.Fatalf("got %+v", r)
			}
			if c.stderrHasPrefix && !strings.HasPrefix(r.Stderr, c.stderr) || !c.stderrHasPrefix && r.Stderr != c.stderr {
				t.Fatalf("stderr %q", r.Stderr)
			}
		})
	}
	wantError(t, ts, "POST", "/v1/exec", spec{"argv": []string{"a"}, "command": "b"}, 400, "invalid_request")
	wantError(t, ts, "POST", "/v1/exec", spec{}, 400, "invalid_request")
	wantError(t, ts, "POST", "/v1/exec", "{not json", 400, "invalid_request")
	wantError(t, ts, "GET", "/v1/nope", nil, 404, "not_found")
}

func TestExecAgentEnvFiltered(t *testing.T) {
	t.Setenv("FAAS_AGENT_SECRET", "x")
	ts := newServer(t)
	r := doJSON[process.Result](t, ts, "POST", "/v1/exec", spec{"command": "env"}, 200)
	if strings.Contains(r.Stdout, "FAAS_AGENT_") {
		t.Fatalf("FAAS_AGENT_ variable leaked: %s", r.Stdout)
	}
}

func TestExecTimeoutKillsGroup(t *testing.T) {
	ts := newServer(t)
	pidFile := filepath.Join(t.TempDir(), "pid")
	start := time.Now()
	r := doJSON[process.Result](t, ts, "POST", "/v1/exec", spec{
		"command":   "sleep 30 & echo $! > " + pidFile + "; sleep 30",
		"timeoutMs": 300,
	}, 200)
	if !r.TimedOut || r.ExitCode != 137 || r.Signal == nil || *r.Signal != "SIGKILL" {
		t.Fatalf("got %+v", r)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatalf("took %v", time.Since(start))
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	gc, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if !gone(gc, 3*time.Second) {
		t.Fatalf("grandchild %d survived the timeout", gc)
	}
}

func TestExecTruncatedAndUTF8(t *testing.T) {
	ts := newServer(t)
	r := doJSON[process.Result](t, ts, "POST", "/v1/exec", spec{"command": "head -c 17000000 /dev/zero; printf 'a\\377b' >&2"}, 200)
	if !r.Truncated || len(r.Stdout) != process.DefaultCapture {
		t.Fatalf("truncated=%v len=%d", r.Truncated, len(r.Stdout))
	}
	if r.Stderr != "a\uFFFDb" {
		t.Fatalf("stderr %q", r.Stderr)
	}
}

func TestStreamOrder(t *testing.T) {
	ts := newServer(t)
	resp, err := http.Post(ts.URL+"/v1/exec/stream", "application/json",
		strings.NewReader(`{"command":"echo one; sleep 0.1; echo two >&2; sleep 0.1; echo three; exit 4"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/x-ndjson" {
		t.Fatalf("content type %q", ct)
	}
	evs := readNDJSON(t, resp.Body)
	var got []string
	for _, e := range evs {
		s := e["type"].(string)
		if d, ok := e["data"]; ok {
			s += ":" + d.(string)
		}
		got = append(got, s)
	}
	want := "start|stdout:one\n|stderr:two\n|stdout:three\n|exit"
	if strings.Join(got, "|") != want {
		t.Fatalf("events %q", got)
	}
	if evs[0]["pid"].(float64) <= 0 || evs[4]["exitCode"].(float64) != 4 || evs[4]["timedOut"] != false {
		t.Fatalf("events %v", evs)
	}
}

func TestStreamKillOnDisconnect(t *testing.T) {
	ts := newServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", ts.URL+"/v1/exec/stream", strings.NewReader(`{"command":"sleep 30"}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var start struct {
		Type string
		Pid  int
	}
	if err := json.NewDecoder(resp.Body).Decode(&start); err != nil || start.Type != "start" {
		t.Fatalf("start %+v %v", start, err)
	}
	cancel()
	resp.Body.Close()
	if !gone(start.Pid, 3*time.Second) {
		t.Fatalf("process %d still alive after disconnect", start.Pid)
	}
}

func TestIdentityAndHealth(t *testing.T) {
	ts := newServer(t)
	h := doJSON[map[string]any](t, ts, "GET", "/v1/health", nil, 200)
	if h["version"] != "test" || h["instanceId"] != nil || h["restores"].(float64) != 0 {
		t.Fatalf("health %v", h)
	}
	type idResp struct {
		InstanceID         string  `json:"instanceId"`
		PreviousInstanceID *string `json:"previousInstanceId"`
		Restores           int     `json:"restores"`
	}
	r := doJSON[idResp](t, ts, "PUT", "/v1/identity", spec{"instanceId": "inst_a", "hostname": "box-a"}, 200)
	if r.InstanceID != "inst_a" || r.PreviousInstanceID != nil || r.Restores != 0 {
		t.Fatalf("%+v", r)
	}
	doJSON[idResp](t, ts, "PUT", "/v1/identity", spec{"instanceId": "inst_a"}, 200) // same id: not a restore
	r = doJSON[idResp](t, ts, "PUT", "/v1/identity", spec{"instanceId": "inst_b", "hostname": "box-b"}, 200)
	if r.PreviousInstanceID == nil || *r.PreviousInstanceID != "inst_a" || r.Restores != 1 {
		t.Fatalf("%+v", r)
	}
	h = doJSON[map[string]any](t, ts, "GET", "/v1/health", nil, 200)
	if h["instanceId"] != "inst_b" || h["hostname"] != "box-b" || h["restores"].(float64) != 1 {
		t.Fatalf("health %v", h)
	}
	res := doJSON[process.Result](t, ts, "POST", "/v1/exec", spec{"command": "echo $FAAS_INSTANCE_ID"}, 200)
	if res.Stdout != "inst_b\n" {
		t.Fatalf("child saw %q", res.Stdout)
	}
	wantError(t, ts, "PUT", "/v1/identity", spec{"hostname": "x"}, 400, "invalid_request")
}
