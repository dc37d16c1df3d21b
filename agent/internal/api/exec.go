package api

import (
	"net/http"

	"faas/agent/internal/process"
)

func (s *Server) readSpec(w http.ResponseWriter, r *http.Request) (*process.Spec, bool) {
	var spec process.Spec
	if err := readJSON(w, r, &spec); err != nil {
		writeError(w, err)
		return nil, false
	}
	if err := spec.Validate(); err != nil {
		writeError(w, err)
		return nil, false
	}
	return &spec, true
}

func (s *Server) exec(w http.ResponseWriter, r *http.Request) {
	spec, ok := s.readSpec(w, r)
	if !ok {
		return
	}
	res, err := process.Exec(r.Context(), spec)
	if err != nil {
		writeError(w, err)
		return
	}
	writeCaptured(w, res, spec.OutputEncoding)
}

func (s *Server) execStream(w http.ResponseWriter, r *http.Request) {
	spec, ok := s.readSpec(w, r)
	if !ok {
		return
	}
	// Headers go out with the start event: a failure before that is an
	// ordinary error response.
	var out *ndjson
	err := process.Stream(r.Context(), spec, func(v any) error {
		if out == nil {
			out = newNDJSON(w)
		}
		return out.emit(v)
	})
	if err != nil && out == nil {
		writeError(w, err)
	}
}
