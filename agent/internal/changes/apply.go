package changes

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Op is one step of applying a merge: what the engine decided, done in order. Paths are absolute
// bytes; nothing here follows a symlink at the final component.
type Op struct {
	Op     string // remove | mkdir | symlink | chmod
	Path   string
	Mode   uint32
	Target string
}

// Apply runs ops in order and stops at the first failure, naming it.
func Apply(ops []Op) error {
	for i, o := range ops {
		if len(o.Path) < 2 || o.Path[0] != '/' {
			return fmt.Errorf("op %d: path must be absolute and not /", i)
		}
		if err := apply(o); err != nil {
			return fmt.Errorf("op %d (%s %q): %w", i, o.Op, o.Path, err)
		}
	}
	return nil
}

func apply(o Op) error {
	switch o.Op {
	case "remove":
		return os.RemoveAll(o.Path)
	case "mkdir":
		var st unix.Stat_t
		if unix.Lstat(o.Path, &st) == nil && st.Mode&unix.S_IFMT != unix.S_IFDIR {
			if err := os.RemoveAll(o.Path); err != nil {
				return err
			}
		}
		if err := unix.Mkdir(o.Path, o.Mode&0o7777); err != nil && err != unix.EEXIST {
			return err
		}
		return unix.Chmod(o.Path, o.Mode&0o7777)
	case "symlink":
		if err := os.RemoveAll(o.Path); err != nil {
			return err
		}
		return unix.Symlink(o.Target, o.Path)
	case "chmod":
		var st unix.Stat_t
		if err := unix.Lstat(o.Path, &st); err != nil {
			return err
		}
		if st.Mode&unix.S_IFMT == unix.S_IFLNK {
			return nil // a symlink's mode is not used
		}
		return unix.Chmod(o.Path, o.Mode&0o7777)
	}
	return fmt.Errorf("unknown op %q", o.Op)
}
