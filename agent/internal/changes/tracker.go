// Package changes keeps the set of paths changed since the sandbox booted from its image, so a
// snapshot can say what differs from the image without anyone walking the whole root.
//
// Lifecycle: Start runs once, at the agent's cold boot (never after a restore: the agent's memory,
// this set included, comes back with the checkpoint). It puts an inotify watch on every directory
// of the root filesystem (~1,400 on the default image) and then records, from the events, every
// path created, written, chmod'ed, renamed or deleted. gVisor saves inotify instances and their
// watches in its checkpoint, so the watches keep reporting in every restore, and a branch child
// inherits its parent's set. Manifest answers the current state (type, mode, size, sha256, symlink
// target) of each recorded path, hashing only files whose stat changed since they were last hashed.
//
// Limits (docs/architecture.md "Diff and merge"): writes through mmap do not raise IN_MODIFY (as
// on Linux); a change through a hard link is seen under the name it was made through; a directory
// renamed away is recorded as a subtree marker (everything the image had under it is gone).
package changes

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Mounts that are not part of the sandbox's files: kernel views, the agent's own read-only mount.
var skipped = map[string]bool{"/proc": true, "/sys": true, "/dev": true, "/.faas": true}

const watchMask = unix.IN_CREATE | unix.IN_DELETE | unix.IN_MODIFY | unix.IN_ATTRIB | unix.IN_MOVED_FROM |
	unix.IN_MOVED_TO | unix.IN_CLOSE_WRITE | unix.IN_ONLYDIR | unix.IN_DONT_FOLLOW | unix.IN_EXCL_UNLINK

type hashed struct {
	size, mtime, ctime int64
	ino                uint64
	sum                string
}

// Tracker is the changed-path set and the hash cache behind Manifest.
type Tracker struct {
	fd int

	mu       sync.Mutex
	watches  map[int32]string
	changed  map[string]bool // path → true when it is a subtree marker (a directory renamed away)
	cache    map[string]hashed
	overflow bool // events were lost: the set is no longer complete
	started  bool
	buf      []byte
}

var Default = &Tracker{}

// Start watches every directory under root; events are recorded every pumpEvery and before every manifest.
func (t *Tracker) Start(root string) error {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return err
	}
	t.mu.Lock()
	t.fd, t.watches, t.changed, t.cache, t.started = fd, map[int32]string{}, map[string]bool{}, map[string]hashed{}, true
	t.buf = make([]byte, 256<<10)
	t.watchTree(root, false)
	t.mu.Unlock()
	go t.background()
	return nil
}

// watchTree adds a watch to every directory under dir; with mark, every path under it is recorded
// (a directory that came into being: what was created in it before its watch existed counts too).
// Called with mu held.
func (t *Tracker) watchTree(dir string, mark bool) {
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if skipped[p] {
			return filepath.SkipDir
		}
		if mark {
			t.changed[p] = t.changed[p] || false
		}
		if err != nil || !d.IsDir() {
			return nil
		}
		if wd, err := unix.InotifyAddWatch(t.fd, p, watchMask); err == nil {
			t.watches[int32(wd)] = p
		}
		return nil
	})
}

// pumpEvery bounds how long events wait in the kernel queue between manifests (a queue that
// overflowed would make the set incomplete).
const pumpEvery = 100 * time.Millisecond

func (t *Tracker) background() {
	for {
		time.Sleep(pumpEvery)
		t.mu.Lock()
		t.pump()
		t.mu.Unlock()
	}
}

// pump records every event queued so far (the fd is non-blocking). gVisor queues an event inside
// the syscall that caused it, so after a pump every change made before it is in the set: an exec
// that wrote a file and a checkpoint right after it agree. Called with mu held.
func (t *Tracker) pump() {
	buf := t.buf
	for {
		n, err := unix.Read(t.fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN || n == 0 {
			return
		}
		if err != nil {
			t.overflow = true
			return
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			name := buf[off+unix.SizeofInotifyEvent : off+unix.SizeofInotifyEvent+int(ev.Len)]
			off += unix.SizeofInotifyEvent + int(ev.Len)
			t.handle(ev.Wd, ev.Mask, string(bytes.TrimRight(name, "\x00")))
		}
	}
}

// handle records one event. Called with mu held.
func (t *Tracker) handle(wd int32, mask uint32, name string) {
	if mask&unix.IN_Q_OVERFLOW != 0 {
		t.overflow = true
		return
	}
	dir, ok := t.watches[wd]
	if !ok {
		return
	}
	if mask&unix.IN_IGNORED != 0 {
		delete(t.watches, wd)
		return
	}
	if name == "" {
		t.mark(dir, false) // the watched directory itself (its mode)
		return
	}
	p := filepath.Join(dir, name)
	if skipped[p] {
		return
	}
	isDir := mask&unix.IN_ISDIR != 0
	switch {
	case isDir && mask&(unix.IN_CREATE|unix.IN_MOVED_TO) != 0:
		t.mark(p, false)
		t.watchTree(p, true)
	case isDir && mask&unix.IN_MOVED_FROM != 0:
		t.mark(p, true)
	default:
		t.mark(p, false)
	}
}

func (t *Tracker) mark(p string, subtree bool) {
	t.changed[p] = t.changed[p] || subtree
}

// Entry is one changed path's current state. Path is the path's bytes (JSON-encoded by the API as
// text when valid UTF-8, else base64).
type Entry struct {
	Path    string
	Subtree bool   // a directory was renamed away from here: the image's paths under it are gone
	Type    string // file | dir | symlink | other | absent
	Mode    uint32
	Size    int64
	Sha256  string
	Target  string
	Content []byte // inlined when asked and the file was (re)hashed in this call
}

// Manifest returns the state of every changed path, sorted. Files up to inlineMax bytes that had to
// be hashed in this call carry their bytes (the engine keeps each content once, by hash).
func (t *Tracker) Manifest(inlineMax int64) (entries []Entry, complete bool, err error) {
	t.mu.Lock()
	if t.started {
		t.pump()
	}
	paths := make([]string, 0, len(t.changed))
	subtree := make(map[string]bool, len(t.changed))
	for p, s := range t.changed {
		paths = append(paths, p)
		subtree[p] = s
	}
	complete = t.started && !t.overflow
	t.mu.Unlock()
	sort.Strings(paths)
	entries = make([]Entry, 0, len(paths))
	for _, p := range paths {
		e := Entry{Path: p, Subtree: subtree[p]}
		if err := t.describe(&e, inlineMax); err != nil {
			return nil, false, err
		}
		entries = append(entries, e)
	}
	return entries, complete, nil
}

func (t *Tracker) describe(e *Entry, inlineMax int64) error {
	var st unix.Stat_t
	if err := unix.Lstat(e.Path, &st); err != nil {
		if err == unix.ENOENT || err == unix.ENOTDIR {
			e.Type = "absent"
			return nil
		}
		return err
	}
	e.Mode = st.Mode & 0o7777
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		e.Type = "dir"
	case unix.S_IFLNK:
		e.Type = "symlink"
		target, err := os.Readlink(e.Path)
		if err != nil {
			return err
		}
		e.Target, e.Size = target, int64(len(target))
	case unix.S_IFREG:
		e.Type, e.Size = "file", st.Size
		return t.hash(e, &st, inlineMax)
	default:
		e.Type = "other"
	}
	return nil
}

func (t *Tracker) hash(e *Entry, st *unix.Stat_t, inlineMax int64) error {
	key := hashed{size: st.Size, mtime: st.Mtim.Nano(), ctime: st.Ctim.Nano(), ino: st.Ino}
	t.mu.Lock()
	c, ok := t.cache[e.Path]
	t.mu.Unlock()
	if ok && c.size == key.size && c.mtime == key.mtime && c.ctime == key.ctime && c.ino == key.ino {
		e.Sha256 = c.sum
		return nil
	}
	f, err := os.OpenFile(e.Path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		if os.IsNotExist(err) {
			e.Type = "absent"
			return nil
		}
		return err
	}
	defer f.Close()
	h := sha256.New()
	var keep bytes.Buffer
	w := io.Writer(h)
	if st.Size <= inlineMax {
		w = io.MultiWriter(h, &keep)
	}
	n, err := io.Copy(w, f)
	if err != nil {
		return err
	}
	e.Size, e.Sha256 = n, hex.EncodeToString(h.Sum(nil))
	if n <= inlineMax {
		e.Content = keep.Bytes()
		if e.Content == nil {
			e.Content = []byte{}
		}
	}
	key.sum = e.Sha256
	// Size changed while it was read: do not cache a hash of a moving file.
	if n == st.Size {
		t.mu.Lock()
		t.cache[e.Path] = key
		t.mu.Unlock()
	}
	return nil
}

// Watching says whether the tracker runs (an agent booted before it existed never started one).
func (t *Tracker) Watching() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.started
}

// Stats: counts for health/debugging.
func (t *Tracker) Stats() (watches, changed int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.watches), len(t.changed)
}
