// Package sftpserver is the agent binary's SFTP server mode: the agent starts itself with
// FAAS_AGENT_SFTP_SERVER=1, the connection as stdin/stdout and the user's home as its working
// directory, and this init serves SFTP there until the client closes. A process of its own (not
// a goroutine of PID 1) gives each session its own working directory, so relative paths start in
// the home directory and relative symlink targets stay relative (pkg/sftp's in-process working
// directory option rewrites them to absolute paths).
package sftpserver

import (
	"bufio"
	"io"
	"os"

	"github.com/pkg/sftp"
)

// Env marks the server mode; the agent strips FAAS_AGENT_* from what user programs inherit.
const Env = "FAAS_AGENT_SFTP_SERVER"

func init() {
	if os.Getenv(Env) != "1" {
		return
	}
	os.Unsetenv(Env)
	// Buffered reads: pkg/sftp reads each packet's header and body separately, and every read is
	// a syscall through gVisor's sentry; one 256 KiB read takes a whole 255 KiB WRITE request.
	br := bufio.NewReaderSize(os.Stdin, 256<<10)
	// limits@openssh.com (limits.go): clients then send 255 KiB READs and WRITEs, not 32 KiB ones.
	out := &packetWriter{w: os.Stdout}
	srv, err := sftp.NewServer(struct {
		io.Reader
		io.Writer
		io.Closer
	}{&inFilter{br: br, out: out}, out, os.Stdout}, sftp.WithMaxTxPacket(maxData))
	if err != nil {
		os.Exit(1)
	}
	srv.Serve()
	srv.Close()
	os.Exit(0)
}
