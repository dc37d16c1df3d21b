package api

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"faas/agent/internal/process"
)

func TestBackgroundLifecycle(t *testing.T) {
	ts := newServer(t)
	tag := "cat-1"
	p := doJSON[process.View](t, ts, "POST", "/v1/processes", spec{"argv": []string{"cat"}, "tag": tag, "stdin": "first\n"}, 201)
	if p.Pid <= 0 || p.State != "running" || p.Tag == nil || *p.Tag != tag || p.ExitCode != nil || p.ExitedAt != nil {
		t.Fatalf("%+v", p)
	}
	if _, err := time.Parse(process.TimeFormat, p.StartedAt); err != nil || !strings.Contains(p.StartedAt, ".") {
		t.Fatalf("startedAt %q", p.StartedAt)
	}
	base := "/v1/processes/" + strconv.Itoa(p.Pid)

	list := doJSON[struct{ Processes []process.View }](t, ts, "GET", "/v1/processes", nil, 200)
	found := false
	for _, q := range list.Processes {
		found = found || q.Pid == p.Pid
	}
	if !found {
		t.Fatalf("pid %d not listed: %+v", p.Pid, list)
	}

	// wait with a timeout returns while still running
	w := doJSON[process.View](t, ts, "POST", base+"/wait?timeoutMs=100", nil, 200)
	if w.State != "running" {
		t.Fatalf("%+v", w)
	}
	if code, out := do(t, ts, "POST", base+"/stdin", "second\n"); code != 204 {
		t.Fatalf("stdin: %d %s", code, out)
	}
	if code, out := do(t, ts, "POST", base+"/stdin/close", nil); code != 204 {
		t.Fatalf("close: %d %s", code, out)
	}
	w = doJSON[process.View](t, ts, "POST", base+"/wait", nil, 200)
	if w.State != "exited" || *w.ExitCode != 0 || w.Signal != nil || w.ExitedAt == nil {
		t.Fatalf("%+v", w)
	}
	_, out := do(t, ts, "GET", base+"/output", nil)
	evs := readNDJSON(t, strings.NewReader(string(out)))
	var text string
	for _, e := range evs[:len(evs)-1] {
		text += e["data"].(string)
	}
	if text != "first\nsecond\n" || evs[len(evs)-1]["type"] != "exit" {
		t.Fatalf("output %s", out)
	}
	wantError(t, ts, "POST", base+"/stdin", "x", 409, "conflict")
	wantError(t, ts, "POST", base+"/signal", spec{"signal": "SIGTERM"}, 409, "conflict")
	wantError(t, ts, "GET", "/v1/processes/999999999", nil, 404, "not_found")
	g := doJSON[process.View](t, ts, "GET", base, nil, 200)
	if g.State != "exited" {
		t.Fatalf("%+v", g)
	}
}

func TestBackgroundSignal(t *testing.T) {
	ts := newServer(t)
	for _, sig := range []any{"SIGTERM", "TERM", 15, "15"} {
		p := doJSON[process.View](t, ts, "POST", "/v1/processes", spec{"argv": []string{"sleep", "30"}}, 201)
		base := "/v1/processes/" + strconv.Itoa(p.Pid)
		if code, out := do(t, ts, "POST", base+"/signal", spec{"signal": sig}); code != 204 {
			t.Fatalf("signal %v: %d %s", sig, code, out)
		}
		w := doJSON[process.View](t, ts, "POST", base+"/wait?timeoutMs=5000", nil, 200)
		if w.State != "exited" || *w.ExitCode != 143 || *w.Signal != "SIGTERM" {
			t.Fatalf("%v: %+v", sig, w)
		}
	}
	p := doJSON[process.View](t, ts, "POST", "/v1/processes", spec{"argv": []string{"sleep", "30"}}, 201)
	base := "/v1/processes/" + strconv.Itoa(p.Pid)
	wantError(t, ts, "POST", base+"/signal", spec{"signal": "SIGNOPE"}, 400, "invalid_request")
	do(t, ts, "POST", base+"/signal", spec{"signal": "KILL"})
	doJSON[process.View](t, ts, "POST", base+"/wait", nil, 200)
}

func TestBackgroundOutputReplayAndFollow(t *testing.T) {
	ts := newServer(t)
	p := doJSON[process.View](t, ts, "POST", "/v1/processes",
		spec{"command": "for i in 1 2 3; do echo $i; sleep 0.2; done; echo e >&2"}, 201)
	base := "/v1/processes/" + strconv.Itoa(p.Pid)

	// follow from the start: everything, then exit
	resp, err := http.Get(ts.URL + base + "/output?follow=true")
	if err != nil {
		t.Fatal(err)
	}
	evs := readNDJSON(t, resp.Body)
	resp.Body.Close()
	var got []string
	var seqs []float64
	for _, e := range evs {
		if e["type"] == "exit" {
			got = append(got, "exit")
			continue
		}
		got = append(got, fmt.Sprint(e["type"], ":", e["data"]))
		seqs = append(seqs, e["seq"].(float64))
	}
	if strings.Join(got, "|") != "stdout:1\n|stdout:2\n|stdout:3\n|stderr:e\n|exit" {
		t.Fatalf("follow got %q", got)
	}
	for i := 1; i < len(seqs); i++ {
		if seqs[i] != seqs[i-1]+1 {
			t.Fatalf("seqs %v", seqs)
		}
	}
	// replay after the second chunk
	_, out := do(t, ts, "GET", fmt.Sprintf("%s/output?since=%d", base, int(seqs[1])), nil)
	evs = readNDJSON(t, strings.NewReader(string(out)))
	if len(evs) != 3 || evs[0]["data"] != "3\n" || evs[2]["type"] != "exit" {
		t.Fatalf("since replay: %s", out)
	}
}

func TestBackgroundDroppedAndSlowFollower(t *testing.T) {
	ts := newServer(t)
	p := doJSON[process.View](t, ts, "POST", "/v1/processes", spec{"command": "sleep 0.3; head -c 24000000 /dev/zero | tr '\\0' a"}, 201)
	base := "/v1/processes/" + strconv.Itoa(p.Pid)

	// A follower that never reads must not block the process.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", ts.URL+base+"/output?follow=true", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()

	w := doJSON[process.View](t, ts, "POST", base+"/wait?timeoutMs=10000", nil, 200)
	if w.State != "exited" {
		t.Fatalf("process blocked by a slow follower: %+v", w)
	}
	// The slow follower now catches up and must see a gap marker.
	evs := readNDJSON(t, resp.Body)
	var dropped, data int
	for _, e := range evs {
		switch e["type"] {
		case "dropped":
			dropped++
		case "stdout":
			data += len(e["data"].(string))
		}
	}
	if dropped == 0 || evs[len(evs)-1]["type"] != "exit" || data >= 24000000 {
		t.Fatalf("dropped=%d data=%d last=%v", dropped, data, evs[len(evs)-1])
	}
	// Replay from 0 after overflow: a dropped marker first, then <= 1 MiB.
	_, out := do(t, ts, "GET", base+"/output", nil)
	evs = readNDJSON(t, strings.NewReader(string(out)))
	if evs[0]["type"] != "dropped" || evs[0]["from"].(float64) != 1 {
		t.Fatalf("first event %v", evs[0])
	}
	data = 0
	for _, e := range evs {
		if e["type"] == "stdout" {
			data += len(e["data"].(string))
		}
	}
	if data > process.MaxBuffered || data < process.MaxBuffered-64<<10 {
		t.Fatalf("replayed %d bytes", data)
	}
}

func TestOrphanReaping(t *testing.T) {
	ts := newServer(t)
	p := doJSON[process.View](t, ts, "POST", "/v1/processes", spec{"command": "sleep 0.3 & echo $!"}, 201)
	base := "/v1/processes/" + strconv.Itoa(p.Pid)
	w := doJSON[process.View](t, ts, "POST", base+"/wait?timeoutMs=5000", nil, 200)
	if w.State != "exited" {
		t.Fatalf("%+v", w)
	}
	_, out := do(t, ts, "GET", base+"/output", nil)
	evs := readNDJSON(t, strings.NewReader(string(out)))
	gc, err := strconv.Atoi(strings.TrimSpace(evs[0]["data"].(string)))
	if err != nil {
		t.Fatalf("output %s", out)
	}
	if !gone(gc, 5*time.Second) {
		t.Fatalf("orphaned grandchild %d was not reaped", gc)
	}
	if z := zombieChildren(); len(z) > 0 {
		t.Fatalf("zombies: %v", z)
	}
}
