package process

import (
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// Per-instance process limit. gVisor enforces RLIMIT_NPROC, but not for a task holding
// CAP_SYS_ADMIN or CAP_SYS_RESOURCE, which root has by default. So when a limit is set, every
// child is started through the agent binary itself (a "trampoline") which drops those two
// capabilities, sets the limit and execs the real program. Without a limit nothing changes and
// no extra exec is paid.
const (
	limitEnv = "FAAS_AGENT_NPROC"
	pathEnv  = "FAAS_AGENT_EXEC_PATH"
)

var maxProcesses atomic.Int64

// SetMaxProcesses sets the limit for children started from now on (0 = none).
func SetMaxProcesses(n int) { maxProcesses.Store(int64(n)) }

// MaxProcesses reports the current limit (0 = none).
func MaxProcesses() int { return int(maxProcesses.Load()) }

func init() {
	n := os.Getenv(limitEnv)
	if n == "" {
		return
	}
	limit, _ := strconv.ParseUint(n, 10, 64)
	path := os.Getenv(pathEnv)
	if err := limitSelf(limit); err != nil {
		fmt.Fprintf(os.Stderr, "faas-agent: applying the process limit: %v\n", err)
		os.Exit(126)
	}
	env := make([]string, 0, len(os.Environ()))
	for _, kv := range os.Environ() {
		if len(kv) > len(limitEnv) && kv[:len(limitEnv)+1] == limitEnv+"=" || len(kv) > len(pathEnv) && kv[:len(pathEnv)+1] == pathEnv+"=" {
			continue
		}
		env = append(env, kv)
	}
	err := syscall.Exec(path, os.Args, env)
	fmt.Fprintf(os.Stderr, "faas-agent: %s: %v\n", os.Args[0], err)
	os.Exit(126)
}

func limitSelf(limit uint64) error {
	for _, c := range []uintptr{unix.CAP_SYS_ADMIN, unix.CAP_SYS_RESOURCE} {
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, c, 0, 0, 0); err != nil && err != unix.EPERM {
			return fmt.Errorf("drop capability %d from the bounding set: %w", c, err)
		}
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capget: %w", err)
	}
	mask := ^uint32(1<<unix.CAP_SYS_ADMIN | 1<<unix.CAP_SYS_RESOURCE)
	data[0].Effective &= mask
	data[0].Permitted &= mask
	data[0].Inheritable &= mask
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capset: %w", err)
	}
	return unix.Setrlimit(unix.RLIMIT_NPROC, &unix.Rlimit{Cur: limit, Max: limit})
}

// viaTrampoline rewrites a spawn so the limit applies to it, when one is set.
func viaTrampoline(path string, env []string) (string, []string) {
	n := MaxProcesses()
	if n <= 0 {
		return path, env
	}
	return "/proc/self/exe", append(env, limitEnv+"="+strconv.Itoa(n), pathEnv+"="+path)
}
