// Package reaper owns wait4 for the whole agent. As PID 1 (or a child
// subreaper) every orphan is re-parented to us, so exactly one goroutine may
// call wait4(-1): anything else (exec.Cmd.Wait, os.Process.Wait) would race it
// and lose exit statuses. Children must therefore be started through Spawn and
// observed through the channel it returns.
package reaper

import (
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Status is the result of a reaped child.
type Status struct {
	Pid int
	WS  syscall.WaitStatus
	At  time.Time
}

// ExitCode follows shell conventions: 128+signo when killed by a signal.
func (s Status) ExitCode() int {
	if s.WS.Signaled() {
		return 128 + int(s.WS.Signal())
	}
	return s.WS.ExitStatus()
}

// Signal returns the terminating signal, or 0.
func (s Status) Signal() syscall.Signal {
	if s.WS.Signaled() {
		return s.WS.Signal()
	}
	return 0
}

type Reaper struct {
	mu       sync.Mutex
	waiters  map[int]chan Status
	pending  map[int]Status // statuses seen while a Spawn was in flight
	spawning int
	orphans  uint64
}

var (
	defaultOnce sync.Once
	def         *Reaper
)

// Default returns the process-wide reaper, starting it on first use.
func Default() *Reaper {
	defaultOnce.Do(func() { def = start() })
	return def
}

func start() *Reaper {
	r := &Reaper{waiters: map[int]chan Status{}, pending: map[int]Status{}}
	if os.Getpid() != 1 {
		// Outside a sandbox (tests, dev runs) become a subreaper so orphaned
		// grandchildren are re-parented to us exactly as they would be to PID 1.
		_ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
	}
	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, syscall.SIGCHLD)
	go r.loop(sigc)
	return r
}

func (r *Reaper) loop(sigc chan os.Signal) {
	// The periodic tick is a belt-and-braces sweep: SIGCHLD coalesces, and
	// after a checkpoint/restore we do not want to rely on a pending signal.
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		r.reapAll()
		select {
		case <-sigc:
		case <-tick.C:
		}
	}
}

func (r *Reaper) reapAll() {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if err != nil || pid <= 0 {
			return
		}
		if ws.Stopped() || ws.Continued() {
			continue
		}
		r.dispatch(Status{Pid: pid, WS: ws, At: time.Now()})
	}
}

func (r *Reaper) dispatch(st Status) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ch, ok := r.waiters[st.Pid]; ok {
		delete(r.waiters, st.Pid)
		ch <- st // buffered(1), never blocks
		return
	}
	if r.spawning > 0 {
		// Could be a child whose Spawn has not registered yet.
		r.pending[st.Pid] = st
		return
	}
	r.orphans++
}

// Spawn runs start (which must fork a child and return its pid) and registers
// the pid before any status for it can be lost. The returned channel receives
// exactly one Status.
func (r *Reaper) Spawn(start func() (int, error)) (int, <-chan Status, error) {
	r.mu.Lock()
	r.spawning++
	r.mu.Unlock()

	pid, err := start()

	r.mu.Lock()
	defer r.mu.Unlock()
	r.spawning--
	var ch chan Status
	if err == nil {
		ch = make(chan Status, 1)
		if st, ok := r.pending[pid]; ok {
			delete(r.pending, pid)
			ch <- st
		} else {
			r.waiters[pid] = ch
		}
	}
	// Whatever is still pending once no Spawn is in flight (or has waited
	// longer than any fork can take) belonged to orphans: drop it so the map
	// cannot grow without bound under a constant stream of spawns.
	for p, st := range r.pending {
		if r.spawning == 0 || time.Since(st.At) > 10*time.Second {
			delete(r.pending, p)
			r.orphans++
		}
	}
	return pid, ch, err
}

// Orphans reports how many unknown children have been reaped.
func (r *Reaper) Orphans() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.orphans
}
