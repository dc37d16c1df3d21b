package main

import (
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	// Re-executed as the agent itself by TestSIGTERM.
	if addr := os.Getenv("FAAS_AGENT_TEST_LISTEN"); addr != "" {
		if err := run([]string{"-listen", addr}); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestSIGTERM: the agent terminates the groups it started and exits 0.
func TestSIGTERM(t *testing.T) {
	addr := freeAddr(t)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "FAAS_AGENT_TEST_LISTEN="+addr)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	base := "http://" + addr
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := http.Get(base + "/v1/health")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("agent did not come up")
		}
		time.Sleep(20 * time.Millisecond)
	}
	const key = "sigterm-test-key-0123456789abcdef0123456789"
	req, _ := http.NewRequest("PUT", base+"/v1/identity", strings.NewReader(`{"instanceId":"inst_t","key":"`+key+`"}`))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("provisioning: %v %v", resp, err)
	}
	req, _ = http.NewRequest("POST", base+"/v1/processes", strings.NewReader(`{"argv":["sleep","30"]}`))
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var p struct{ Pid int }
	json.NewDecoder(resp.Body).Decode(&p)
	resp.Body.Close()
	if p.Pid <= 0 {
		t.Fatal("no pid")
	}
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("agent exit: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("agent did not exit on SIGTERM")
	}
	if _, err := os.Stat("/proc/" + strconv.Itoa(p.Pid)); err == nil {
		b, _ := os.ReadFile("/proc/" + strconv.Itoa(p.Pid) + "/stat")
		if !strings.Contains(string(b), ") Z ") {
			t.Fatalf("background process %d survived agent shutdown", p.Pid)
		}
	}
}
