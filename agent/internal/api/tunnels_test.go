package api

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// tunnelUpgrade sends an upgrade request to the agent and returns the status, and on 101 the
// connection with its reader.
func tunnelUpgrade(t *testing.T, addr, path string) (int, net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(conn, "GET "+path+" HTTP/1.1\r\nHost: agent\r\nConnection: Upgrade\r\nUpgrade: faas-tunnel\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, conn, br
}

func freeTCPPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func TestTunnelListenAnnounceClaimHalfClose(t *testing.T) {
	ts := newServer(t)
	addr := strings.TrimPrefix(ts.URL, "http://")
	port := freeTCPPort(t)
	status, _, control := tunnelUpgrade(t, addr, "/v1/tunnels/listen?port="+strconv.Itoa(port))
	if status != 101 {
		t.Fatalf("listen: %d", status)
	}
	// A second listener on the same port is refused before any upgrade.
	if status, _, _ := tunnelUpgrade(t, addr, "/v1/tunnels/listen?port="+strconv.Itoa(port)); status != 409 {
		t.Fatalf("second listen: %d, want 409", status)
	}
	client, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	client.SetDeadline(time.Now().Add(10 * time.Second))
	line, err := control.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	var msg struct{ Type, ID string }
	if err := json.Unmarshal([]byte(line), &msg); err != nil || msg.Type != "connection" || len(msg.ID) != 32 {
		t.Fatalf("announcement %q", line)
	}
	status, claimed, rd := tunnelUpgrade(t, addr, "/v1/tunnels/connections/"+msg.ID)
	if status != 101 {
		t.Fatalf("claim: %d", status)
	}
	// The client sends and half-closes; the claimed side reads it all, answers, and finishes too.
	io.WriteString(client, "ping")
	client.(*net.TCPConn).CloseWrite()
	got, _ := io.ReadAll(rd)
	if string(got) != "ping" {
		t.Fatalf("claimed side read %q", got)
	}
	io.WriteString(claimed, "pong")
	claimed.(*net.TCPConn).CloseWrite()
	back, _ := io.ReadAll(client)
	if string(back) != "pong" {
		t.Fatalf("client read %q", back)
	}
	// Claimed once only.
	if status, _, _ := tunnelUpgrade(t, addr, "/v1/tunnels/connections/"+msg.ID); status != 404 {
		t.Fatalf("second claim: %d, want 404", status)
	}
}

func TestTunnelClosingControlStopsListener(t *testing.T) {
	ts := newServer(t)
	addr := strings.TrimPrefix(ts.URL, "http://")
	port := freeTCPPort(t)
	status, conn, _ := tunnelUpgrade(t, addr, "/v1/tunnels/listen?port="+strconv.Itoa(port))
	if status != 101 {
		t.Fatalf("listen: %d", status)
	}
	conn.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			return // refused: the listener is gone
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("the port still accepts connections after the control connection closed")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestTunnelRoutesRefuseBadInput(t *testing.T) {
	ts := newServer(t)
	addr := strings.TrimPrefix(ts.URL, "http://")
	for path, want := range map[string]int{
		"/v1/tunnels/listen?port=0":                          400,
		"/v1/tunnels/listen?port=70000":                      400,
		"/v1/tunnels/listen?port=7070":                       409,
		"/v1/tunnels/connections/" + strings.Repeat("0", 32): 404,
	} {
		if status, _, _ := tunnelUpgrade(t, addr, path); status != want {
			t.Errorf("%s: %d, want %d", path, status, want)
		}
	}
	// Without the key: 401, like every route.
	bare := newBareServer(t)
	if status, _, _ := tunnelUpgrade(t, strings.TrimPrefix(bare.URL, "http://"), "/v1/tunnels/listen?port=9"); status != 401 {
		t.Errorf("no key: %d, want 401", status)
	}
}

func TestTCPDialReachesLoopbackOnly(t *testing.T) {
	ts := newServer(t)
	addr := strings.TrimPrefix(ts.URL, "http://")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			io.WriteString(c, "hello")
			c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	status, _, rd := tunnelUpgrade(t, addr, "/v1/tcp?port="+strconv.Itoa(port))
	if status != 101 {
		t.Fatalf("dial: %d", status)
	}
	if got, _ := io.ReadAll(rd); string(got) != "hello" {
		t.Fatalf("read %q", got)
	}
	if status, _, _ := tunnelUpgrade(t, addr, "/v1/tcp?port="+strconv.Itoa(freeTCPPort(t))); status != 404 {
		t.Fatalf("nothing listening: %d, want 404", status)
	}
}
