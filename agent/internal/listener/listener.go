// Package listener opens the agent's listening socket so that nothing else
// in the sandbox can share its port. (Separate from harden: importing net
// links cgo into test binaries, where harden's all-threads syscalls cannot run.)
package listener

import (
	"context"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// Exclusive opens the agent's TCP listener without SO_REUSEADDR (which Go sets
// on every listener). In gVisor's port manager (pkg/tcpip/ports) a new bind
// that overlaps an existing reservation is allowed when the two share a reuse
// flag: with Go's default, code in the sandbox (any user: 7070 is not a
// privileged port) could bind <instance ip>:7070 or 127.0.0.1:7070 with
// SO_REUSEADDR beside our 0.0.0.0:7070, receive the engine's next connection
// and read its key. A listener with no reuse flag shares with nobody.
func Exclusive(addr string) (net.Listener, error) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 0)
		}); err != nil {
			return err
		}
		return serr
	}}
	return lc.Listen(context.Background(), "tcp", addr)
}
