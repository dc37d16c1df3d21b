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

// maxIdentityBody bounds the one body the agent reads before it knows who is
// calling (the first identity sets the key).
const maxIdentityBody = 64 << 10

// identity sets who this agent is, its process limit and its key. Without a
// key yet it is the trust-on-first-use provisioning call and must carry one;
// afterwards it requires the current key, and a new `key` in the body
// replaces it (the engine re-keys every restored sandbox this way, in the
// same call that tells it its new instance id).
func (s *Server) identity(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	keyed, ok := s.key != nil, s.authorizedLocked(r)
	s.mu.Unlock()
	// A keyed agent reads nothing from a caller without the key.
	if keyed && !ok {
		writeError(w, unauthorized(true))
		return
	}
	var req struct {
		InstanceID   string `json:"instanceId"`
		Hostname     string `json:"hostname"`
		MaxProcesses int    `json:"maxProcesses"`
		Key          string `json:"key"`
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxIdentityBody)
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
	if req.Key != "" {
		if err := validKey(req.Key); err != nil {
			writeError(w, err)
			return
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	// Checked again under the lock: two first calls racing cannot both provision.
	switch {
	case s.key == nil && req.Key == "":
		writeError(w, errs.Invalid("key is required: the first identity call sets the agent's key"))
		return
	case s.key != nil && !s.authorizedLocked(r):
		writeError(w, unauthorized(true))
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
	if req.Key != "" {
		d := digest(req.Key)
		s.key = &d
	}
	prev := s.instanceID
	// The first identity after boot is not a restore; a different id later
	// means this memory image now runs as another instance (restore/branch).
	if prev != nil && *prev != req.InstanceID {
		s.restores++
	}
	id := req.InstanceID
	s.instanceID = &id
	restores := s.restores
	process.SetInstanceID(id)
	process.SetMaxProcesses(req.MaxProcesses)
	// Nothing else random is owned by the agent: temp names use crypto/rand,
	// which reads the (per-instance) kernel CSPRNG on every call.
	// `keyed` tells the engine this agent enforces keys (an older agent in an
	// old snapshot would ignore them).
	writeJSON(w, 200, map[string]any{"instanceId": id, "previousInstanceId": prev, "restores": restores, "keyed": true})
}
