package api

// Upgraded routes for the engine's SSH gateway (spec/agent-protocol.md "Attached exec" and
// "SFTP"): an exec whose stdin, stdout and stderr stream as separate frames, with signals and an
// exit status, and an SFTP server speaking on the raw connection. Both run as the agent does
// (root in the sandbox), like every exec.

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"syscall"
	"time"

	"faas/agent/internal/errs"
	"faas/agent/internal/process"
	"faas/agent/internal/pty"
	"faas/agent/internal/scp"

	"faas/agent/internal/sftpserver"
)

// Attached exec frame types ([type:1][length:4 BE][payload], as the terminal's).
const (
	attachStdin  = 1
	attachStdout = 2
	attachExit   = 4
	attachSignal = 5
	attachStderr = 6
	attachEOF    = 7 // client → agent: stdin is finished
)

// upgrade answers 101 for the protocol named and hands back the raw connection.
func upgrade(w http.ResponseWriter, r *http.Request, proto string) (net.Conn, *bufio.Reader, bool) {
	if !headerHasToken(r.Header, "Connection", "upgrade") || !headerHasToken(r.Header, "Upgrade", proto) {
		writeError(w, errs.Invalid("expected Connection: Upgrade and Upgrade: %s", proto))
		return nil, nil, false
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		writeError(w, errs.New(errs.Internal, "hijack: %v", err))
		return nil, nil, false
	}
	conn.SetDeadline(time.Time{})
	brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: " + proto + "\r\n\r\n")
	if err := brw.Flush(); err != nil {
		conn.Close()
		return nil, nil, false
	}
	return conn, brw.Reader, true
}

// frameWriter serialises frames from several goroutines onto one connection.
type frameWriter struct {
	mu   sync.Mutex
	conn net.Conn
}

func (f *frameWriter) frame(typ byte, payload []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var hdr [5]byte
	hdr[0] = typ
	binary.BigEndian.PutUint32(hdr[1:], uint32(len(payload)))
	if _, err := f.conn.Write(hdr[:]); err != nil {
		return err
	}
	_, err := f.conn.Write(payload)
	return err
}

// stream is an io.Writer that sends each write as one frame of a type.
type stream struct {
	f   *frameWriter
	typ byte
}

func (s stream) Write(p []byte) (int, error) {
	for off := 0; off < len(p); off += 32 << 10 {
		end := min(off+32<<10, len(p))
		if err := s.f.frame(s.typ, p[off:end]); err != nil {
			return off, err
		}
	}
	return len(p), nil
}

// GET /v1/exec/attach?spec=<JSON process spec> (Upgrade: faas-exec), or ?scp=<JSON argv> for the
// built-in legacy scp server (images need no scp binary).
func (s *Server) execAttach(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var scpArgs []string
	var spec process.Spec
	if v := q.Get("scp"); v != "" {
		if err := json.Unmarshal([]byte(v), &scpArgs); err != nil {
			writeError(w, errs.Invalid("scp: expected a JSON array of arguments"))
			return
		}
	} else {
		if err := json.Unmarshal([]byte(q.Get("spec")), &spec); err != nil {
			writeError(w, errs.Invalid("spec: expected a JSON process spec: %v", err))
			return
		}
		spec.Stdin = nil
		if spec.Cwd == "" && spec.User == "" {
			// Like sshd: commands start in the user's home (root's, when the image has one).
			if st, err := os.Stat("/root"); err == nil && st.IsDir() {
				spec.Cwd = "/root"
			}
		}
		if err := spec.Validate(); err != nil {
			writeError(w, err)
			return
		}
	}
	var child *process.Child
	if scpArgs == nil {
		c, err := process.StartAttached(&spec)
		if err != nil {
			writeError(w, err)
			return
		}
		child = c
	}
	conn, br, ok := upgrade(w, r, "faas-exec")
	if !ok {
		if child != nil {
			child.Signal(syscall.SIGKILL)
		}
		return
	}
	defer conn.Close()
	fw := &frameWriter{conn: conn}
	if scpArgs != nil {
		serveScp(scpArgs, br, fw)
		return
	}
	go readAttachFrames(br, child.Stdin, func(sig syscall.Signal) { child.Signal(sig) }, func() {
		// The client went away before the exit: hang up, as a closed ssh session does.
		select {
		case <-child.Exited():
		default:
			child.Signal(syscall.SIGHUP)
		}
	})
	var wg sync.WaitGroup
	for typ, f := range map[byte]*os.File{attachStdout: child.Stdout, attachStderr: child.Stderr} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer f.Close()
			io.Copy(stream{fw, typ}, f)
		}()
	}
	<-child.Exited()
	wg.Wait()
	st := child.Status()
	payload, _ := json.Marshal(struct {
		ExitCode int     `json:"exitCode"`
		Signal   *string `json:"signal"`
	}{st.ExitCode(), process.SignalName(st.Signal())})
	fw.frame(attachExit, payload)
}

// readAttachFrames feeds stdin and signals until the client closes.
func readAttachFrames(br *bufio.Reader, stdin io.WriteCloser, signal func(syscall.Signal), gone func()) {
	defer gone()
	defer stdin.Close()
	for {
		typ, payload, err := pty.ReadFrame(br)
		if err != nil {
			return
		}
		switch typ {
		case attachStdin:
			// A program that stopped reading makes this fail; its later input is dropped.
			stdin.Write(payload)
		case attachEOF:
			stdin.Close()
		case attachSignal:
			var m struct{ Signal json.RawMessage }
			if json.Unmarshal(payload, &m) == nil {
				if sig, err := process.ParseSignal(m.Signal); err == nil {
					signal(sig)
				}
			}
		}
	}
}

func serveScp(args []string, br *bufio.Reader, fw *frameWriter) {
	in, inW := io.Pipe()
	go func() {
		readAttachFrames(br, inW, func(syscall.Signal) {}, func() {})
		inW.Close()
	}()
	code := scp.Run(args, in, stream{fw, attachStdout}, stream{fw, attachStderr})
	in.Close()
	payload, _ := json.Marshal(map[string]any{"exitCode": code, "signal": nil})
	fw.frame(attachExit, payload)
}

// GET /v1/sftp (Upgrade: faas-sftp): an SFTP server on the raw connection, in a process of its
// own (the agent binary in server mode, internal/sftpserver) that starts in root's home and
// reads and writes the connection directly. It ends when the client closes its side.
func (s *Server) sftp(w http.ResponseWriter, r *http.Request) {
	conn, br, ok := upgrade(w, r, "faas-sftp")
	if !ok {
		return
	}
	defer conn.Close()
	tcp, isTCP := conn.(*net.TCPConn)
	// The engine sends nothing before it has read the 101, so no bytes wait in br.
	if !isTCP || br.Buffered() > 0 {
		return
	}
	f, err := tcp.File()
	if err != nil {
		return
	}
	defer f.Close()
	home := "/root"
	if st, err := os.Stat(home); err != nil || !st.IsDir() {
		home = "/"
	}
	spec := &process.Spec{Argv: []string{"/proc/self/exe"}, Cwd: home, Env: map[string]string{sftpserver.Env: "1"}}
	if _, err := process.Start(spec, process.StartOptions{Conn: f}); err != nil {
		return
	}
	// The child holds its own copy of the socket; ours close on return.
}
