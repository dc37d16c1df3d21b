package api

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"faas/agent/internal/files"
)

func q(p string) string { return url.QueryEscape(p) }

func TestFilesRoutes(t *testing.T) {
	ts := newServer(t)
	dir := t.TempDir()
	f := filepath.Join(dir, "sub", "a.txt")

	wantError(t, ts, "PUT", "/v1/files/write?path="+q(f), "x", 404, "not_found") // no parent, no parents=true
	fi := doJSON[files.FileInfo](t, ts, "PUT", "/v1/files/write?parents=true&mode=0600&path="+q(f), "hello", 200)
	if fi.Type != "file" || fi.Size != 5 || fi.Mode != 0o600 || fi.Name != "a.txt" || fi.Path != f || fi.SymlinkTarget != nil {
		t.Fatalf("%+v", fi)
	}
	if _, err := time.Parse(time.RFC3339, fi.Mtime); err != nil {
		t.Fatal(err)
	}
	code, body := do(t, ts, "GET", "/v1/files/read?path="+q(f), nil)
	if code != 200 || string(body) != "hello" {
		t.Fatalf("read %d %q", code, body)
	}
	// overwrite keeps the mode when none is given
	fi = doJSON[files.FileInfo](t, ts, "PUT", "/v1/files/write?path="+q(f), "bye", 200)
	if fi.Mode != 0o600 || fi.Size != 3 {
		t.Fatalf("%+v", fi)
	}
	os.Symlink("a.txt", filepath.Join(dir, "sub", "link"))
	st := doJSON[files.FileInfo](t, ts, "GET", "/v1/files/stat?path="+q(filepath.Join(dir, "sub", "link")), nil, 200)
	if st.Type != "symlink" || st.SymlinkTarget == nil || *st.SymlinkTarget != "a.txt" {
		t.Fatalf("%+v", st)
	}
	md := doJSON[files.FileInfo](t, ts, "POST", "/v1/files/mkdir", spec{"path": filepath.Join(dir, "sub", "d1", "d2"), "parents": true, "mode": 0o750}, 200)
	if md.Type != "directory" || md.Mode != 0o750 {
		t.Fatalf("%+v", md)
	}
	wantError(t, ts, "POST", "/v1/files/mkdir", spec{"path": filepath.Join(dir, "sub", "d1")}, 409, "conflict")
	wantError(t, ts, "POST", "/v1/files/mkdir", spec{"path": filepath.Join(dir, "x", "y")}, 404, "not_found")

	ls := doJSON[struct{ Entries []files.FileInfo }](t, ts, "GET", "/v1/files/list?path="+q(filepath.Join(dir, "sub")), nil, 200)
	var names []string
	for _, e := range ls.Entries {
		names = append(names, e.Name+":"+e.Type)
	}
	if strings.Join(names, ",") != "a.txt:file,d1:directory,link:symlink" {
		t.Fatalf("list %v", names)
	}

	rn := doJSON[files.FileInfo](t, ts, "POST", "/v1/files/rename", spec{"from": f, "to": filepath.Join(dir, "b.txt")}, 200)
	if rn.Path != filepath.Join(dir, "b.txt") || rn.Size != 3 {
		t.Fatalf("%+v", rn)
	}
	wantError(t, ts, "POST", "/v1/files/rename", spec{"from": f, "to": filepath.Join(dir, "c")}, 404, "not_found")
	wantError(t, ts, "POST", "/v1/files/remove", spec{"path": filepath.Join(dir, "sub")}, 409, "conflict")
	if c, b := do(t, ts, "POST", "/v1/files/remove", spec{"path": filepath.Join(dir, "sub"), "recursive": true}); c != 204 {
		t.Fatalf("remove %d %s", c, b)
	}
	wantError(t, ts, "GET", "/v1/files/stat?path="+q(filepath.Join(dir, "sub")), nil, 404, "not_found")
	wantError(t, ts, "POST", "/v1/files/remove", spec{"path": filepath.Join(dir, "nope")}, 404, "not_found")
	wantError(t, ts, "GET", "/v1/files/stat?path=relative/path", nil, 400, "invalid_request")
	wantError(t, ts, "GET", "/v1/files/read?path="+q(dir), nil, 400, "invalid_request")
	wantError(t, ts, "PUT", "/v1/files/write?path="+q(dir), "x", 400, "invalid_request")
	wantError(t, ts, "PUT", "/v1/files/write?mode=999&path="+q(filepath.Join(dir, "m")), "x", 400, "invalid_request")
}

// failingReader yields some bytes, then fails, which makes the HTTP client
// abort the request mid-body (as a dropped connection would).
type failingReader struct{ n int }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		time.Sleep(50 * time.Millisecond)
		return 0, errors.New("boom")
	}
	n := min(len(p), r.n)
	for i := range p[:n] {
		p[i] = 'x'
	}
	r.n -= n
	return n, nil
}

func TestAtomicWriteDisconnect(t *testing.T) {
	ts := newServer(t)
	dir := t.TempDir()
	target := filepath.Join(dir, "big.bin")
	req, _ := http.NewRequest("PUT", ts.URL+"/v1/files/write?path="+q(target), &failingReader{n: 1 << 20})
	req.ContentLength = 10 << 20
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("request unexpectedly succeeded: %d", resp.StatusCode)
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		ents, _ := os.ReadDir(dir)
		if len(ents) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("left behind: %v", ents)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestTarRoundTrip(t *testing.T) {
	ts := newServer(t)
	src := filepath.Join(t.TempDir(), "proj")
	os.MkdirAll(filepath.Join(src, "bin"), 0o755)
	os.WriteFile(filepath.Join(src, "bin", "run.sh"), []byte("#!/bin/sh\necho hi\n"), 0o755)
	os.WriteFile(filepath.Join(src, "secret"), []byte("s3cret"), 0o600)
	os.Symlink("bin/run.sh", filepath.Join(src, "run"))
	os.Link(filepath.Join(src, "secret"), filepath.Join(src, "secret-link"))
	os.Chmod(filepath.Join(src, "bin"), 0o711)
	old := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	os.Chtimes(filepath.Join(src, "secret"), old, old)

	code, archive := do(t, ts, "GET", "/v1/files/tar?path="+q(src), nil)
	if code != 200 {
		t.Fatalf("download %d %s", code, archive)
	}
	dest := filepath.Join(t.TempDir(), "out")
	res := doJSON[files.TarResult](t, ts, "PUT", "/v1/files/tar?path="+q(dest), archive, 200)
	if res.Files != 4 || res.Bytes != int64(len("#!/bin/sh\necho hi\n")+len("s3cret")) {
		t.Fatalf("result %+v", res)
	}
	got := filepath.Join(dest, "proj")
	check := func(rel string, mode os.FileMode) os.FileInfo {
		fi, err := os.Lstat(filepath.Join(got, rel))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != mode {
			t.Fatalf("%s: mode %v, want %v", rel, fi.Mode(), mode)
		}
		return fi
	}
	check("bin", os.ModeDir|0o711)
	check("bin/run.sh", 0o755)
	if fi := check("secret", 0o600); !fi.ModTime().Equal(old) {
		t.Fatalf("mtime %v", fi.ModTime())
	}
	check("run", os.ModeSymlink|0o777)
	if l, _ := os.Readlink(filepath.Join(got, "run")); l != "bin/run.sh" {
		t.Fatalf("symlink %q", l)
	}
	a, _ := os.Stat(filepath.Join(got, "secret"))
	b, _ := os.Stat(filepath.Join(got, "secret-link"))
	if !os.SameFile(a, b) {
		t.Fatal("hard link not preserved")
	}
	// A single file downloads as basename(SRC).
	_, one := do(t, ts, "GET", "/v1/files/tar?path="+q(filepath.Join(src, "secret")), nil)
	hdr, err := tar.NewReader(bytes.NewReader(one)).Next()
	if err != nil || hdr.Name != "secret" {
		t.Fatalf("%v %v", hdr, err)
	}
	wantError(t, ts, "GET", "/v1/files/tar?path="+q(filepath.Join(src, "nope")), nil, 404, "not_found")
}

type entry struct {
	name, link string
	typ        byte
	body       string
}

func mkTar(t *testing.T, ents ...entry) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: 0o644, Size: int64(len(e.body)), ModTime: time.Now()}
		if e.typ != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tw, e.body)
	}
	tw.Close()
	return buf.Bytes()
}

func TestTarEscapesRefused(t *testing.T) {
	ts := newServer(t)
	base := t.TempDir()
	outside := filepath.Join(base, "outside")
	os.Mkdir(outside, 0o755)
	os.WriteFile(filepath.Join(outside, "secret"), []byte("x"), 0o600)
	cases := map[string][]byte{
		"dotdot":   mkTar(t, entry{name: "../outside/x", typ: tar.TypeReg, body: "pwned"}),
		"nested":   mkTar(t, entry{name: "a/../../outside/x", typ: tar.TypeReg, body: "pwned"}),
		"absolute": mkTar(t, entry{name: outside + "/x", typ: tar.TypeReg, body: "pwned"}),
		"symlink then through": mkTar(t,
			entry{name: "evil", link: outside, typ: tar.TypeSymlink},
			entry{name: "evil/x", typ: tar.TypeReg, body: "pwned"}),
		"symlink dir entry": mkTar(t,
			entry{name: "evil", link: outside, typ: tar.TypeSymlink},
			entry{name: "evil/sub/", typ: tar.TypeDir}),
		"relative symlink through": mkTar(t,
			entry{name: "evil", link: "../outside", typ: tar.TypeSymlink},
			entry{name: "evil/x", typ: tar.TypeReg, body: "pwned"}),
		"hardlink outside":  mkTar(t, entry{name: "hl", link: "../outside/secret", typ: tar.TypeLink}),
		"hardlink absolute": mkTar(t, entry{name: "hl", link: outside + "/secret", typ: tar.TypeLink}),
		"hardlink via symlink": mkTar(t,
			entry{name: "evil", link: outside, typ: tar.TypeSymlink},
			entry{name: "hl", link: "evil/secret", typ: tar.TypeLink}),
	}
	for name, archive := range cases {
		t.Run(name, func(t *testing.T) {
			dest := filepath.Join(base, "dest-"+strings.ReplaceAll(name, " ", "-"))
			wantError(t, ts, "PUT", "/v1/files/tar?path="+q(dest), archive, 400, "invalid_request")
			ents, _ := os.ReadDir(outside)
			if len(ents) != 1 || ents[0].Name() != "secret" {
				t.Fatalf("something was written outside DEST: %v", ents)
			}
			if fi, _ := os.Stat(filepath.Join(outside, "secret")); fi.Sys().(*syscall.Stat_t).Nlink != 1 {
				t.Fatal("hard link to outside file created")
			}
		})
	}
	// A pre-existing symlink inside DEST is just as untrusted.
	dest := filepath.Join(base, "dest-pre")
	os.Mkdir(dest, 0o755)
	os.Symlink(outside, filepath.Join(dest, "link"))
	wantError(t, ts, "PUT", "/v1/files/tar?path="+q(dest), mkTar(t, entry{name: "link/x", typ: tar.TypeReg, body: "p"}), 400, "invalid_request")
	if _, err := os.Stat(filepath.Join(outside, "x")); err == nil {
		t.Fatal("wrote through pre-existing symlink")
	}
	// A regular hard link inside DEST works.
	res := doJSON[files.TarResult](t, ts, "PUT", "/v1/files/tar?path="+q(filepath.Join(base, "ok")),
		mkTar(t, entry{name: "a", typ: tar.TypeReg, body: "1"}, entry{name: "d/b", link: "a", typ: tar.TypeLink}), 200)
	if res.Files != 2 {
		t.Fatalf("%+v", res)
	}
}
