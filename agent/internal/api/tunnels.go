package api

// Remote tunnels (spec/agent-protocol.md "Tunnels"): the sandbox cannot connect out to the host,
// so the engine connects in. Lifecycle of one tunnel:
//   1. the engine opens GET /v1/tunnels/listen?port=P (Upgrade: faas-tunnel); the agent binds P
//      (refused before the 101 when the port is taken) and keeps the upgraded socket as the
//      tunnel's control connection;
//   2. each connection accepted on P is parked under a random id and announced on the control
//      connection as one NDJSON line {"type":"connection","id":"…"};
//   3. the engine claims it with GET /v1/tunnels/connections/{id} (Upgrade: faas-tunnel); after
//      the 101 that socket carries the accepted connection's bytes both ways, with half-closes;
//   4. when the control connection ends, the listener closes and every parked connection with it.
// A parked connection nobody claims within parkTimeout is closed.

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"faas/agent/internal/errs"
)

const parkTimeout = 30 * time.Second

// AgentPort is the port the agent itself listens on; no tunnel may take it.
const AgentPort = 7070

type parked struct {
	conn  net.Conn
	timer *time.Timer
	owner *tunnel
}

type tunnel struct {
	ln net.Listener
}

// tunnelTable holds the connections accepted and not yet claimed, by id.
type tunnelTable struct {
	mu     sync.Mutex
	parked map[string]*parked
}

func (t *tunnelTable) park(tn *tunnel, c net.Conn) string {
	var b [16]byte
	rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	p := &parked{conn: c, owner: tn}
	t.mu.Lock()
	if t.parked == nil {
		t.parked = map[string]*parked{}
	}
	t.parked[id] = p
	t.mu.Unlock()
	p.timer = time.AfterFunc(parkTimeout, func() {
		if c := t.take(id); c != nil {
			c.Close()
		}
	})
	return id
}

func (t *tunnelTable) take(id string) net.Conn {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.parked[id]
	if p == nil {
		return nil
	}
	delete(t.parked, id)
	p.timer.Stop()
	return p.conn
}

// drop closes every connection still parked for tn (its control connection ended).
func (t *tunnelTable) drop(tn *tunnel) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for id, p := range t.parked {
		if p.owner == tn {
			p.timer.Stop()
			p.conn.Close()
			delete(t.parked, id)
		}
	}
}

func wantsTunnelUpgrade(r *http.Request) bool {
	return headerHasToken(r.Header, "Connection", "upgrade") && headerHasToken(r.Header, "Upgrade", "faas-tunnel")
}

// upgradeTunnel answers 101 and returns the raw connection and anything already buffered from it.
func upgradeTunnel(w http.ResponseWriter) (net.Conn, io.Reader, error) {
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return nil, nil, err
	}
	conn.SetDeadline(time.Time{}) // the server's header deadline must not end the tunnel
	brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: faas-tunnel\r\n\r\n")
	if err := brw.Flush(); err != nil {
		conn.Close()
		return nil, nil, err
	}
	return conn, brw.Reader, nil
}

// tunnelPort checks the upgrade offer and the port query of the listen and dial routes; on a bad
// request it has answered and returns false.
func tunnelPort(w http.ResponseWriter, r *http.Request) (int, bool) {
	if !wantsTunnelUpgrade(r) {
		writeError(w, errs.Invalid("expected Connection: Upgrade and Upgrade: faas-tunnel"))
		return 0, false
	}
	port, err := strconv.Atoi(r.URL.Query().Get("port"))
	if err != nil || port < 1 || port > 65535 {
		writeError(w, errs.Invalid("port must be an integer from 1 to 65535"))
		return 0, false
	}
	return port, true
}

func (s *Server) tunnelListen(w http.ResponseWriter, r *http.Request) {
	port, ok := tunnelPort(w, r)
	if !ok {
		return
	}
	if port == AgentPort {
		writeError(w, errs.Conflictf("port %d is the agent's own", port))
		return
	}
	// Every address of the sandbox (127.0.0.1, ::1 and the instance's own), as `ssh -R` would
	// with GatewayPorts: code in the sandbox reaches it however it names the sandbox.
	ln, err := net.Listen("tcp", fmt.Sprintf(":%d", port))
	if err != nil {
		writeError(w, errs.Conflictf("cannot listen on port %d in the instance: %v", port, err))
		return
	}
	control, rd, err := upgradeTunnel(w)
	if err != nil {
		ln.Close()
		return
	}
	tn := &tunnel{ln: ln}
	var writeMu sync.Mutex
	go func() {
		// The engine never writes on the control connection: EOF or an error means it is gone.
		io.Copy(io.Discard, rd)
		ln.Close()
		control.Close()
		s.tunnels.drop(tn)
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			control.Close()
			s.tunnels.drop(tn)
			return
		}
		id := s.tunnels.park(tn, c)
		line, _ := json.Marshal(map[string]string{"type": "connection", "id": id})
		writeMu.Lock()
		_, werr := control.Write(append(line, '\n'))
		writeMu.Unlock()
		if werr != nil {
			ln.Close()
			s.tunnels.drop(tn)
			return
		}
	}
}

func (s *Server) tunnelConnection(w http.ResponseWriter, r *http.Request) {
	if !wantsTunnelUpgrade(r) {
		writeError(w, errs.Invalid("expected Connection: Upgrade and Upgrade: faas-tunnel"))
		return
	}
	c := s.tunnels.take(r.PathValue("id"))
	if c == nil {
		writeError(w, errs.NotFoundf("no waiting tunnel connection with that id"))
		return
	}
	spliceUpgraded(w, c)
}

// spliceUpgraded answers 101 and splices the upgraded request with c; c is closed if the upgrade fails.
func spliceUpgraded(w http.ResponseWriter, c net.Conn) {
	up, rd, err := upgradeTunnel(w)
	if err != nil {
		c.Close()
		return
	}
	splice(up, rd, c)
}

// splice copies both ways until both directions have ended, passing each side's end of stream on
// as a half-close, so a client that finishes sending still gets its answer.
func splice(a net.Conn, aReader io.Reader, b net.Conn) {
	var wg sync.WaitGroup
	wg.Add(2)
	half := func(dst net.Conn, src io.Reader) {
		defer wg.Done()
		if _, err := copyTo(dst, src, -1); err != nil {
			// A reset on one side resets the other: close both at once.
			a.Close()
			b.Close()
			return
		}
		if cw, ok := dst.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		} else {
			dst.Close()
		}
	}
	go half(b, aReader)
	go half(a, b)
	wg.Wait()
	a.Close()
	b.Close()
}

// tcpDial serves GET /v1/tcp?port=P (Upgrade: faas-tunnel): the engine's port forward to a server
// that listens on the sandbox's loopback only (127.0.0.1 or ::1), which the engine cannot reach
// at the instance's address. Only loopback: the agent is no relay to anywhere else.
func (s *Server) tcpDial(w http.ResponseWriter, r *http.Request) {
	port, ok := tunnelPort(w, r)
	if !ok {
		return
	}
	var c net.Conn
	var err error
	for _, host := range []string{"127.0.0.1", "::1"} {
		if c, err = net.DialTimeout("tcp", net.JoinHostPort(host, strconv.Itoa(port)), 5*time.Second); err == nil {
			break
		}
	}
	if c == nil {
		writeError(w, errs.NotFoundf("nothing listens on port %d on the loopback: %v", port, err))
		return
	}
	spliceUpgraded(w, c)
}
