package process

import (
	"context"
	"os"
	"sync"
	"syscall"
	"time"
)

// One-shot exec keeps at most this many bytes of each of stdout/stderr
// (Spec.MaxOutputBytes, default DefaultCapture, never more than MaxCapture)
// and drains and discards the rest, so a chatty command costs the agent the
// cap, not its output: eight 16 MiB floods at once used to push a 2 GB
// instance over its memory limit. Full output is what the stream route is for.
const (
	DefaultCapture = 1 << 20
	MaxCapture     = 16 << 20
)

// Result is the wire shape of the one-shot exec response (see
// spec/agent-protocol.md); the API layer writes it from a Captured without
// building it in memory.
type Result struct {
	ExitCode       int     `json:"exitCode"`
	Signal         *string `json:"signal"`
	DurationMs     int64   `json:"durationMs"`
	TimedOut       bool    `json:"timedOut"`
	Truncated      bool    `json:"truncated"`
	OutputEncoding string  `json:"outputEncoding"`
	Stdout         string  `json:"stdout"`
	Stderr         string  `json:"stderr"`
}

// Captured is a finished one-shot exec: its status and the raw, capped output.
type Captured struct {
	ExitCode   int
	Signal     *string
	DurationMs int64
	TimedOut   bool
	Truncated  bool
	Stdout     []byte
	Stderr     []byte
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

// Exec runs spec to completion, keeping at most spec.Cap() bytes of each
// stream. If ctx ends first (client went away) the process group is killed:
// nobody is left to receive the result.
func Exec(ctx context.Context, spec *Spec) (*Captured, error) {
	c, err := startSpec(spec)
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { c.Signal(syscall.SIGKILL) })
	defer stop()

	out := &capWriter{max: spec.Cap()}
	errw := &capWriter{max: spec.Cap()}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); copyCapped(out, c.Stdout) }()
	go func() { defer wg.Done(); copyCapped(errw, c.Stderr) }()
	<-c.Exited()
	wg.Wait()
	st := c.Status()
	return &Captured{
		ExitCode:   st.ExitCode(),
		Signal:     SignalName(st.Signal()),
		Stdout:     out.bytes(),
		Stderr:     errw.bytes(),
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

// StartAttached starts spec with a stdin pipe for a caller that streams all three stdio itself
// (the SSH gateway's exec sessions): stdout/stderr readers stop drainGrace after the leader exits,
// as for every other exec.
func StartAttached(spec *Spec) (*Child, error) {
	c, err := Start(spec, StartOptions{StdinPipe: true, Timeout: time.Duration(spec.TimeoutMs) * time.Millisecond})
	if err != nil {
		return nil, err
	}
	c.drainAfterExit(c.Stdout, c.Stderr)
	return c, nil
}
