package api

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"faas/agent/internal/errs"
	"faas/agent/internal/pty"
)

func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

func (s *Server) pty(w http.ResponseWriter, r *http.Request) {
	if !headerHasToken(r.Header, "Connection", "upgrade") || !headerHasToken(r.Header, "Upgrade", "faas-pty") {
		writeError(w, errs.Invalid("expected Connection: Upgrade and Upgrade: faas-pty"))
		return
	}
	q := r.URL.Query()
	dim := func(name string, def uint16) (uint16, error) {
		v := q.Get(name)
		if v == "" {
			return def, nil
		}
		n, err := strconv.ParseUint(v, 10, 16)
		if err != nil || n == 0 {
			return 0, errs.Invalid("invalid %s %q", name, v)
		}
		return uint16(n), nil
	}
	cols, err := dim("cols", 80)
	if err != nil {
		writeError(w, err)
		return
	}
	rows, err := dim("rows", 24)
	if err != nil {
		writeError(w, err)
		return
	}
	sess, err := pty.Start(pty.Options{Cols: cols, Rows: rows, Command: q.Get("command"), Cwd: q.Get("cwd"), User: q.Get("user")})
	if err != nil {
		writeError(w, err)
		return
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		sess.Close()
		writeError(w, errs.New(errs.Internal, "hijack: %v", err))
		return
	}
	conn.SetDeadline(time.Time{}) // the server's header deadline must not end the terminal
	brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: faas-pty\r\n\r\n")
	if err := brw.Flush(); err != nil {
		sess.Close()
		conn.Close()
		return
	}
	sess.Serve(conn, brw.Reader)
}
