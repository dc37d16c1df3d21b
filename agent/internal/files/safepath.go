package files

import (
	"errors"
	"strings"
	"sync/atomic"

	"faas/agent/internal/errs"

	"golang.org/x/sys/unix"
)

// Tar extraction resolves every entry relative to a directory fd of DEST and
// never follows a symlink on the way: openat2(RESOLVE_BENEATH|NO_SYMLINKS)
// where the kernel has it, else an fd-relative walk with O_NOFOLLOW on each
// component. Both are immune to symlinks swapped in concurrently, unlike
// lstat-then-open on path strings.

var noOpenat2 atomic.Bool // set once openat2 proved unavailable (e.g. gVisor, seccomp)

// splitRel validates a tar entry name and returns its components.
func splitRel(name string) ([]string, error) {
	if strings.HasPrefix(name, "/") {
		return nil, errs.Invalid("tar entry %q: absolute names are not allowed", name)
	}
	if strings.ContainsRune(name, 0) {
		return nil, errs.Invalid("tar entry %q: NUL in name", name)
	}
	var parts []string
	for _, p := range strings.Split(name, "/") {
		switch p {
		case "", ".":
			continue
		case "..":
			return nil, errs.Invalid("tar entry %q: '..' is not allowed", name)
		}
		parts = append(parts, p)
	}
	return parts, nil
}

// openDir opens the directory root/parts[...] with no symlink anywhere on the
// path, creating missing components (mode 0755) when create is set.
// The caller closes the returned fd.
func openDir(root int, parts []string, create bool, entry string) (int, error) {
	if len(parts) == 0 {
		return unix.Dup(root)
	}
	rel := strings.Join(parts, "/")
	if !noOpenat2.Load() {
		fd, err := unix.Openat2(root, rel, &unix.OpenHow{
			Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
			Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
		})
		switch {
		case err == nil:
			return fd, nil
		case errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM) || errors.Is(err, unix.E2BIG):
			noOpenat2.Store(true)
		case errors.Is(err, unix.ENOENT) && create:
			// fall through to the walk, which creates what is missing
		default:
			return -1, walkErr(err, entry)
		}
	}
	return walkDir(root, parts, create, entry)
}

func walkDir(root int, parts []string, create bool, entry string) (int, error) {
	cur, err := unix.Dup(root)
	if err != nil {
		return -1, err
	}
	for _, p := range parts {
		next, err := unix.Openat(cur, p, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.ENOENT) && create {
			if err = unix.Mkdirat(cur, p, 0o755); err == nil || errors.Is(err, unix.EEXIST) {
				next, err = unix.Openat(cur, p, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			}
		}
		if err != nil && !errors.Is(err, unix.ENOENT) {
			// O_PATH|O_NOFOLLOW|O_DIRECTORY on a symlink yields ENOTDIR; tell
			// the two cases apart for a clear message.
			var st unix.Stat_t
			if unix.Fstatat(cur, p, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
				err = unix.ELOOP
			}
		}
		unix.Close(cur)
		if err != nil {
			return -1, walkErr(err, entry)
		}
		cur = next
	}
	return cur, nil
}

func walkErr(err error, entry string) error {
	switch {
	case errors.Is(err, unix.ELOOP):
		return errs.Invalid("tar entry %q: path goes through a symlink", entry)
	case errors.Is(err, unix.EXDEV):
		return errs.Invalid("tar entry %q: path escapes the destination", entry)
	case errors.Is(err, unix.ENOTDIR):
		return errs.Invalid("tar entry %q: a path component is not a directory", entry)
	case errors.Is(err, unix.ENOENT):
		return errs.Invalid("tar entry %q: no such file or directory", entry)
	}
	return err
}
