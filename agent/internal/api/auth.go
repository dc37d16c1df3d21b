package api

// The agent obeys only the engine. Every route requires the instance's key as
// `Authorization: Bearer <key>`; the only exception is the first PUT /v1/identity
// after a cold boot, which sets the key (trust on first use). A cold boot runs
// nothing but the agent, and the engine's identity call is its readiness probe,
// so the engine is the first caller; anyone who wins that race makes the
// engine's call fail with 401 and the boot is thrown away, so a stolen first
// use gains nothing. Restored agents already hold the key of the snapshot
// they were made from and are re-keyed by the engine's identity call, so the
// key of a parent never works on its clone.
//
// The key lives only in this process's memory: never in the environment,
// argv or a file, and the process is not dumpable and children cannot gain
// CAP_SYS_PTRACE (see internal/harden), so code in the sandbox cannot read it.

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"

	"faas/agent/internal/errs"
)

const (
	// MinKeyLen and MaxKeyLen bound a key: long enough to be unguessable,
	// short enough for a header; visible ASCII only.
	MinKeyLen = 32
	MaxKeyLen = 256
)

// keyDigest is what the server keeps: comparing fixed-size digests keeps the
// comparison constant-time whatever the presented key's length.
type keyDigest [sha256.Size]byte

func digest(key string) keyDigest { return sha256.Sum256([]byte(key)) }

// bearer returns the token of an `Authorization: Bearer …` header, or "".
func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// authorized reports whether r carries the current key; false when none is set.
// The caller holds s.mu.
func (s *Server) authorizedLocked(r *http.Request) bool {
	if s.key == nil {
		return false
	}
	d := digest(bearer(r))
	return subtle.ConstantTimeCompare(d[:], s.key[:]) == 1
}

func (s *Server) authorized(r *http.Request) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.authorizedLocked(r)
}

// requireKey guards every route but identity, which authenticates itself
// (it is also where the first key is set).
func (s *Server) requireKey(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && r.URL.Path == "/v1/identity" {
			next.ServeHTTP(w, r)
			return
		}
		if !s.authorized(r) {
			writeError(w, unauthorized(s.provisioned()))
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) provisioned() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.key != nil
}

// unauthorized never says whether a presented key was close, nor anything
// about the instance; only whether a key exists yet.
func unauthorized(provisioned bool) *errs.Error {
	if !provisioned {
		return errs.New(errs.Unauthorized, "faas-agent has no key yet: the engine's first PUT /v1/identity sets it")
	}
	return errs.New(errs.Unauthorized, "missing or wrong key: send the instance's key as Authorization: Bearer <key>")
}

func validKey(k string) error {
	if len(k) < MinKeyLen || len(k) > MaxKeyLen {
		return errs.Invalid("key must be %d to %d characters", MinKeyLen, MaxKeyLen)
	}
	for i := 0; i < len(k); i++ {
		if k[i] <= ' ' || k[i] > '~' {
			return errs.Invalid("key must be visible ASCII (no spaces or control bytes)")
		}
	}
	return nil
}
