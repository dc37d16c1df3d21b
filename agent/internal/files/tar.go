package files

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"faas/agent/internal/errs"

	"golang.org/x/sys/unix"
)

// TarResult is the upload response.
type TarResult struct {
	Files int   `json:"files"` // non-directory entries extracted
	Bytes int64 `json:"bytes"` // regular-file bytes written
}

type dirMeta struct {
	parts []string
	mode  uint32
	mtime time.Time
}

// Extract unpacks a tar stream under dest (created if missing). Entries that
// would land outside dest are refused with invalid_request; entries already
// extracted stay (extraction is not transactional), but nothing is ever
// written outside dest.
func Extract(dest string, r io.Reader) (*TarResult, error) {
	if err := os.MkdirAll(dest, 0o755); err != nil {
		return nil, err
	}
	root, err := unix.Open(dest, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", dest, err)
	}
	defer unix.Close(root)

	res := &TarResult{}
	var dirs []dirMeta // modes/mtimes applied last: children would bump mtimes
	r, err = maybeGunzip(r)
	if err != nil {
		return res, err
	}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return res, errs.Invalid("reading tar stream: %v", err)
		}
		parts, err := splitRel(hdr.Name)
		if err != nil {
			return res, err
		}
		if len(parts) == 0 {
			continue // "./" names dest itself
		}
		parent, err := openDir(root, parts[:len(parts)-1], true, hdr.Name)
		if err != nil {
			return res, err
		}
		name := parts[len(parts)-1]
		n, err := extractEntry(root, parent, name, hdr, tr)
		unix.Close(parent)
		if err != nil {
			return res, err
		}
		if hdr.Typeflag == tar.TypeDir {
			dirs = append(dirs, dirMeta{parts, uint32(hdr.Mode) & 0o7777, hdr.ModTime})
			continue
		}
		if n >= 0 {
			res.Files++
			res.Bytes += n
		}
	}
	for i := len(dirs) - 1; i >= 0; i-- { // deepest last-listed first
		d := dirs[i]
		parent, err := openDir(root, d.parts[:len(d.parts)-1], false, strings.Join(d.parts, "/"))
		if err != nil {
			return res, err
		}
		name := d.parts[len(d.parts)-1]
		err = chmodDir(parent, name, d.mode)
		if err == nil {
			err = setMtime(parent, name, d.mtime)
		}
		unix.Close(parent)
		if err != nil {
			return res, err
		}
	}
	return res, nil
}

// maybeGunzip decompresses a gzip stream (detected from its magic bytes, as
// the API documents, whatever the content type said) and passes anything
// else through unchanged.
func maybeGunzip(r io.Reader) (io.Reader, error) {
	br := bufio.NewReader(r)
	magic, err := br.Peek(2)
	if err != nil || magic[0] != 0x1f || magic[1] != 0x8b {
		return br, nil // short or plain: the tar reader reports what is wrong
	}
	zr, err := gzip.NewReader(br)
	if err != nil {
		return nil, errs.Invalid("reading gzip stream: %v", err)
	}
	return zr, nil
}

// extractEntry creates one entry in dir fd parent. Returns bytes written for
// regular files, 0 for other created entries, -1 for skipped ones.
func extractEntry(root, parent int, name string, hdr *tar.Header, r io.Reader) (int64, error) {
	mode := uint32(hdr.Mode) & 0o7777
	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := unix.Mkdirat(parent, name, 0o700); err != nil && !errors.Is(err, unix.EEXIST) {
			return 0, entryErr(hdr.Name, err)
		}
		// Must be a real directory, not a pre-existing symlink: Fchmodat
		// later would follow it.
		fd, err := unix.Openat(parent, name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return 0, walkErr(err, hdr.Name)
		}
		unix.Close(fd)
		return 0, nil
	case tar.TypeReg, tar.TypeRegA:
		return writeTemp(parent, name, hdr, mode, r)
	case tar.TypeSymlink:
		if hdr.Linkname == "" || strings.ContainsRune(hdr.Linkname, 0) {
			return 0, errs.Invalid("tar entry %q: bad symlink target", hdr.Name)
		}
		// The link itself lives inside dest whatever it points to; later
		// entries through it are refused by the no-symlink resolution.
		return 0, placeTemp(parent, name, hdr, func(tmp string) error {
			return unix.Symlinkat(hdr.Linkname, parent, tmp)
		})
	case tar.TypeLink:
		parts, err := splitRel(hdr.Linkname)
		if err != nil || len(parts) == 0 {
			return 0, errs.Invalid("tar entry %q: hard link target %q is outside the destination", hdr.Name, hdr.Linkname)
		}
		tdir, err := openDir(root, parts[:len(parts)-1], false, hdr.Linkname)
		if err != nil {
			return 0, err
		}
		defer unix.Close(tdir)
		return 0, placeTemp(parent, name, hdr, func(tmp string) error {
			// flags 0: never follow a symlink target, link the entry itself.
			return unix.Linkat(tdir, parts[len(parts)-1], parent, tmp, 0)
		})
	}
	return -1, nil // devices, fifos, etc. are skipped: a sandbox upload has no use for them
}

func tempName(name string) string {
	var b [6]byte
	rand.Read(b[:])
	if len(name) > 200 {
		name = name[:200]
	}
	return "." + name + ".faas-tmp-" + hex.EncodeToString(b[:])
}

// placeTemp creates an entry under a temporary name and renames it over name
// (rename never follows a symlink at the destination name).
func placeTemp(parent int, name string, hdr *tar.Header, create func(tmp string) error) error {
	tmp := tempName(name)
	if err := create(tmp); err != nil {
		return entryErr(hdr.Name, err)
	}
	if err := unix.Renameat(parent, tmp, parent, name); err != nil {
		unix.Unlinkat(parent, tmp, 0)
		return entryErr(hdr.Name, err)
	}
	setMtime(parent, name, hdr.ModTime)
	return nil
}

func writeTemp(parent int, name string, hdr *tar.Header, mode uint32, r io.Reader) (int64, error) {
	var n int64
	err := placeTemp(parent, name, hdr, func(tmp string) error {
		fd, err := unix.Openat(parent, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return err
		}
		f := os.NewFile(uintptr(fd), tmp)
		n, err = copyBuffered(f, r)
		if err == nil {
			err = unix.Fchmod(fd, mode)
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			unix.Unlinkat(parent, tmp, 0)
		}
		return err
	})
	return n, err
}

// chmodDir never follows a symlink (Fchmodat would).
func chmodDir(parent int, name string, mode uint32) error {
	fd, err := unix.Openat(parent, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return walkErr(err, name)
	}
	defer unix.Close(fd)
	return unix.Fchmod(fd, mode)
}

func setMtime(parent int, name string, t time.Time) error {
	ts := []unix.Timespec{unix.NsecToTimespec(t.UnixNano()), unix.NsecToTimespec(t.UnixNano())}
	return unix.UtimesNanoAt(parent, name, ts, unix.AT_SYMLINK_NOFOLLOW)
}

func entryErr(name string, err error) error {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		switch errno {
		case unix.ELOOP, unix.EXDEV, unix.ENOTDIR, unix.ENOENT:
			return walkErr(err, name)
		case unix.EISDIR, unix.ENOTEMPTY, unix.EEXIST:
			return errs.Conflictf("tar entry %q: %v", name, err)
		}
	}
	return fmt.Errorf("tar entry %q: %w", name, err)
}

// Archive writes a tar stream of src; names are relative to src's parent,
// so the archive holds basename(src)/…. Symlinks are stored, not followed;
// files with several links inside src become hard-link entries.
func Archive(src string, w io.Writer) error {
	prefix := filepath.Base(src)
	if src == "/" {
		prefix = "."
	}
	tw := tar.NewWriter(w)
	type devIno struct{ dev, ino uint64 }
	links := map[devIno]string{}
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path == src {
				return err
			}
			return nil // unreadable or vanished below src: skip, keep going
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(src, path)
		name := filepath.ToSlash(filepath.Join(prefix, rel))
		var target string
		if fi.Mode()&fs.ModeSymlink != 0 {
			if target, err = os.Readlink(path); err != nil {
				return nil
			}
		}
		hdr, err := tar.FileInfoHeader(fi, target)
		if err != nil {
			return nil // sockets and the like cannot be archived
		}
		hdr.Name = name
		if fi.IsDir() {
			hdr.Name += "/"
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && fi.Mode().IsRegular() && st.Nlink > 1 {
			key := devIno{uint64(st.Dev), st.Ino}
			if first, seen := links[key]; seen {
				hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, first, 0
			} else {
				links[key] = name
			}
		}
		if hdr.Typeflag != tar.TypeReg {
			return tw.WriteHeader(hdr)
		}
		f, err := os.Open(path)
		if err != nil {
			return nil
		}
		defer f.Close()
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		// Exactly hdr.Size bytes: a file that shrinks mid-copy aborts the
		// stream instead of producing a silently corrupt archive.
		n, err := copyBuffered(tw, io.LimitReader(f, hdr.Size))
		if err == nil && n != hdr.Size {
			err = fmt.Errorf("%s changed size while archiving", path)
		}
		return err
	})
	if err != nil {
		return err
	}
	return tw.Close()
}
