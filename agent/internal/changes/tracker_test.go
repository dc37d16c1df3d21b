package changes

import (
	"os"
	"path/filepath"
	"testing"
)

func TestTrackerRecordsEveryKindOfChange(t *testing.T) {
	root := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "old/sub"), 0o755))
	must(os.WriteFile(filepath.Join(root, "old/sub/f"), []byte("x"), 0o644))
	must(os.WriteFile(filepath.Join(root, "keep"), []byte("k"), 0o644))
	must(os.WriteFile(filepath.Join(root, "gone"), []byte("g"), 0o644))
	tr := &Tracker{}
	must(tr.Start(root))

	must(os.WriteFile(filepath.Join(root, "new\nline \xff"), []byte("hello"), 0o600))
	must(os.Chmod(filepath.Join(root, "keep"), 0o700))
	must(os.Remove(filepath.Join(root, "gone")))
	must(os.Rename(filepath.Join(root, "old"), filepath.Join(root, "moved")))
	must(os.MkdirAll(filepath.Join(root, "fresh/a/b"), 0o755))
	must(os.WriteFile(filepath.Join(root, "fresh/a/b/c"), []byte("c"), 0o644))
	must(os.Symlink("keep", filepath.Join(root, "link")))

	entries, complete, err := tr.Manifest(1 << 20)
	must(err)
	if !complete {
		t.Fatal("incomplete")
	}
	got := map[string]Entry{}
	for _, e := range entries {
		got[e.Path] = e
	}
	want := map[string]string{
		"new\nline \xff": "file", "keep": "file", "gone": "absent", "old": "absent", "moved": "dir",
		"moved/sub/f": "file", "fresh": "dir", "fresh/a/b": "dir", "fresh/a/b/c": "file", "link": "symlink",
	}
	for rel, typ := range want {
		e, ok := got[filepath.Join(root, rel)]
		if !ok || e.Type != typ {
			t.Errorf("%q: got %+v (present %v), want type %s", rel, e, ok, typ)
		}
	}
	if !got[filepath.Join(root, "old")].Subtree {
		t.Error("a directory renamed away is a subtree marker")
	}
	if e := got[filepath.Join(root, "new\nline \xff")]; string(e.Content) != "hello" || e.Mode != 0o600 || e.Sha256 != "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824" {
		t.Errorf("file entry %+v", e)
	}
	if got[filepath.Join(root, "keep")].Mode != 0o700 {
		t.Error("chmod not recorded")
	}
	if got[filepath.Join(root, "link")].Target != "keep" {
		t.Error("symlink target")
	}
	// A second manifest hashes nothing again: no content is inlined for unchanged files.
	again, _, err := tr.Manifest(1 << 20)
	must(err)
	for _, e := range again {
		if e.Content != nil {
			t.Errorf("%q re-sent", e.Path)
		}
	}
}

func TestApplyRunsOpsInOrder(t *testing.T) {
	root := t.TempDir()
	d := filepath.Join(root, "d")
	if err := Apply([]Op{{Op: "mkdir", Path: d, Mode: 0o750}, {Op: "symlink", Path: filepath.Join(d, "l"), Target: "x"}, {Op: "chmod", Path: d, Mode: 0o700}}); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(d); st.Mode().Perm() != 0o700 {
		t.Errorf("mode %v", st.Mode())
	}
	if tg, _ := os.Readlink(filepath.Join(d, "l")); tg != "x" {
		t.Errorf("target %q", tg)
	}
	if err := Apply([]Op{{Op: "remove", Path: d}}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(d); !os.IsNotExist(err) {
		t.Error("not removed")
	}
	if err := Apply([]Op{{Op: "explode", Path: d}}); err == nil {
		t.Error("unknown op accepted")
	}
}
