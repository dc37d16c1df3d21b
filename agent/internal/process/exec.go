package process

import (
	"context"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"
)

// MaxCapture caps each of stdout/stderr in one-shot exec results.
const MaxCapture = 16 << 20

// Result is the one-shot exec response.
type Result struct {
	ExitCode   int     `json:"exitCode"`
	Signal     *string `json:"signal"`
	Stdout     string  `json:"stdout"`
	Stderr     string  `json:"stderr"`
	DurationMs int64   `json:"durationMs"`
	TimedOut   bool    `json:"timedOut"`
	Truncated  bool    `json:"truncated"`
}

func startSpec(spec *Spec) (*Child, error) {
	c, err := Start(spec, StartOptions{
		StdinPipe: spec.Stdin != nil,
		Timeout:   time.Duration(spec.TimeoutMs) * time.Millisecond,
	})
	if err != nil {
		return nil, err
	}
	if c.Stdin != nil {
		go func(data string) {
			// A child that does not read stdin makes this fail with EPIPE
			// (Go ignores SIGPIPE for non-stdio fds); that is fine.
			c.Stdin.WriteString(data)
			c.Stdin.Close()
		}(*spec.Stdin)
	}
	c.drainAfterExit(c.Stdout, c.Stderr)
	return c, nil
}

// Exec runs spec to completion. If ctx ends first (client went away) the
// process group is killed: nobody is left to receive the result.
func Exec(ctx context.Context, spec *Spec) (*Result, error) {
	c, err := startSpec(spec)
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { c.Signal(syscall.SIGKILL) })
	defer stop()

	out := &capWriter{max: MaxCapture}
	errw := &capWriter{max: MaxCapture}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); copyCapped(out, c.Stdout) }()
	go func() { defer wg.Done(); copyCapped(errw, c.Stderr) }()
	<-c.Exited()
	wg.Wait()
	st := c.Status()
	return &Result{
		ExitCode:   st.ExitCode(),
		Signal:     SignalName(st.Signal()),
		Stdout:     strings.ToValidUTF8(string(out.b), "\uFFFD"),
		Stderr:     strings.ToValidUTF8(string(errw.b), "\uFFFD"),
		DurationMs: st.At.Sub(c.StartedAt).Milliseconds(),
		TimedOut:   c.TimedOut(),
		Truncated:  out.truncated || errw.truncated,
	}, nil
}

// Stream events, one NDJSON line each.
type StartEvent struct {
	Type string `json:"type"`
	Pid  int    `json:"pid"`
}

type DataEvent struct {
	Type string `json:"type"`
	Data string `json:"data"`
}

type ExitEvent struct {
	Type       string  `json:"type"`
	ExitCode   int     `json:"exitCode"`
	Signal     *string `json:"signal"`
	DurationMs int64   `json:"durationMs"`
	TimedOut   bool    `json:"timedOut"`
}

// Stream runs spec and calls emit for each event in order. emit errors (the
// client disconnected) and ctx cancellation kill the process group. Output is
// back-pressured: a slow client slows the child, which is acceptable for an
// interactive stream (background processes never block; see Table).
func Stream(ctx context.Context, spec *Spec, emit func(any) error) error {
	c, err := startSpec(spec)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() {
		select {
		case <-c.Exited():
		default:
			c.Signal(syscall.SIGKILL)
		}
	})
	defer stop()

	if err := emit(StartEvent{Type: "start", Pid: c.Pid}); err != nil {
		c.Signal(syscall.SIGKILL)
		return err
	}
	events := make(chan DataEvent, 16)
	var wg sync.WaitGroup
	for typ, f := range map[string]*os.File{"stdout": c.Stdout, "stderr": c.Stderr} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pump(f, func(s string) {
				select {
				case events <- DataEvent{Type: typ, Data: s}:
				case <-ctx.Done():
				}
			})
		}()
	}
	go func() { wg.Wait(); close(events) }()
	for ev := range events {
		if err := emit(ev); err != nil {
			cancel() // kills the group and unblocks the pumps
			return err
		}
	}
	<-c.Exited()
	st := c.Status()
	return emit(ExitEvent{
		Type:       "exit",
		ExitCode:   st.ExitCode(),
		Signal:     SignalName(st.Signal()),
		DurationMs: st.At.Sub(c.StartedAt).Milliseconds(),
		TimedOut:   c.TimedOut(),
	})
}
