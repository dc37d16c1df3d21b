// Package splice is the host-side data path of the engine's HTTP service proxy: the engine (Node,
// which has no splice(2)) parses and authorizes a request, reads the upstream's response head and,
// for a large body of known length, starts `faas-agent splice N` with the upstream socket on fd 3
// and the client's socket on fd 4. This copies exactly N bytes between them with splice(2) (Go's
// TCPConn.ReadFrom), so the body never passes through user space, then exits; the engine keeps
// the client's connection (and its keep-alive) and closes the upstream one. It never runs in a
// sandbox; it lives in the agent's binary so the engine needs no second program.
package splice

import (
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
)

// Run copies args[0] bytes from fd 3 to fd 4 and prints the count copied.
func Run(args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("usage: faas-agent splice <bytes> (upstream socket on fd 3, client socket on fd 4)")
	}
	n, err := strconv.ParseInt(args[0], 10, 64)
	if err != nil || n < 0 {
		return fmt.Errorf("splice: not a byte count: %q", args[0])
	}
	src, err := conn(3, "upstream")
	if err != nil {
		return err
	}
	dst, err := conn(4, "client")
	if err != nil {
		return err
	}
	// io.CopyN wraps src in a LimitedReader, which TCPConn.ReadFrom still splices.
	got, err := io.CopyN(dst, src, n)
	fmt.Println(got)
	if err != nil {
		return fmt.Errorf("splice: %d of %d bytes: %w", got, n, err)
	}
	return nil
}

func conn(fd uintptr, name string) (net.Conn, error) {
	f := os.NewFile(fd, name)
	if f == nil {
		return nil, fmt.Errorf("splice: no %s socket on fd %d", name, fd)
	}
	defer f.Close() // FileConn holds its own duplicate
	c, err := net.FileConn(f)
	if err != nil {
		return nil, fmt.Errorf("splice: fd %d (%s): %w", fd, name, err)
	}
	return c, nil
}
