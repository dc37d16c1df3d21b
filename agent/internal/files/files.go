// Package files implements the filesystem routes. Every transfer streams
// through fixed-size buffers so memory stays bounded whatever the size.
package files

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"faas/agent/internal/errs"
)

// TimeFormat matches the process API: RFC 3339 with milliseconds, UTC.
const TimeFormat = "2006-01-02T15:04:05.000Z07:00"

// copyBufSize is large because every read and write is a syscall through gVisor's sentry: a 1 GiB
// upload cost the sandbox ~4.5 CPU s with 64 KiB copies and ~1.7 s with 1 MiB ones (docs/benchmarks.md
// "SSH gateway"). Pooled, so memory follows concurrent transfers (limited by the engine), not bytes.
const copyBufSize = 1 << 20

var bufPool = sync.Pool{New: func() any { b := make([]byte, copyBufSize); return &b }}

// copyBuffered copies src to dst through a pooled buffer, filling it before each write: a chunked
// request body hands out at most one chunk (≤ 64 KiB from the engine) per read, and writing each
// alone would cost a syscall (and an inotify event for the change tracker) per chunk. It never uses
// ReaderFrom/WriterTo, so the fixed buffer is really what bounds memory.
func copyBuffered(dst io.Writer, src io.Reader) (int64, error) {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	var total int64
	for {
		// Not io.ReadFull: it reports a short read before EOF as io.ErrUnexpectedEOF, the same error
		// a truncated request body gives, and that one must fail the write.
		n := 0
		var rerr error
		for n < len(buf) && rerr == nil {
			var m int
			m, rerr = src.Read(buf[n:])
			n += m
		}
		if n > 0 {
			w, werr := dst.Write(buf[:n])
			total += int64(w)
			if werr != nil {
				return total, werr
			}
			if w != n {
				return total, io.ErrShortWrite
			}
		}
		if rerr == io.EOF {
			return total, nil
		}
		if rerr != nil {
			return total, rerr
		}
	}
}

type FileInfo struct {
	Name          string  `json:"name"`
	Path          string  `json:"path"`
	Type          string  `json:"type"`
	Size          int64   `json:"size"`
	Mode          uint32  `json:"mode"`
	Mtime         string  `json:"mtime"`
	SymlinkTarget *string `json:"symlinkTarget"`
}

// CleanPath enforces "all paths absolute" and normalises the path.
func CleanPath(p string) (string, error) {
	if p == "" {
		return "", errs.Invalid("path is required")
	}
	if !strings.HasPrefix(p, "/") || strings.ContainsRune(p, 0) {
		return "", errs.Invalid("path must be absolute: %q", p)
	}
	return filepath.Clean(p), nil
}

func permBits(fi fs.FileInfo) uint32 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Mode & 0o7777
	}
	return uint32(fi.Mode().Perm())
}

func infoFor(path string, fi fs.FileInfo) *FileInfo {
	out := &FileInfo{
		Name: filepath.Base(path), Path: path, Size: fi.Size(), Mode: permBits(fi),
		Mtime: fi.ModTime().UTC().Format(TimeFormat),
	}
	switch m := fi.Mode(); {
	case m.IsRegular():
		out.Type = "file"
	case m.IsDir():
		out.Type = "directory"
	case m&fs.ModeSymlink != 0:
		out.Type = "symlink"
		if t, err := os.Readlink(path); err == nil {
			out.SymlinkTarget = &t
		}
	default:
		out.Type = "other"
	}
	return out
}

func Stat(path string) (*FileInfo, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, err
	}
	return infoFor(path, fi), nil
}

func List(path string) ([]*FileInfo, error) {
	ents, err := os.ReadDir(path) // sorted by name
	if err != nil {
		return nil, err
	}
	out := make([]*FileInfo, 0, len(ents))
	for _, e := range ents {
		p := filepath.Join(path, e.Name())
		fi, err := e.Info()
		if err != nil {
			continue // vanished between readdir and lstat
		}
		out = append(out, infoFor(p, fi))
	}
	return out, nil
}

// OpenRead opens a regular file for streaming.
func OpenRead(path string) (*os.File, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, 0, errs.Invalid("%s is not a regular file", path)
	}
	return f, fi.Size(), nil
}

// ParseMode accepts "0644", "644", "0o644" (octal, as in chmod).
func ParseMode(s string) (uint32, error) {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "0o"), "0O")
	n, err := strconv.ParseUint(s, 8, 32)
	if err != nil || n > 0o7777 {
		return 0, errs.Invalid("invalid mode %q (octal permission bits expected)", s)
	}
	return uint32(n), nil
}

// Write streams body into a temp file next to path and renames it into
// place only once the body is complete, so a disconnect leaves nothing under
// the final name. mode nil keeps an existing file's mode (else 0644).
func Write(path string, mode *uint32, parents bool, body io.Reader) (*FileInfo, error) {
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		// Like `cat > link`: replace the file the link points to, not the link.
		if real, err := filepath.EvalSymlinks(path); err == nil {
			path = real
		}
	}
	dir := filepath.Dir(path)
	if parents {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
	}
	perm := uint32(0o644)
	uid, gid := -1, -1
	if fi, err := os.Stat(path); err == nil {
		if fi.IsDir() {
			return nil, errs.Invalid("%s is a directory", path)
		}
		perm = permBits(fi)
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			uid, gid = int(st.Uid), int(st.Gid) // keep ownership when replacing
		}
	}
	if mode != nil {
		perm = *mode
	}
	tmp, err := os.CreateTemp(dir, tempPattern(filepath.Base(path)))
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := copyBuffered(tmp, body); err != nil {
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	if uid >= 0 {
		tmp.Chown(uid, gid)
	}
	if err := tmp.Chmod(fs.FileMode(perm) | extraModeBits(perm)); err != nil {
		return nil, err
	}
	if err := tmp.Close(); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return nil, err
	}
	ok = true
	return Stat(path)
}

func tempPattern(base string) string {
	if len(base) > 200 {
		base = base[:200]
	}
	return "." + base + ".faas-tmp-*"
}

// extraModeBits converts unix setuid/setgid/sticky bits to fs.FileMode ones
// (os.Chmod ignores the raw unix values).
func extraModeBits(perm uint32) fs.FileMode {
	var m fs.FileMode
	if perm&syscall.S_ISUID != 0 {
		m |= fs.ModeSetuid
	}
	if perm&syscall.S_ISGID != 0 {
		m |= fs.ModeSetgid
	}
	if perm&syscall.S_ISVTX != 0 {
		m |= fs.ModeSticky
	}
	return m
}

func Mkdir(path string, parents bool, mode uint32) (*FileInfo, error) {
	if fi, err := os.Lstat(path); err == nil {
		if fi.IsDir() && parents {
			return infoFor(path, fi), nil
		}
		return nil, errs.Conflictf("%s already exists", path)
	}
	var err error
	if parents {
		err = os.MkdirAll(path, 0o755)
	} else {
		err = os.Mkdir(path, 0o755)
	}
	if err != nil {
		return nil, err
	}
	// Explicit chmod: the requested mode must not depend on the agent's umask.
	if err := os.Chmod(path, fs.FileMode(mode&0o777)|extraModeBits(mode)); err != nil {
		return nil, err
	}
	return Stat(path)
}

func Remove(path string, recursive bool) error {
	if path == "/" {
		return errs.Invalid("refusing to remove /")
	}
	if _, err := os.Lstat(path); err != nil {
		return err
	}
	if recursive {
		return os.RemoveAll(path)
	}
	err := os.Remove(path)
	if errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, syscall.EEXIST) {
		return errs.Conflictf("directory %s is not empty (use recursive)", path)
	}
	return err
}

func Rename(from, to string) (*FileInfo, error) {
	if _, err := os.Lstat(from); err != nil {
		return nil, err
	}
	if err := os.Rename(from, to); err != nil {
		if errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, syscall.EEXIST) {
			return nil, errs.Conflictf("%s exists and is a non-empty directory", to)
		}
		return nil, err
	}
	return Stat(to)
}
