package api

import (
	"io"
	"net/http"
	"strconv"

	"faas/agent/internal/errs"
	"faas/agent/internal/files"
)

func queryPath(w http.ResponseWriter, r *http.Request) (string, bool) {
	p, err := files.CleanPath(r.URL.Query().Get("path"))
	if err != nil {
		writeError(w, err)
		return "", false
	}
	return p, true
}

func (s *Server) fileStat(w http.ResponseWriter, r *http.Request) {
	if p, ok := queryPath(w, r); ok {
		fi, err := files.Stat(p)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, 200, fi)
	}
}

func (s *Server) fileList(w http.ResponseWriter, r *http.Request) {
	if p, ok := queryPath(w, r); ok {
		ents, err := files.List(p)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, 200, map[string]any{"entries": ents})
	}
}

func (s *Server) fileRead(w http.ResponseWriter, r *http.Request) {
	p, ok := queryPath(w, r)
	if !ok {
		return
	}
	f, size, err := files.OpenRead(p)
	if err != nil {
		writeError(w, err)
		return
	}
	defer f.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	// Size 0 may be a procfs-style file whose length is unknown until read:
	// stream it chunked instead of promising a length.
	if size > 0 {
		w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
		w.WriteHeader(200)
		// io.CopyN lets net/http use sendfile: no user-space buffering at all.
		if n, err := io.CopyN(w, f, size); err != nil || n != size {
			panic(http.ErrAbortHandler) // never let a short body look complete
		}
		return
	}
	w.WriteHeader(200)
	if _, err := copyTo(w, f, -1); err != nil {
		panic(http.ErrAbortHandler)
	}
}

func (s *Server) fileWrite(w http.ResponseWriter, r *http.Request) {
	p, ok := queryPath(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	var mode *uint32
	if v := q.Get("mode"); v != "" {
		m, err := files.ParseMode(v)
		if err != nil {
			writeError(w, err)
			return
		}
		mode = &m
	}
	parents, _ := strconv.ParseBool(q.Get("parents"))
	fi, err := files.Write(p, mode, parents, r.Body)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, 200, fi)
}

func (s *Server) fileMkdir(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Path    string  `json:"path"`
		Parents bool    `json:"parents"`
		Mode    *uint32 `json:"mode"`
	}
	if err := readJSON(w, r, &req); err != nil {
		writeError(w, err)
		return
	}
	p, err := files.CleanPath(req.Path)
	if err != nil {
		writeError(w, err)
		return
	}
	mode := uint32(0o755)
	if req.Mode != nil {
		if *req.Mode > 0o7777 {
			writeError(w, errs.Invalid("invalid mode %d", *req.Mode))
			return
		}
		mode = *req.Mode
	}
	fi, err := files.Mkdir(p, req.Parents, mode)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, 200, fi)
}

func (s *Server) fileRemove(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Path      string `json:"path"`
		Recursive bool   `json:"recursive"`
	}
	if err := readJSON(w, r, &req); err != nil {
		writeError(w, err)
		return
	}
	p, err := files.CleanPath(req.Path)
	if err == nil {
		err = files.Remove(p, req.Recursive)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) fileRename(w http.ResponseWriter, r *http.Request) {
	var req struct {
		From string `json:"from"`
		To   string `json:"to"`
	}
	if err := readJSON(w, r, &req); err != nil {
		writeError(w, err)
		return
	}
	from, err := files.CleanPath(req.From)
	if err != nil {
		writeError(w, err)
		return
	}
	to, err := files.CleanPath(req.To)
	if err != nil {
		writeError(w, err)
		return
	}
	fi, err := files.Rename(from, to)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, 200, fi)
}

func (s *Server) tarUpload(w http.ResponseWriter, r *http.Request) {
	p, ok := queryPath(w, r)
	if !ok {
		return
	}
	res, err := files.Extract(p, r.Body)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, 200, res)
}

func (s *Server) tarDownload(w http.ResponseWriter, r *http.Request) {
	p, ok := queryPath(w, r)
	if !ok {
		return
	}
	if _, err := files.Stat(p); err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/x-tar")
	w.WriteHeader(200)
	if err := files.Archive(p, w); err != nil {
		// Headers are gone; abort the connection so the client sees a
		// broken transfer rather than a truncated-but-terminated archive.
		panic(http.ErrAbortHandler)
	}
}
