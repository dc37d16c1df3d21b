package process

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"faas/agent/internal/reaper"
)

// A child that cannot be started is reported "like a shell does": we re-exec
// the agent itself in a tiny mode that prints the reason and exits 127/126.
// That gives every failure a real pid, process group, stderr and exit status,
// so exec, stream, background and PTY need no special-case code path.
const (
	failCodeEnv = "FAAS_AGENT_SPAWN_FAILURE_CODE"
	failMsgEnv  = "FAAS_AGENT_SPAWN_FAILURE_MSG"
)

func init() {
	// Runs in the agent binary and in test binaries alike.
	if code := os.Getenv(failCodeEnv); code != "" {
		n, _ := strconv.Atoi(code)
		fmt.Fprintf(os.Stderr, "faas-agent: %s\n", os.Getenv(failMsgEnv))
		os.Exit(n)
	}
}

// drainGrace bounds how long output is still read after the leader exited:
// a backgrounded grandchild may keep the pipe open indefinitely.
const drainGrace = 250 * time.Millisecond

type startError struct {
	code int
	msg  string
}

// Child is a started process (the leader of its own process group).
type Child struct {
	Pid       int
	Argv      []string
	Cwd       string
	StartedAt time.Time
	Stdin     *os.File // write end, nil unless requested
	Stdout    *os.File // read ends, nil in TTY mode
	Stderr    *os.File

	exited   chan struct{}
	status   reaper.Status
	timedOut atomic.Bool
	timer    *time.Timer
}

// StartOptions selects the child's stdio.
type StartOptions struct {
	StdinPipe bool     // give the child a stdin pipe (else /dev/null)
	TTY       *os.File // if set: stdio on this tty, new session, controlling tty
	Conn      *os.File // if set (and no TTY): stdin and stdout on this socket, stderr to /dev/null
	Shell     []string // TTY default argv when the spec has none
	ExtraEnv  []string
	Timeout   time.Duration // SIGKILL the whole group after this (0 = none)
}

type prepared struct {
	path string
	argv []string
	env  []string
	cwd  string
	cred *syscall.Credential
}

func prepare(spec *Spec, opts StartOptions) (*prepared, *startError) {
	p := &prepared{argv: spec.FullArgv()}
	if p.argv == nil {
		p.argv = opts.Shell
	}
	var u *userInfo
	explicit := spec.User != ""
	if explicit {
		var ok bool
		if u, ok = lookupUser(string(spec.User)); !ok {
			return p, &startError{127, fmt.Sprintf("unknown user %q", string(spec.User))}
		}
		if uint32(os.Getuid()) != u.uid || uint32(os.Getgid()) != u.gid {
			p.cred = &syscall.Credential{Uid: u.uid, Gid: u.gid, Groups: u.groups}
		}
	} else {
		u = currentUser()
	}
	p.env = append(buildEnv(spec.Env, u, explicit), opts.ExtraEnv...)
	p.cwd = spec.Cwd
	if p.cwd == "" {
		p.cwd = "/"
		if u != nil && u.home != "" {
			if fi, err := os.Stat(u.home); err == nil && fi.IsDir() {
				p.cwd = u.home
			}
		}
	} else if fi, err := os.Stat(p.cwd); err != nil || !fi.IsDir() {
		if err == nil {
			err = syscall.ENOTDIR
		}
		return p, &startError{127, fmt.Sprintf("cd %s: %v", p.cwd, unwrapErrno(err))}
	}
	path, serr := lookPath(p.argv[0], p.cwd, envLookup(p.env, "PATH"))
	if serr != nil {
		return p, serr
	}
	p.path = path
	return p, nil
}

func lookPath(name, cwd, pathEnv string) (string, *startError) {
	check := func(p string) (string, *startError) {
		full := p
		if !filepath.IsAbs(full) {
			full = filepath.Join(cwd, full)
		}
		fi, err := os.Stat(full)
		switch {
		case err != nil:
			return "", &startError{127, fmt.Sprintf("%s: %v", name, unwrapErrno(err))}
		case fi.IsDir():
			return "", &startError{126, fmt.Sprintf("%s: is a directory", name)}
		case fi.Mode().Perm()&0o111 == 0:
			return "", &startError{126, fmt.Sprintf("%s: permission denied", name)}
		}
		return full, nil
	}
	if name == "" {
		// Joined with a PATH entry, "" would name the directory itself (126); it is simply no program.
		return "", &startError{127, "empty program name: command not found"}
	}
	if strings.Contains(name, "/") {
		return check(name)
	}
	var firstErr *startError
	for _, dir := range filepath.SplitList(pathEnv) {
		if dir == "" {
			dir = "."
		}
		p, err := check(filepath.Join(dir, name))
		if err == nil {
			return p, nil
		}
		if err.code == 126 && firstErr == nil {
			firstErr = err
		}
	}
	if firstErr != nil {
		return "", firstErr
	}
	return "", &startError{127, fmt.Sprintf("%s: command not found", name)}
}

func unwrapErrno(err error) error {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno
	}
	return err
}

// Start forks the child described by spec. Only agent-side failures (pipes,
// fork itself) return an error; "cannot run this program" yields a child
// that reports the reason and exits 127/126.
func Start(spec *Spec, opts StartOptions) (*Child, error) {
	p, serr := prepare(spec, opts)
	c := &Child{Argv: p.argv, Cwd: p.cwd, exited: make(chan struct{})}
	if p.cwd == "" {
		c.Cwd = spec.Cwd
	}

	var parentEnds, childEnds []*os.File
	defer func() {
		for _, f := range childEnds {
			f.Close()
		}
	}()
	closeParent := func() {
		for _, f := range parentEnds {
			f.Close()
		}
	}
	files := make([]uintptr, 3)
	if opts.TTY != nil {
		files[0], files[1], files[2] = opts.TTY.Fd(), opts.TTY.Fd(), opts.TTY.Fd()
	} else if opts.Conn != nil {
		null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
		if err != nil {
			return nil, err
		}
		childEnds = append(childEnds, null)
		files[0], files[1], files[2] = opts.Conn.Fd(), opts.Conn.Fd(), null.Fd()
	} else {
		if opts.StdinPipe {
			r, w, err := os.Pipe()
			if err != nil {
				return nil, err
			}
			c.Stdin = w
			parentEnds, childEnds = append(parentEnds, w), append(childEnds, r)
			files[0] = r.Fd()
		} else {
			null, err := os.Open(os.DevNull)
			if err != nil {
				return nil, err
			}
			childEnds = append(childEnds, null)
			files[0] = null.Fd()
		}
		for i, dst := range []**os.File{&c.Stdout, &c.Stderr} {
			r, w, err := os.Pipe()
			if err != nil {
				closeParent()
				return nil, err
			}
			*dst = r
			parentEnds, childEnds = append(parentEnds, r), append(childEnds, w)
			files[i+1] = w.Fd()
		}
	}
	sys := &syscall.SysProcAttr{Setpgid: true}
	if opts.TTY != nil {
		sys = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	}

	fork := func(path string, argv, env []string, dir string, cred *syscall.Credential) (int, <-chan reaper.Status, error) {
		s := *sys
		s.Credential = cred
		return reaper.Default().Spawn(func() (int, error) {
			return syscall.ForkExec(path, argv, &syscall.ProcAttr{Dir: dir, Env: env, Files: files, Sys: &s})
		})
	}
	var (
		pid  int
		done <-chan reaper.Status
		err  error
	)
	if serr == nil {
		path, env := viaTrampoline(p.path, p.env)
		pid, done, err = fork(path, p.argv, env, p.cwd, p.cred)
		if err != nil {
			code := 126
			if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ENOTDIR) {
				code = 127
			}
			serr = &startError{code, fmt.Sprintf("%s: %v", p.argv[0], unwrapErrno(err))}
		}
	}
	if serr != nil {
		env := []string{failCodeEnv + "=" + strconv.Itoa(serr.code), failMsgEnv + "=" + serr.msg}
		pid, done, err = fork("/proc/self/exe", []string{"faas-agent"}, env, "/", nil)
		if err != nil {
			closeParent()
			return nil, fmt.Errorf("start %s: %w (and could not report it: %v)", p.argv[0], errors.New(serr.msg), err)
		}
	}
	c.Pid = pid
	c.StartedAt = time.Now()
	groups.add(c)
	if opts.Timeout > 0 {
		c.timer = time.AfterFunc(opts.Timeout, func() {
			select {
			case <-c.exited:
			default:
				c.timedOut.Store(true)
				c.Signal(syscall.SIGKILL)
			}
		})
	}
	go func() {
		c.status = <-done
		if c.timer != nil {
			c.timer.Stop()
		}
		groups.remove(c)
		close(c.exited)
	}()
	return c, nil
}

// Exited is closed once the leader has been reaped.
func (c *Child) Exited() <-chan struct{} { return c.exited }

// Status is valid after Exited is closed.
func (c *Child) Status() reaper.Status { return c.status }

func (c *Child) TimedOut() bool { return c.timedOut.Load() }

// Signal sends sig to the child's whole process group.
func (c *Child) Signal(sig syscall.Signal) error {
	err := syscall.Kill(-c.Pid, sig)
	if err == syscall.ESRCH {
		// The group may be gone while the leader is a zombie not yet reaped.
		err = nil
	}
	return err
}

// drainAfterExit stops readers drainGrace after the leader exits so an
// orphaned grandchild holding the pipe cannot hold the response open.
func (c *Child) drainAfterExit(files ...*os.File) {
	go func() {
		<-c.exited
		for _, f := range files {
			if f != nil {
				f.SetReadDeadline(time.Now().Add(drainGrace))
			}
		}
	}()
}

// groups tracks every live process group the agent started, for SIGTERM.
var groups = &groupSet{m: map[*Child]struct{}{}}

type groupSet struct {
	mu sync.Mutex
	m  map[*Child]struct{}
}

func (g *groupSet) add(c *Child)    { g.mu.Lock(); g.m[c] = struct{}{}; g.mu.Unlock() }
func (g *groupSet) remove(c *Child) { g.mu.Lock(); delete(g.m, c); g.mu.Unlock() }
func (g *groupSet) list() []*Child {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]*Child, 0, len(g.m))
	for c := range g.m {
		out = append(out, c)
	}
	return out
}

// Shutdown implements the PID-1 SIGTERM duty: SIGTERM every group we started,
// wait up to grace for the leaders, then SIGKILL whatever is left.
func Shutdown(grace time.Duration) {
	live := groups.list()
	for _, c := range live {
		c.Signal(syscall.SIGTERM)
	}
	deadline := time.After(grace)
wait:
	for _, c := range live {
		select {
		case <-c.exited:
		case <-deadline:
			break wait
		}
	}
	for _, c := range live {
		syscall.Kill(-c.Pid, syscall.SIGKILL)
	}
}
