package api

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

type frame struct {
	typ     byte
	payload []byte
}

func ptyDial(t *testing.T, addr, query string) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(conn, "GET /v1/pty?"+query+" HTTP/1.1\r\nHost: agent\r\nConnection: Upgrade\r\nUpgrade: faas-pty\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 101 || !strings.EqualFold(resp.Header.Get("Upgrade"), "faas-pty") {
		t.Fatalf("status %d %v", resp.StatusCode, resp.Header)
	}
	return conn, br
}

func sendFrame(t *testing.T, c net.Conn, typ byte, payload []byte) {
	var h [5]byte
	h[0] = typ
	binary.BigEndian.PutUint32(h[1:], uint32(len(payload)))
	if _, err := c.Write(append(h[:], payload...)); err != nil {
		t.Fatal(err)
	}
}

// readUntilExit collects output until the exit frame and returns both.
func readUntilExit(t *testing.T, br *bufio.Reader) (string, map[string]any) {
	t.Helper()
	var out strings.Builder
	for {
		var h [5]byte
		if _, err := io.ReadFull(br, h[:]); err != nil {
			t.Fatalf("reading frame: %v (output so far %q)", err, out.String())
		}
		p := make([]byte, binary.BigEndian.Uint32(h[1:]))
		if _, err := io.ReadFull(br, p); err != nil {
			t.Fatal(err)
		}
		switch h[0] {
		case 2:
			out.Write(p)
		case 4:
			var ex map[string]any
			if err := json.Unmarshal(p, &ex); err != nil {
				t.Fatal(err)
			}
			if _, err := br.ReadByte(); err != io.EOF {
				t.Fatalf("connection not closed after exit frame: %v", err)
			}
			return out.String(), ex
		default:
			t.Fatalf("unexpected frame type %d", h[0])
		}
	}
}

func TestPTYEcho(t *testing.T) {
	ts := newServer(t)
	_, br := ptyDial(t, ts.Listener.Addr().String(), "command="+url.QueryEscape("echo hi; exit 3"))
	out, ex := readUntilExit(t, br)
	if !strings.Contains(out, "hi\r\n") || ex["exitCode"].(float64) != 3 || ex["signal"] != nil {
		t.Fatalf("out %q exit %v", out, ex)
	}
}

func TestPTYResizeInputAndTerm(t *testing.T) {
	ts := newServer(t)
	conn, br := ptyDial(t, ts.Listener.Addr().String(), "cols=80&rows=24&command="+url.QueryEscape("read x; stty size; echo \"$x $TERM\""))
	sendFrame(t, conn, 3, []byte(`{"cols":132,"rows":43}`))
	sendFrame(t, conn, 1, []byte("typed\n"))
	out, ex := readUntilExit(t, br)
	if !strings.Contains(out, "43 132") || !strings.Contains(out, "typed xterm-256color") || ex["exitCode"].(float64) != 0 {
		t.Fatalf("out %q exit %v", out, ex)
	}
}

func TestPTYSignalAndMissingCommand(t *testing.T) {
	ts := newServer(t)
	conn, br := ptyDial(t, ts.Listener.Addr().String(), "command="+url.QueryEscape("echo $$; exec sleep 30"))
	pid := firstPid(t, br)
	// Signal only once sleep runs: a shell that catches SIGINT (dash -c
	// does) loses a signal that lands just before its exec, as on a real tty.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
		if strings.TrimSpace(string(b)) == "sleep" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("sleep never started")
		}
	}
	sendFrame(t, conn, 5, []byte(`{"signal":"SIGINT"}`))
	_, ex := readUntilExit(t, br)
	if ex["signal"] != "SIGINT" || ex["exitCode"].(float64) != 130 {
		t.Fatalf("exit %v", ex)
	}

	_, br = ptyDial(t, ts.Listener.Addr().String(), "user=no-such-user&command=true")
	out, ex := readUntilExit(t, br)
	if !strings.Contains(out, "faas-agent: ") || ex["exitCode"].(float64) != 127 {
		t.Fatalf("out %q exit %v", out, ex)
	}
}

func TestPTYHangupOnClose(t *testing.T) {
	ts := newServer(t)
	conn, br := ptyDial(t, ts.Listener.Addr().String(), "command="+url.QueryEscape("echo $$; sleep 30"))
	pid := firstPid(t, br)
	conn.Close()
	if !gone(pid, 3*time.Second) {
		t.Fatalf("terminal program %d survived hangup", pid)
	}
}

func TestPTYRequiresUpgrade(t *testing.T) {
	ts := newServer(t)
	wantError(t, ts, "GET", "/v1/pty", nil, 400, "invalid_request")
}

// firstPid reads output frames until a line holding a number arrives.
func firstPid(t *testing.T, br *bufio.Reader) int {
	t.Helper()
	var acc string
	for {
		var h [5]byte
		if _, err := io.ReadFull(br, h[:]); err != nil {
			t.Fatalf("no pid line in %q: %v", acc, err)
		}
		p := make([]byte, binary.BigEndian.Uint32(h[1:]))
		io.ReadFull(br, p)
		acc += string(p)
		if line, _, ok := strings.Cut(acc, "\n"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(line))
			if err != nil {
				t.Fatalf("bad pid line %q", line)
			}
			return n
		}
	}
}
