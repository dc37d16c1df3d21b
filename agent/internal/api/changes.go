package api

import (
	"encoding/base64"
	"net/http"
	"strconv"
	"unicode/utf8"

	"faas/agent/internal/changes"
	"faas/agent/internal/errs"
)

// changeJSON is one manifest entry on the wire. Paths are bytes: valid UTF-8 travels as `path`,
// anything else as `pathBase64`, so no name is ever altered by a replacement character.
type changeJSON struct {
	Path       *string `json:"path,omitempty"`
	PathBase64 *string `json:"pathBase64,omitempty"`
	Subtree    bool    `json:"subtree,omitempty"`
	Type       string  `json:"type"`
	Mode       uint32  `json:"mode"`
	Size       int64   `json:"size"`
	Sha256     string  `json:"sha256,omitempty"`
	Target     *string `json:"target,omitempty"`
	TargetB64  *string `json:"targetBase64,omitempty"`
	Content    *string `json:"content,omitempty"` // base64
}

func splitName(s string) (text, b64 *string) {
	if utf8.ValidString(s) {
		return &s, nil
	}
	e := base64.StdEncoding.EncodeToString([]byte(s))
	return nil, &e
}

// changes answers GET /v1/changes?inlineMax=N: every path changed since boot with its current state.
func (s *Server) changes(w http.ResponseWriter, r *http.Request) {
	var inlineMax int64 = -1
	if v := r.URL.Query().Get("inlineMax"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 || n > 16<<20 {
			writeError(w, errs.Invalid("inlineMax must be 0..16777216"))
			return
		}
		inlineMax = n
	}
	if !changes.Default.Watching() {
		writeError(w, errs.Conflictf("this agent does not track changes (booted without it)"))
		return
	}
	entries, complete, err := changes.Default.Manifest(inlineMax)
	if err != nil {
		writeError(w, err)
		return
	}
	out := make([]changeJSON, len(entries))
	for i, e := range entries {
		c := changeJSON{Subtree: e.Subtree, Type: e.Type, Mode: e.Mode, Size: e.Size, Sha256: e.Sha256}
		c.Path, c.PathBase64 = splitName(e.Path)
		if e.Type == "symlink" {
			c.Target, c.TargetB64 = splitName(e.Target)
		}
		if e.Content != nil {
			b := base64.StdEncoding.EncodeToString(e.Content)
			c.Content = &b
		}
		out[i] = c
	}
	writeJSON(w, 200, map[string]any{"complete": complete, "entries": out})
}

// changesApply answers POST /v1/changes/apply {ops:[{op, path|pathBase64, mode, target|targetBase64}]}.
func (s *Server) changesApply(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Ops []struct {
			Op           string  `json:"op"`
			Path         *string `json:"path"`
			PathBase64   *string `json:"pathBase64"`
			Mode         uint32  `json:"mode"`
			Target       *string `json:"target"`
			TargetBase64 *string `json:"targetBase64"`
		} `json:"ops"`
	}
	if err := readJSON(w, r, &req); err != nil {
		writeError(w, err)
		return
	}
	ops := make([]changes.Op, len(req.Ops))
	for i, o := range req.Ops {
		p, err := joinName(o.Path, o.PathBase64)
		if err != nil {
			writeError(w, errs.Invalid("op %d: %v", i, err))
			return
		}
		t, _ := joinName(o.Target, o.TargetBase64)
		if o.Mode > 0o7777 {
			writeError(w, errs.Invalid("op %d: invalid mode %d", i, o.Mode))
			return
		}
		ops[i] = changes.Op{Op: o.Op, Path: p, Mode: o.Mode, Target: t}
	}
	if err := changes.Apply(ops); err != nil {
		writeError(w, errs.Conflictf("%v", err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func joinName(text, b64 *string) (string, error) {
	if b64 != nil {
		b, err := base64.StdEncoding.DecodeString(*b64)
		return string(b), err
	}
	if text != nil {
		return *text, nil
	}
	return "", errs.Invalid("path is required")
}
