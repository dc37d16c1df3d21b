package reaper

import (
	"sync"
	"syscall"
	"testing"
	"time"
)

func spawn(t *testing.T, argv ...string) (int, <-chan Status) {
	t.Helper()
	pid, ch, err := Default().Spawn(func() (int, error) {
		return syscall.ForkExec(argv[0], argv, &syscall.ProcAttr{Files: []uintptr{0, 1, 2}})
	})
	if err != nil {
		t.Fatal(err)
	}
	return pid, ch
}

func TestEveryChildGetsItsStatus(t *testing.T) {
	// Many short-lived children concurrently: statuses reaped before Spawn
	// registers must be buffered, none may be lost or crossed.
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code := []string{"/bin/true", "/bin/false"}[i%2]
			pid, ch := spawn(t, code)
			select {
			case st := <-ch:
				if st.Pid != pid || st.ExitCode() != i%2 {
					t.Errorf("pid %d got %+v (exit %d)", pid, st, st.ExitCode())
				}
			case <-time.After(10 * time.Second):
				t.Errorf("no status for %d", pid)
			}
		}()
	}
	wg.Wait()
}

func TestSignalledStatus(t *testing.T) {
	pid, ch := spawn(t, "/bin/sleep", "30")
	syscall.Kill(pid, syscall.SIGKILL)
	st := <-ch
	if st.Signal() != syscall.SIGKILL || st.ExitCode() != 137 {
		t.Fatalf("%+v", st)
	}
}

func TestOrphansAreReaped(t *testing.T) {
	before := Default().Orphans()
	_, ch := spawn(t, "/bin/sh", "-c", "sleep 0.1 & exit 0")
	<-ch
	deadline := time.Now().Add(5 * time.Second)
	for Default().Orphans() == before {
		if time.Now().After(deadline) {
			t.Fatal("orphaned grandchild was not reaped")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
