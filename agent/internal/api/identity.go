package api

import (
	"errors"
	"net/http"
	"os"

	"faas/agent/internal/errs"
	"faas/agent/internal/process"

	"golang.org/x/sys/unix"
)

// Hooks for the UTS hostname, replaceable in tests so they never rename the
// host they run on.
var (
	setHostname = func(h string) error { return unix.Sethostname([]byte(h)) }
	getHostname = os.Hostname
)

func (s *Server) identity(w http.ResponseWriter, r *http.Request) {
	var req struct {
		InstanceID   string `json:"instanceId"`
		Hostname     string `json:"hostname"`
		MaxProcesses int    `json:"maxProcesses"`
	}
	if err := readJSON(w, r, &req); err != nil {
		writeError(w, err)
		return
	}
	if req.InstanceID == "" {
		writeError(w, errs.Invalid("instanceId is required"))
		return
	}
	if req.MaxProcesses < 0 {
		writeError(w, errs.Invalid("maxProcesses must be 0 (no limit) or positive"))
		return
	}
	if len(req.Hostname) > 64 {
		writeError(w, errs.Invalid("hostname longer than 64 bytes"))
		return
	}
	if req.Hostname != "" {
		// EPERM: not allowed to change the UTS name (tests, unprivileged dev
		// runs); the rest of the identity still applies.
		if err := setHostname(req.Hostname); err != nil && !errors.Is(err, unix.EPERM) {
			writeError(w, errs.New(errs.Internal, "sethostname: %v", err))
			return
		}
	}
	s.mu.Lock()
	prev := s.instanceID
	// The first identity after boot is not a restore; a different id later
	// means this memory image now runs as another instance (restore/branch).
	if prev != nil && *prev != req.InstanceID {
		s.restores++
	}
	id := req.InstanceID
	s.instanceID = &id
	restores := s.restores
	s.mu.Unlock()
	process.SetInstanceID(id)
	process.SetMaxProcesses(req.MaxProcesses)
	// Nothing else random is owned by the agent: temp names use crypto/rand,
	// which reads the (per-instance) kernel CSPRNG on every call.
	writeJSON(w, 200, map[string]any{"instanceId": id, "previousInstanceId": prev, "restores": restores})
}
