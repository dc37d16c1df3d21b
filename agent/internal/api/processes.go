package api

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"faas/agent/internal/errs"
	"faas/agent/internal/process"
)

func (s *Server) procStart(w http.ResponseWriter, r *http.Request) {
	spec, ok := s.readSpec(w, r)
	if !ok {
		return
	}
	p, err := s.procs.Start(spec)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, p.View())
}

func (s *Server) procList(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, 200, map[string]any{"processes": s.procs.List()})
}

func (s *Server) lookup(w http.ResponseWriter, r *http.Request) (*process.Proc, bool) {
	pid, err := strconv.Atoi(r.PathValue("pid"))
	if err != nil || pid <= 0 {
		writeError(w, errs.Invalid("invalid pid %q", r.PathValue("pid")))
		return nil, false
	}
	p, err := s.procs.Get(pid)
	if err != nil {
		writeError(w, err)
		return nil, false
	}
	return p, true
}

func (s *Server) procGet(w http.ResponseWriter, r *http.Request) {
	if p, ok := s.lookup(w, r); ok {
		writeJSON(w, 200, p.View())
	}
}

func (s *Server) procWait(w http.ResponseWriter, r *http.Request) {
	p, ok := s.lookup(w, r)
	if !ok {
		return
	}
	var timeout time.Duration
	if v := r.URL.Query().Get("timeoutMs"); v != "" {
		ms, err := strconv.ParseInt(v, 10, 64)
		if err != nil || ms < 0 {
			writeError(w, errs.Invalid("invalid timeoutMs %q", v))
			return
		}
		timeout = time.Duration(ms) * time.Millisecond
		if ms == 0 {
			timeout = time.Nanosecond // timeoutMs=0 means "just poll"
		}
	}
	writeJSON(w, 200, p.Wait(r.Context(), timeout))
}

func (s *Server) procStdin(w http.ResponseWriter, r *http.Request) {
	p, ok := s.lookup(w, r)
	if !ok {
		return
	}
	if err := p.WriteStdin(r.Context(), r.Body); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) procStdinClose(w http.ResponseWriter, r *http.Request) {
	p, ok := s.lookup(w, r)
	if !ok {
		return
	}
	if err := p.CloseStdin(); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) procSignal(w http.ResponseWriter, r *http.Request) {
	p, ok := s.lookup(w, r)
	if !ok {
		return
	}
	var req struct {
		Signal json.RawMessage `json:"signal"`
	}
	if err := readJSON(w, r, &req); err != nil {
		writeError(w, err)
		return
	}
	if len(req.Signal) == 0 {
		writeError(w, errs.Invalid("signal is required"))
		return
	}
	sig, err := process.ParseSignal(req.Signal)
	if err == nil {
		err = p.Signal(sig)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) procOutput(w http.ResponseWriter, r *http.Request) {
	p, ok := s.lookup(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	since, ok := uintParam(w, q, "since")
	if !ok {
		return
	}
	follow, _ := strconv.ParseBool(q.Get("follow"))
	out := newNDJSON(w)
	p.Output(r.Context(), since, follow, out.emit)
}

// logs answers GET /v1/logs?since=SEQ&tail=N: the instance log (process.Log), entries after
// `since`, at most the last `tail`, and `nextSeq` to pass as `since` next time.
func (s *Server) logs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	since, ok := uintParam(w, q, "since")
	if !ok {
		return
	}
	tail, ok := uintParam(w, q, "tail")
	if !ok {
		return
	}
	entries, next := process.Log.Read(since, int(min(tail, 1<<31)))
	writeJSON(w, http.StatusOK, map[string]any{"entries": entries, "nextSeq": next})
}

// uintParam reads an optional unsigned decimal query parameter (0 when absent); on a bad value it
// answers 400 and returns false.
func uintParam(w http.ResponseWriter, q url.Values, name string) (uint64, bool) {
	v := q.Get(name)
	if v == "" {
		return 0, true
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		writeError(w, errs.Invalid("invalid %s %q", name, v))
		return 0, false
	}
	return n, true
}
