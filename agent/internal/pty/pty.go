// Package pty serves the faas-pty terminal protocol on a hijacked HTTP
// connection: [type:1][length:4 BE][payload] frames in both directions.
package pty

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"faas/agent/internal/process"

	cpty "github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// Frame types.
const (
	FrameInput  = 1
	FrameOutput = 2
	FrameResize = 3
	FrameExit   = 4
	FrameSignal = 5
)

// MaxFrame bounds a client frame's payload so a bad peer cannot make us
// allocate without limit.
const MaxFrame = 1 << 20

// Options come from the upgrade request's query string.
type Options struct {
	Cols, Rows uint16
	Command    string
	Cwd        string
	User       string
}

// Session is a started terminal, before the connection is attached.
type Session struct {
	ptm   *os.File
	child *process.Child
}

// Start opens a pty and starts the program on it. Called before the 101 so
// agent-side failures can still be reported as a normal HTTP error.
func Start(o Options) (*Session, error) {
	ptm, tty, err := cpty.Open()
	if err != nil {
		return nil, err
	}
	// creack/pty's ioctls call Fd(), which switches the master to blocking
	// mode; re-wrap a non-blocking dup so reads use the poller and honour
	// deadlines and Close.
	fd, err := unix.Dup(int(ptm.Fd()))
	ptm.Close()
	if err != nil {
		tty.Close()
		return nil, err
	}
	unix.CloseOnExec(fd)
	unix.SetNonblock(fd, true)
	ptm = os.NewFile(uintptr(fd), "/dev/ptmx")
	defer tty.Close()
	if o.Cols == 0 {
		o.Cols = 80
	}
	if o.Rows == 0 {
		o.Rows = 24
	}
	cpty.Setsize(ptm, &cpty.Winsize{Cols: o.Cols, Rows: o.Rows})

	spec := &process.Spec{Cwd: o.Cwd, User: process.UserRef(o.User), Env: map[string]string{"TERM": "xterm-256color"}}
	if o.Command != "" {
		spec.Command = &o.Command
	} else if _, err := os.Stat("/bin/bash"); err == nil {
		spec.Argv = []string{"/bin/bash", "-l"}
	} else {
		spec.Argv = []string{"/bin/sh"}
	}
	if err := spec.Validate(); err != nil {
		ptm.Close()
		return nil, err
	}
	child, err := process.Start(spec, process.StartOptions{TTY: tty})
	if err != nil {
		ptm.Close()
		return nil, err
	}
	return &Session{ptm: ptm, child: child}, nil
}

// Close releases a session whose connection never got attached.
func (s *Session) Close() {
	s.child.Signal(syscall.SIGHUP)
	s.ptm.Close()
}

// Serve pumps frames between conn (whose buffered reader is br) and the
// terminal until the program exits, then sends the exit frame and closes.
func (s *Session) Serve(conn net.Conn, br *bufio.Reader) {
	defer conn.Close()
	defer s.ptm.Close()
	var wmu sync.Mutex
	writeFrame := func(typ byte, payload []byte) error {
		wmu.Lock()
		defer wmu.Unlock()
		var hdr [5]byte
		hdr[0] = typ
		binary.BigEndian.PutUint32(hdr[1:], uint32(len(payload)))
		if _, err := conn.Write(hdr[:]); err != nil {
			return err
		}
		_, err := conn.Write(payload)
		return err
	}

	go s.readClient(br)

	outDone := make(chan struct{})
	go func() {
		defer close(outDone)
		buf := make([]byte, 32<<10)
		clientOK := true
		for {
			n, err := s.ptm.Read(buf)
			if n > 0 && clientOK {
				// Keep draining after a write error so the program never
				// blocks on a full terminal buffer.
				clientOK = writeFrame(FrameOutput, buf[:n]) == nil
			}
			if err != nil {
				return // EIO once every slave fd is closed, or the drain deadline
			}
		}
	}()

	<-s.child.Exited()
	// A background job may still hold the terminal; give output a moment.
	s.ptm.SetReadDeadline(time.Now().Add(250 * time.Millisecond))
	<-outDone
	st := s.child.Status()
	payload, _ := json.Marshal(struct {
		ExitCode int     `json:"exitCode"`
		Signal   *string `json:"signal"`
	}{st.ExitCode(), process.SignalName(st.Signal())})
	writeFrame(FrameExit, payload)
}

func (s *Session) readClient(br *bufio.Reader) {
	// Whatever ends the client side hangs up the terminal, like closing an
	// ssh session: SIGHUP to the terminal's process group.
	defer s.child.Signal(syscall.SIGHUP)
	for {
		typ, payload, err := ReadFrame(br)
		if err != nil {
			return
		}
		switch typ {
		case FrameInput:
			if _, err := s.ptm.Write(payload); err != nil && !errors.Is(err, os.ErrClosed) {
				return
			}
		case FrameResize:
			var sz struct{ Cols, Rows uint16 }
			if json.Unmarshal(payload, &sz) == nil && sz.Cols > 0 && sz.Rows > 0 {
				cpty.Setsize(s.ptm, &cpty.Winsize{Cols: sz.Cols, Rows: sz.Rows})
			}
		case FrameSignal:
			var m struct{ Signal json.RawMessage }
			if json.Unmarshal(payload, &m) != nil {
				continue
			}
			if sig, err := process.ParseSignal(m.Signal); err == nil {
				s.signalForeground(sig)
			}
		}
		// Unknown frame types are ignored for forward compatibility.
	}
}

// signalForeground delivers sig like the terminal would (^C): to the
// foreground process group, falling back to the session's own group.
func (s *Session) signalForeground(sig syscall.Signal) {
	pgrp := 0
	if rc, err := s.ptm.SyscallConn(); err == nil {
		rc.Control(func(fd uintptr) { pgrp, _ = unix.IoctlGetInt(int(fd), unix.TIOCGPGRP) })
	}
	if pgrp <= 0 || syscall.Kill(-pgrp, sig) != nil {
		s.child.Signal(sig)
	}
}

// ReadFrame reads one [type:1][length:4 BE][payload] frame; a payload over MaxFrame is an error.
func ReadFrame(br *bufio.Reader) (byte, []byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n > MaxFrame {
		return 0, nil, errors.New("frame too large")
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(br, payload); err != nil {
		return 0, nil, err
	}
	return hdr[0], payload, nil
}
