package process

import (
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestIncompleteTail(t *testing.T) {
	euro := "€" // 3 bytes
	cases := map[string]int{"abc": 0, "a" + euro[:1]: 1, "a" + euro[:2]: 2, "a" + euro: 0, "\xff": 0, "é"[:1]: 1}
	for in, want := range cases {
		if got := incompleteTail([]byte(in)); got != want {
			t.Errorf("%q: got %d want %d", in, got, want)
		}
	}
}

func TestOutBufEvictionAndRead(t *testing.T) {
	b := newOutBuf()
	chunk := strings.Repeat("x", 100<<10)
	for range 20 { // 2 MiB into a 1 MiB buffer
		b.append("stdout", chunk)
	}
	out, firstKept, closed, _ := b.read(1, 1<<30)
	if closed || firstKept == 1 || out[0].Seq != firstKept || out[len(out)-1].Seq != 20 {
		t.Fatalf("firstKept %d, %d chunks", firstKept, len(out))
	}
	if total := len(out) * len(chunk); total > MaxBuffered {
		t.Fatalf("kept %d bytes", total)
	}
	if out, _, _, _ := b.read(1<<62, 1<<30); len(out) != 0 {
		t.Fatal("future seq returned data")
	}
	b.close()
	if _, _, closed, _ := b.read(21, 1); !closed {
		t.Fatal("not closed")
	}
}

func TestSignalParsing(t *testing.T) {
	for in, want := range map[string]syscall.Signal{"SIGTERM": 15, "term": 15, "9": 9, `"SIGINT"`: 2, "1": 1} {
		got, err := ParseSignal([]byte(in))
		if err != nil || got != want {
			t.Errorf("%s: %v %v", in, got, err)
		}
	}
	for _, in := range []string{"SIGNOPE", "0", "99", `""`} {
		if _, err := ParseSignal([]byte(in)); err == nil {
			t.Errorf("%s accepted", in)
		}
	}
}

func TestShutdownTermThenKill(t *testing.T) {
	polite, err := Start(&Spec{Argv: []string{"sleep", "30"}}, StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	stubborn, err := Start(&Spec{Command: ptr("trap '' TERM; sleep 30 & wait")}, StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // let the trap be installed
	start := time.Now()
	Shutdown(500 * time.Millisecond)
	for _, c := range []*Child{polite, stubborn} {
		select {
		case <-c.Exited():
		case <-time.After(3 * time.Second):
			t.Fatalf("pid %d survived shutdown", c.Pid)
		}
	}
	if s := polite.Status().Signal(); s != syscall.SIGTERM {
		t.Fatalf("polite child got %v", s)
	}
	if s := stubborn.Status().Signal(); s != syscall.SIGKILL {
		t.Fatalf("stubborn child got %v", s)
	}
	if d := time.Since(start); d < 400*time.Millisecond || d > 3*time.Second {
		t.Fatalf("shutdown took %v", d)
	}
}

func ptr[T any](v T) *T { return &v }

// schemathesis found argv [""] refused as a bad request although the spec allows it: an empty
// program name is a program that cannot be started, reported like any unknown name (127).
func TestEmptyProgramNameIsNotFound(t *testing.T) {
	argv := []string{"", "x"}
	if err := (&Spec{Argv: argv}).Validate(); err != nil {
		t.Fatalf("Validate refused argv [\"\", \"x\"]: %v", err)
	}
	if err := (&Spec{Argv: []string{}}).Validate(); err == nil {
		t.Fatal("Validate accepted an empty argv")
	}
	_, serr := lookPath("", "/", "/usr/bin:/bin")
	if serr == nil || serr.code != 127 {
		t.Fatalf("lookPath(\"\") = %+v, want exit 127", serr)
	}
}
