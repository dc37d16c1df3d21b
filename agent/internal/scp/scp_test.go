package scp

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A source (-f) and a sink (-t) of this package talk to each other through two pipes, as the
// client's and the server's scp do over ssh: the tree arrives whole, with its modes.
func TestSourceToSinkCopiesATreeWithModes(t *testing.T) {
	src := t.TempDir()
	os.MkdirAll(filepath.Join(src, "tree", "sub"), 0o750)
	os.WriteFile(filepath.Join(src, "tree", "a.txt"), []byte("alpha\n"), 0o600)
	os.WriteFile(filepath.Join(src, "tree", "sub", "b.bin"), bytes.Repeat([]byte{7}, 100_000), 0o640)
	os.Chmod(filepath.Join(src, "tree", "sub"), 0o750)
	dst := t.TempDir()

	toSink, fromSource := io.Pipe()
	toSource, fromSink := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- Run([]string{"-r", "-p", "-t", dst}, toSink, fromSink, io.Discard)
		fromSink.Close()
	}()
	var errOut strings.Builder
	code := Run([]string{"-r", "-p", "-f", filepath.Join(src, "tree")}, toSource, fromSource, &errOut)
	fromSource.Close()
	if code != 0 || <-done != 0 {
		t.Fatalf("source %d (%s), sink failed", code, errOut.String())
	}
	got, _ := os.ReadFile(filepath.Join(dst, "tree", "sub", "b.bin"))
	if !bytes.Equal(got, bytes.Repeat([]byte{7}, 100_000)) {
		t.Fatalf("b.bin differs (%d bytes)", len(got))
	}
	for path, mode := range map[string]os.FileMode{"tree/a.txt": 0o600, "tree/sub/b.bin": 0o640, "tree/sub": 0o750} {
		st, err := os.Stat(filepath.Join(dst, path))
		if err != nil || st.Mode().Perm() != mode {
			t.Fatalf("%s: %v, mode %v, want %v", path, err, st.Mode().Perm(), mode)
		}
	}
}

// A name that would leave the target directory ends the transfer; nothing is written outside.
func TestSinkRefusesNamesThatLeaveTheTarget(t *testing.T) {
	dst := t.TempDir()
	for _, name := range []string{"../escape", "a/b", "..", "."} {
		in := strings.NewReader("C0644 1 " + name + "\nx\x00")
		var out, errOut bytes.Buffer
		if code := Run([]string{"-t", dst}, in, &out, &errOut); code == 0 {
			t.Fatalf("%q accepted", name)
		}
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(dst), "escape")); err == nil {
		t.Fatal("a file was written outside the target")
	}
}
