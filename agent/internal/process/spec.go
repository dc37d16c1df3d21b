// Package process starts and supervises children for exec, stream,
// background processes and the PTY. All children are forked with
// syscall.ForkExec and reaped by the reaper package (never exec.Cmd.Wait).
package process

import (
	"bytes"
	"encoding/json"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"

	"faas/agent/internal/errs"

	"golang.org/x/sys/unix"
)

// Spec is the shared process spec of exec, stream and background starts.
type Spec struct {
	Argv      []string          `json:"argv"`
	Command   *string           `json:"command"`
	Cwd       string            `json:"cwd"`
	Env       map[string]string `json:"env"`
	User      UserRef           `json:"user"`
	Stdin     *string           `json:"stdin"`
	TimeoutMs int64             `json:"timeoutMs"`
	Tag       *string           `json:"tag"` // background only

	// One-shot exec only: bytes kept of each of stdout/stderr (default
	// DefaultCapture, at most MaxCapture), and how they are written in the
	// result ("text" JSON strings, or "base64" of the raw bytes, which the
	// engine asks for because control bytes cost 6 bytes each as JSON text).
	MaxOutputBytes *int64 `json:"maxOutputBytes"`
	OutputEncoding string `json:"outputEncoding"`
}

// Cap is the per-stream output cap of a one-shot exec.
func (s *Spec) Cap() int {
	if s.MaxOutputBytes == nil {
		return DefaultCapture
	}
	return int(*s.MaxOutputBytes)
}

// UserRef accepts a user name or a numeric uid, as a JSON string or number.
type UserRef string

func (u *UserRef) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		*u = ""
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*u = UserRef(s)
		return nil
	}
	var n uint32
	if err := json.Unmarshal(b, &n); err != nil {
		return errs.Invalid("user must be a name or a numeric uid")
	}
	*u = UserRef(strconv.FormatUint(uint64(n), 10))
	return nil
}

// Validate checks the parts of a spec that are request errors rather than
// "program cannot be started" errors (those become exit code 127/126).
func (s *Spec) Validate() error {
	if (s.Argv == nil) == (s.Command == nil) {
		return errs.Invalid("exactly one of argv or command is required")
	}
	// An empty program name is a program that cannot be started (127), like any unknown name.
	if s.Argv != nil && len(s.Argv) == 0 {
		return errs.Invalid("argv must not be empty")
	}
	if s.Cwd != "" && !strings.HasPrefix(s.Cwd, "/") {
		return errs.Invalid("cwd must be an absolute path")
	}
	if s.TimeoutMs < 0 {
		return errs.Invalid("timeoutMs must not be negative")
	}
	if m := s.MaxOutputBytes; m != nil && (*m < 0 || *m > MaxCapture) {
		return errs.Invalid("maxOutputBytes must be between 0 and %d", MaxCapture)
	}
	if e := s.OutputEncoding; e != "" && e != "text" && e != "base64" {
		return errs.Invalid("outputEncoding must be text or base64")
	}
	for k := range s.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return errs.Invalid("invalid environment variable name %q", k)
		}
	}
	return nil
}

// FullArgv is what actually gets executed.
func (s *Spec) FullArgv() []string {
	if s.Command != nil {
		return []string{"/bin/sh", "-c", *s.Command}
	}
	return s.Argv
}

var instanceID atomic.Pointer[string]

// SetInstanceID makes later children see FAAS_INSTANCE_ID=id.
func SetInstanceID(id string) { instanceID.Store(&id) }

const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// buildEnv: the agent's environment minus FAAS_AGENT_*, plus identity and
// the target user's HOME/USER/LOGNAME, overlaid with the spec's env.
func buildEnv(overlay map[string]string, u *userInfo, explicitUser bool) []string {
	m := map[string]string{}
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "FAAS_AGENT_") {
			continue
		}
		m[k] = v
	}
	if id := instanceID.Load(); id != nil {
		m["FAAS_INSTANCE_ID"] = *id
	}
	if u != nil {
		setUser := func(k, v string) {
			if _, ok := m[k]; explicitUser || !ok {
				m[k] = v
			}
		}
		if u.home != "" {
			setUser("HOME", u.home)
		}
		if u.name != "" {
			setUser("USER", u.name)
			setUser("LOGNAME", u.name)
		}
	}
	if _, ok := m["PATH"]; !ok {
		m["PATH"] = defaultPath
	}
	for k, v := range overlay {
		m[k] = v
	}
	env := make([]string, 0, len(m))
	for k, v := range m {
		env = append(env, k+"="+v)
	}
	sort.Strings(env)
	return env
}

func envLookup(env []string, key string) string {
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v
		}
	}
	return ""
}

// ParseSignal accepts "SIGTERM", "TERM", "term", "15" or a JSON number.
func ParseSignal(raw json.RawMessage) (syscall.Signal, error) {
	raw = bytes.TrimSpace(raw)
	var s string
	if len(raw) > 0 && raw[0] == '"' {
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, errs.Invalid("invalid signal")
		}
	} else {
		s = string(raw)
	}
	return SignalFromString(s)
}

func SignalFromString(s string) (syscall.Signal, error) {
	s = strings.TrimSpace(s)
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, errs.Invalid("invalid signal number %d", n)
		}
		return syscall.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, errs.Invalid("unknown signal %q", s)
}

// SignalName returns e.g. "SIGKILL", or nil for 0 (JSON null).
func SignalName(sig syscall.Signal) *string {
	if sig == 0 {
		return nil
	}
	n := unix.SignalName(sig)
	if n == "" {
		n = "SIG" + strconv.Itoa(int(sig))
	}
	return &n
}
