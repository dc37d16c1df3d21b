package process

import (
	"context"
	"errors"
	"io"
	"os"
	"sort"
	"sync"
	"syscall"
	"time"

	"faas/agent/internal/errs"
)

// Retention of exited background processes.
const (
	keepExitedFor = 10 * time.Minute
	keepExitedMax = 256
)

// TimeFormat is RFC 3339 with milliseconds, UTC.
const TimeFormat = "2006-01-02T15:04:05.000Z07:00"

// Proc is a background process.
type Proc struct {
	child   *Child
	tag     *string
	command *string
	out     *outBuf
	done    chan struct{} // leader reaped and output drained

	stdinMu     sync.Mutex
	stdinClosed bool
}

// View is the protocol's Process object.
type View struct {
	Pid       int      `json:"pid"`
	Tag       *string  `json:"tag"`
	Argv      []string `json:"argv"`
	Command   *string  `json:"command"`
	Cwd       string   `json:"cwd"`
	State     string   `json:"state"`
	ExitCode  *int     `json:"exitCode"`
	Signal    *string  `json:"signal"`
	StartedAt string   `json:"startedAt"`
	ExitedAt  *string  `json:"exitedAt"`
}

type Table struct {
	mu     sync.Mutex
	procs  map[int]*Proc
	exited []*Proc // in exit order, for retention
}

func NewTable() *Table { return &Table{procs: map[int]*Proc{}} }

// Start launches spec in the background. Its stdin is a pipe that stays open
// (after the optional initial spec.stdin) until closed through the API.
func (t *Table) Start(spec *Spec) (*Proc, error) {
	c, err := Start(spec, StartOptions{StdinPipe: true, Timeout: time.Duration(spec.TimeoutMs) * time.Millisecond})
	if err != nil {
		return nil, err
	}
	p := &Proc{child: c, tag: spec.Tag, command: spec.Command, out: newOutBuf(), done: make(chan struct{})}
	logStart(c.Pid, spec) // before its output is pumped, so "started" comes first
	if spec.Stdin != nil {
		p.stdinMu.Lock() // released by the writer so API writes queue behind it
		go func(data string) {
			defer p.stdinMu.Unlock()
			c.Stdin.WriteString(data)
		}(*spec.Stdin)
	}
	c.drainAfterExit(c.Stdout, c.Stderr)
	var wg sync.WaitGroup
	for stream, f := range map[string]*os.File{"stdout": c.Stdout, "stderr": c.Stderr} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pump(f, func(s string) {
				p.out.append(stream, s)
				Log.add(c.Pid, stream, s)
			})
		}()
	}
	go func() {
		<-c.Exited()
		c.Stdin.SetWriteDeadline(time.Now()) // unblock a stuck stdin writer
		wg.Wait()
		logExit(c)
		p.out.close()
		close(p.done)
		p.stdinMu.Lock()
		if !p.stdinClosed {
			p.stdinClosed = true
			c.Stdin.Close()
		}
		p.stdinMu.Unlock()
		t.mu.Lock()
		t.exited = append(t.exited, p)
		t.pruneLocked()
		t.mu.Unlock()
	}()
	t.mu.Lock()
	t.procs[c.Pid] = p // a reused pid replaces the old exited record
	t.mu.Unlock()
	return p, nil
}

func (t *Table) pruneLocked() {
	cutoff := time.Now().Add(-keepExitedFor)
	i := 0
	for i < len(t.exited) && (len(t.exited)-i > keepExitedMax || t.exited[i].child.Status().At.Before(cutoff)) {
		p := t.exited[i]
		if t.procs[p.child.Pid] == p {
			delete(t.procs, p.child.Pid)
		}
		i++
	}
	t.exited = append(t.exited[:0], t.exited[i:]...)
}

func (t *Table) Get(pid int) (*Proc, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.pruneLocked()
	if p, ok := t.procs[pid]; ok {
		return p, nil
	}
	return nil, errs.NotFoundf("no background process with pid %d", pid)
}

func (t *Table) List() []View {
	t.mu.Lock()
	t.pruneLocked()
	ps := make([]*Proc, 0, len(t.procs))
	for _, p := range t.procs {
		ps = append(ps, p)
	}
	t.mu.Unlock()
	sort.Slice(ps, func(i, j int) bool { return ps[i].child.StartedAt.Before(ps[j].child.StartedAt) })
	out := make([]View, len(ps))
	for i, p := range ps {
		out[i] = p.View()
	}
	return out
}

func (p *Proc) Pid() int { return p.child.Pid }

func (p *Proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *Proc) View() View {
	v := View{
		Pid: p.child.Pid, Tag: p.tag, Argv: p.child.Argv, Command: p.command, Cwd: p.child.Cwd,
		State: "running", StartedAt: p.child.StartedAt.UTC().Format(TimeFormat),
	}
	if p.exited() {
		st := p.child.Status()
		code := st.ExitCode()
		at := st.At.UTC().Format(TimeFormat)
		v.State, v.ExitCode, v.Signal, v.ExitedAt = "exited", &code, SignalName(st.Signal()), &at
	}
	return v
}

// Wait blocks until exit, timeout (0 = none) or ctx end, then returns the view.
func (p *Proc) Wait(ctx context.Context, timeout time.Duration) View {
	var tc <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		tc = t.C
	}
	select {
	case <-p.done:
	case <-tc:
	case <-ctx.Done():
	}
	return p.View()
}

func (p *Proc) WriteStdin(ctx context.Context, r io.Reader) error {
	p.stdinMu.Lock()
	defer p.stdinMu.Unlock()
	if p.stdinClosed || p.exited() {
		return errs.Conflictf("stdin of process %d is closed", p.child.Pid)
	}
	w := p.child.Stdin
	stop := context.AfterFunc(ctx, func() { w.SetWriteDeadline(time.Now()) })
	defer stop()
	buf := make([]byte, readChunk)
	_, err := io.CopyBuffer(struct{ io.Writer }{w}, struct{ io.Reader }{r}, buf)
	w.SetWriteDeadline(time.Time{})
	if errors.Is(err, syscall.EPIPE) || errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, os.ErrClosed) {
		return errs.Conflictf("process %d is not reading stdin (exited or closed it)", p.child.Pid)
	}
	return err
}

func (p *Proc) CloseStdin() error {
	p.stdinMu.Lock()
	defer p.stdinMu.Unlock()
	if !p.stdinClosed {
		p.stdinClosed = true
		return p.child.Stdin.Close()
	}
	return nil
}

func (p *Proc) Signal(sig syscall.Signal) error {
	if p.exited() {
		return errs.Conflictf("process %d has exited", p.child.Pid)
	}
	return p.child.Signal(sig)
}

// Output events.
type OutputEvent struct {
	Type string `json:"type"`
	Seq  uint64 `json:"seq"`
	Data string `json:"data"`
}

type DroppedEvent struct {
	Type string `json:"type"`
	From uint64 `json:"from"`
	To   uint64 `json:"to"`
}

type ProcExitEvent struct {
	Type     string  `json:"type"`
	ExitCode int     `json:"exitCode"`
	Signal   *string `json:"signal"`
}

// Output replays chunks with seq > since and, with follow, live chunks until
// the process exits. Reading never holds the buffer lock while emitting, so a
// slow client only ever delays itself.
func (p *Proc) Output(ctx context.Context, since uint64, follow bool, emit func(any) error) error {
	next := since + 1
	for {
		chunks, firstKept, closed, changed := p.out.read(next, 256<<10)
		if next < firstKept {
			if err := emit(DroppedEvent{Type: "dropped", From: next, To: firstKept - 1}); err != nil {
				return err
			}
			next = firstKept
		}
		for _, c := range chunks {
			if err := emit(OutputEvent{Type: c.Stream, Seq: c.Seq, Data: c.Data}); err != nil {
				return err
			}
			next = c.Seq + 1
		}
		if len(chunks) > 0 {
			continue
		}
		if closed {
			st := p.child.Status()
			return emit(ProcExitEvent{Type: "exit", ExitCode: st.ExitCode(), Signal: SignalName(st.Signal())})
		}
		if !follow {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
