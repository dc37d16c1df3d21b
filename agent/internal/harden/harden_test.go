package harden

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// capBit reports whether bit n is set in the hex capability mask of `field`
// in a /proc/PID/status text.
func capBit(t *testing.T, status, field string, n uint) bool {
	t.Helper()
	for _, line := range strings.Split(status, "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				t.Fatal(err)
			}
			return mask&(1<<n) != 0
		}
	}
	t.Fatalf("no %s in status", field)
	return false
}

// TestSelf runs Self in a re-executed copy of the test binary (it changes the
// whole process) and checks what that process and its child end up with.
func TestSelf(t *testing.T) {
	if os.Getenv("FAAS_HARDEN_CHILD") == "1" {
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root (capabilities)")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperHardened$", "-test.v")
	cmd.Env = append(os.Environ(), "FAAS_HARDEN_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("hardened helper: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "HARDENED-OK") {
		t.Fatalf("helper did not finish:\n%s", out)
	}
}

func TestHelperHardened(t *testing.T) {
	if os.Getenv("FAAS_HARDEN_CHILD") != "1" {
		t.Skip("run by TestSelf")
	}
	if err := Self(); err != nil {
		t.Fatal(err)
	}
	if d, _ := unix.PrctlRetInt(unix.PR_GET_DUMPABLE, 0, 0, 0, 0); d != 0 {
		t.Fatalf("dumpable = %d", d)
	}
	// Every thread: Go may run this on any of them.
	tasks, _ := os.ReadDir("/proc/self/task")
	for _, task := range tasks {
		b, err := os.ReadFile("/proc/self/task/" + task.Name() + "/status")
		if err != nil {
			continue // thread exited meanwhile
		}
		if capBit(t, string(b), "CapBnd", unix.CAP_SYS_PTRACE) || capBit(t, string(b), "CapInh", unix.CAP_SYS_PTRACE) {
			t.Fatalf("thread %s still has CAP_SYS_PTRACE in its bounding or inheritable set", task.Name())
		}
	}
	// A root child gets P' = bounding | inheritable: no CAP_SYS_PTRACE.
	out, err := exec.Command("cat", "/proc/self/status").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"CapPrm", "CapEff", "CapBnd"} {
		if capBit(t, string(out), f, unix.CAP_SYS_PTRACE) {
			t.Fatalf("child has CAP_SYS_PTRACE in %s", f)
		}
	}
	t.Log("HARDENED-OK")
}
