package files

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"testing"

	"faas/agent/internal/errs"
)

func tarOf(t *testing.T, hdrs ...*tar.Header) *bytes.Buffer {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range hdrs {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			tw.Write(bytes.Repeat([]byte("x"), int(h.Size)))
		}
	}
	tw.Close()
	return &buf
}

// The component-wise walk is what runs where openat2 is missing (gVisor);
// exercise it explicitly, then the openat2 path.
func TestExtractRefusesSymlinkTraversal(t *testing.T) {
	for _, fallback := range []bool{true, false} {
		noOpenat2.Store(fallback)
		base := t.TempDir()
		outside := filepath.Join(base, "outside")
		os.Mkdir(outside, 0o755)
		dest := filepath.Join(base, "dest")
		_, err := Extract(dest, tarOf(t,
			&tar.Header{Name: "ok/file", Typeflag: tar.TypeReg, Mode: 0o640, Size: 3},
			&tar.Header{Name: "evil", Typeflag: tar.TypeSymlink, Linkname: outside},
			&tar.Header{Name: "evil/deeper/x", Typeflag: tar.TypeReg, Mode: 0o644, Size: 1},
		))
		var e *errs.Error
		if err == nil || !errorsAs(err, &e) || e.Code != errs.InvalidRequest {
			t.Fatalf("fallback=%v: got %v", fallback, err)
		}
		if ents, _ := os.ReadDir(outside); len(ents) != 0 {
			t.Fatalf("fallback=%v: wrote outside: %v", fallback, ents)
		}
		if fi, err := os.Stat(filepath.Join(dest, "ok", "file")); err != nil || fi.Mode().Perm() != 0o640 {
			t.Fatalf("fallback=%v: earlier entry: %v %v", fallback, fi, err)
		}
	}
	noOpenat2.Store(false)
}

func TestSplitRel(t *testing.T) {
	for _, bad := range []string{"/etc/passwd", "../x", "a/../../x", "a/..", "x\x00y"} {
		if _, err := splitRel(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if p, err := splitRel("./a//b/./c/"); err != nil || len(p) != 3 {
		t.Errorf("got %v %v", p, err)
	}
}

func errorsAs(err error, target **errs.Error) bool {
	e, ok := err.(*errs.Error)
	if ok {
		*target = e
	}
	return ok
}

// The API documents gzip uploads (detected from the magic bytes); they were
// read as plain tar and always refused.
func TestExtractGzip(t *testing.T) {
	plain := tarOf(t, &tar.Header{Name: "d/f", Typeflag: tar.TypeReg, Mode: 0o644, Size: 5})
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(plain.Bytes())
	zw.Close()
	dest := t.TempDir()
	res, err := Extract(dest, &gz)
	if err != nil || res.Files != 1 || res.Bytes != 5 {
		t.Fatalf("gzip upload: %+v %v", res, err)
	}
	if b, err := os.ReadFile(filepath.Join(dest, "d", "f")); err != nil || string(b) != "xxxxx" {
		t.Fatalf("content %q %v", b, err)
	}
	// A corrupt gzip stream is invalid input, not a server error.
	_, err = Extract(t.TempDir(), bytes.NewReader([]byte{0x1f, 0x8b, 0, 0}))
	var e *errs.Error
	if err == nil || !errorsAs(err, &e) || e.Code != errs.InvalidRequest {
		t.Fatalf("corrupt gzip: %v", err)
	}
}
