// Package api maps the v1 protocol's HTTP routes onto the process, files and
// pty packages. Every non-2xx response is the JSON error envelope.
package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"time"

	"faas/agent/internal/errs"
	"faas/agent/internal/process"
)

// MaxJSONBody bounds JSON request bodies (a spec's stdin travels inside one).
const MaxJSONBody = 32 << 20

// Server holds the agent's state shared by handlers.
type Server struct {
	Version string
	started time.Time
	procs   *process.Table

	mu         sync.Mutex
	key        *keyDigest // nil until the first identity call (auth.go)
	instanceID *string
	restores   int

	tunnels tunnelTable // remote tunnels' accepted connections awaiting the engine (tunnels.go)
}

func New(version string) *Server {
	return &Server{Version: version, started: time.Now(), procs: process.NewTable()}
}

// Handler returns the route table behind the key check (auth.go).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/health", s.health)
	mux.HandleFunc("PUT /v1/identity", s.identity)

	mux.HandleFunc("POST /v1/exec", s.exec)
	mux.HandleFunc("POST /v1/exec/stream", s.execStream)

	mux.HandleFunc("POST /v1/processes", s.procStart)
	mux.HandleFunc("GET /v1/processes", s.procList)
	mux.HandleFunc("GET /v1/processes/{pid}", s.procGet)
	mux.HandleFunc("POST /v1/processes/{pid}/wait", s.procWait)
	mux.HandleFunc("POST /v1/processes/{pid}/stdin", s.procStdin)
	mux.HandleFunc("POST /v1/processes/{pid}/stdin/close", s.procStdinClose)
	mux.HandleFunc("POST /v1/processes/{pid}/signal", s.procSignal)
	mux.HandleFunc("GET /v1/processes/{pid}/output", s.procOutput)
	mux.HandleFunc("GET /v1/logs", s.logs)

	mux.HandleFunc("GET /v1/files/stat", s.fileStat)
	mux.HandleFunc("GET /v1/files/list", s.fileList)
	mux.HandleFunc("GET /v1/files/read", s.fileRead)
	mux.HandleFunc("PUT /v1/files/write", s.fileWrite)
	mux.HandleFunc("POST /v1/files/mkdir", s.fileMkdir)
	mux.HandleFunc("POST /v1/files/remove", s.fileRemove)
	mux.HandleFunc("POST /v1/files/rename", s.fileRename)
	mux.HandleFunc("PUT /v1/files/tar", s.tarUpload)
	mux.HandleFunc("GET /v1/files/tar", s.tarDownload)

	mux.HandleFunc("GET /v1/changes", s.changes)
	mux.HandleFunc("POST /v1/changes/apply", s.changesApply)

	mux.HandleFunc("GET /v1/pty", s.pty)
	mux.HandleFunc("GET /v1/exec/attach", s.execAttach)
	mux.HandleFunc("GET /v1/sftp", s.sftp)

	mux.HandleFunc("GET /v1/tunnels/listen", s.tunnelListen)
	mux.HandleFunc("GET /v1/tunnels/connections/{id}", s.tunnelConnection)
	mux.HandleFunc("GET /v1/tcp", s.tcpDial)

	// Catch-all so unknown routes and wrong methods also get the envelope
	// (the mux's own 404/405 bodies are plain text).
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, errs.NotFoundf("no route for %s %s", r.Method, r.URL.Path))
	})
	return s.requireKey(mux)
}

// NewHTTPServer: no ReadTimeout/WriteTimeout, which would cut long streams,
// uploads and terminals; ReadHeaderTimeout guards against idle half-opened
// connections.
func NewHTTPServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       5 * time.Minute,
	}
}

var statusFor = map[string]int{
	errs.InvalidRequest:  http.StatusBadRequest,
	errs.NotFound:        http.StatusNotFound,
	errs.Conflict:        http.StatusConflict,
	errs.PayloadTooLarge: http.StatusRequestEntityTooLarge,
	errs.Unauthorized:    http.StatusUnauthorized,
	errs.Internal:        http.StatusInternalServerError,
}

func writeError(w http.ResponseWriter, err error) {
	var mbe *http.MaxBytesError
	var e *errs.Error
	if errors.As(err, &mbe) {
		e = errs.New(errs.PayloadTooLarge, "request body larger than %d bytes", mbe.Limit)
	} else {
		e = errs.Classify(err)
	}
	writeJSON(w, statusFor[e.Code], map[string]any{"error": map[string]string{"code": e.Code, "message": e.Message}})
}

// marshal is json.Marshal without HTML escaping: "&" stays "&" in argv,
// output and paths, not "\u0026".
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := marshal(v)
	if err != nil {
		status, b = 500, []byte(`{"error":{"code":"internal","message":"encoding response"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// readJSON decodes a bounded JSON body into v; an empty body is invalid.
func readJSON(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxJSONBody))
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		var e *errs.Error
		switch {
		case errors.As(err, &mbe):
			return err
		case errors.As(err, &e):
			return e
		}
		return errs.Invalid("invalid JSON body: %v", err)
	}
	return nil
}

// ndjson writes one JSON object per line and flushes it immediately.
type ndjson struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func newNDJSON(w http.ResponseWriter) *ndjson {
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	n := &ndjson{w: w, rc: http.NewResponseController(w)}
	n.rc.Flush()
	return n
}

func (n *ndjson) emit(v any) error {
	b, err := marshal(v)
	if err != nil {
		return err
	}
	if _, err := n.w.Write(append(b, '\n')); err != nil {
		return err
	}
	return n.rc.Flush()
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	id, restores := s.instanceID, s.restores
	s.mu.Unlock()
	host, _ := getHostname()
	writeJSON(w, 200, map[string]any{
		"version": s.Version, "instanceId": id, "hostname": host,
		"restores": restores, "uptimeMs": time.Since(s.started).Milliseconds(),
	})
}
