// Package harden keeps the agent's memory (and with it the instance's key)
// out of reach of everything else in the sandbox, root included.
//
// gVisor decides every cross-process memory access (/proc/PID/mem, environ,
// fd, maps, process_vm_readv/writev, ptrace attach, pidfd_getfd) with one
// check, kernel.Task.CanTrace (pkg/sentry/kernel/ptrace.go, mirroring Linux's
// __ptrace_may_access + commoncap): the caller needs CAP_SYS_PTRACE in the
// target's user namespace, or else the same uids/gids AND a target that is
// dumpable AND a permitted set that is a superset of the target's. So:
//   - PR_SET_DUMPABLE 0 on the agent: without CAP_SYS_PTRACE no one passes;
//   - CAP_SYS_PTRACE out of the bounding and inheritable sets of every agent
//     thread: at execve gVisor gives root P' = bounding | inheritable
//     (auth.handlePrivilegedRoot), so no child, root or setuid, ever holds it;
//   - the agent keeps CAP_SYS_PTRACE in its own permitted set, which children
//     lack, so the superset rule refuses them a second time.
package harden

import (
	"fmt"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Self applies the above to the calling process (all of its threads:
// capabilities are per thread, and Go forks children from any of them).
func Self() error {
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_SET_DUMPABLE, 0): %w", err)
	}
	if _, _, e := syscall.AllThreadsSyscall(syscall.SYS_PRCTL, unix.PR_CAPBSET_DROP, unix.CAP_SYS_PTRACE, 0); e != 0 {
		return fmt.Errorf("prctl(PR_CAPBSET_DROP, CAP_SYS_PTRACE): %w", e)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capget: %w", err)
	}
	data[0].Inheritable &^= 1 << unix.CAP_SYS_PTRACE
	data[0].Effective &^= 1 << unix.CAP_SYS_PTRACE
	if _, _, e := syscall.AllThreadsSyscall(syscall.SYS_CAPSET, uintptr(unsafe.Pointer(&hdr)), uintptr(unsafe.Pointer(&data[0])), 0); e != 0 {
		return fmt.Errorf("capset: %w", e)
	}
	return nil
}
