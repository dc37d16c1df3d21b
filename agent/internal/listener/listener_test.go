package listener

import (
	"net"
	"testing"

	"golang.org/x/sys/unix"
)

// The listener must not carry SO_REUSEADDR: in gVisor that is what lets
// another socket bind beside it (engine/test/agent-auth.test.ts tries it).
func TestExclusiveWithoutReuse(t *testing.T) {
	ln, err := Exclusive("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	rc, err := ln.(*net.TCPListener).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var gerr error
	rc.Control(func(fd uintptr) { v, gerr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR) })
	if gerr != nil || v != 0 {
		t.Fatalf("SO_REUSEADDR = %d (%v), want 0", v, gerr)
	}
}
