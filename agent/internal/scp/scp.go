// Package scp implements the remote end of the legacy scp protocol (`scp -t` sink, `scp -f`
// source), which OpenSSH's `scp -O` runs on the server. Images need not contain an scp binary:
// the engine's SSH gateway hands `scp -t/-f` commands to this code instead of the image.
//
// The protocol, one control line at a time, each answered by one byte (0 ok, 1 warning + line,
// 2 fatal + line):
//
//	T<mtime> 0 <atime> 0   times of the next file or directory (-p)
//	C<mode> <size> <name>  a file: <size> bytes follow, then one 0 byte
//	D<mode> 0 <name>       enter a directory (-r)
//	E                      leave it
package scp

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

type options struct {
	sink, source, recursive, preserve, targetIsDir bool
	paths                                          []string
}

func parseArgs(args []string) (*options, error) {
	o := &options{}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			o.paths = append(o.paths, args[i+1:]...)
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			o.paths = append(o.paths, a)
			continue
		}
		for _, f := range a[1:] {
			switch f {
			case 't':
				o.sink = true
			case 'f':
				o.source = true
			case 'r':
				o.recursive = true
			case 'p':
				o.preserve = true
			case 'd':
				o.targetIsDir = true
			case 'v', 'q', 'E', 'O', 'B', 'C':
				// verbosity, quiet, batch, compression: nothing to do on this end
			default:
				return nil, fmt.Errorf("unsupported option -%c", f)
			}
		}
	}
	if o.sink == o.source {
		return nil, errors.New("exactly one of -t and -f is required")
	}
	if len(o.paths) == 0 || (o.sink && len(o.paths) != 1) {
		return nil, errors.New("expected one target (-t) or at least one source (-f)")
	}
	return o, nil
}

// Run serves one scp command on in/out and returns its exit code (messages go to errOut).
func Run(args []string, in io.Reader, out io.Writer, errOut io.Writer) int {
	o, err := parseArgs(args)
	if err != nil {
		fmt.Fprintf(errOut, "scp: %v\n", err)
		return 1
	}
	s := &session{in: bufio.NewReaderSize(in, 64<<10), out: out, o: o}
	if o.sink {
		err = s.sink(o.paths[0])
	} else {
		err = s.sources()
	}
	if err != nil {
		fmt.Fprintf(errOut, "scp: %v\n", err)
		return 1
	}
	if s.failed {
		return 1
	}
	return 0
}

type session struct {
	in     *bufio.Reader
	out    io.Writer
	o      *options
	failed bool
}

func (s *session) ack() error { _, err := s.out.Write([]byte{0}); return err }

// warn tells the peer about one failed item; the transfer goes on and the exit code becomes 1.
func (s *session) warn(format string, a ...any) error {
	s.failed = true
	_, err := fmt.Fprintf(s.out, "\x01scp: %s\n", fmt.Sprintf(format, a...))
	return err
}

// readAck reads the peer's answer: nil on 0, the message on 1 (warning) and 2 (fatal).
func (s *session) readAck() error {
	b, err := s.in.ReadByte()
	if err != nil {
		return err
	}
	if b == 0 {
		return nil
	}
	line, _ := s.in.ReadString('\n')
	if b == 1 {
		s.failed = true
		return nil
	}
	return fmt.Errorf("peer: %s", strings.TrimSpace(line))
}

// safeName refuses names that would leave the target directory.
func safeName(n string) bool {
	return n != "" && n != "." && n != ".." && !strings.ContainsRune(n, '/')
}

func (s *session) sink(target string) error {
	isDir := false
	if st, err := os.Stat(target); err == nil && st.IsDir() {
		isDir = true
	} else if s.o.targetIsDir {
		return fmt.Errorf("%s: not a directory", target)
	}
	if err := s.ack(); err != nil {
		return err
	}
	return s.sinkInto(target, isDir, 0)
}

func (s *session) sinkInto(target string, isDir bool, depth int) error {
	var times *[2]time.Time
	for {
		line, err := s.in.ReadString('\n')
		if err != nil {
			if err == io.EOF && line == "" && depth == 0 {
				return nil
			}
			return err
		}
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			return errors.New("empty control line")
		}
		switch line[0] {
		case 1, 2:
			s.failed = true
			if line[0] == 2 {
				return fmt.Errorf("peer: %s", line[1:])
			}
			continue
		case 'E':
			if depth == 0 {
				return errors.New("unexpected E at the top level")
			}
			return s.ack()
		case 'T':
			var mt, ma, at, aa int64
			if _, err := fmt.Sscanf(line[1:], "%d %d %d %d", &mt, &ma, &at, &aa); err != nil {
				return fmt.Errorf("bad time line %q", line)
			}
			times = &[2]time.Time{time.Unix(at, 0), time.Unix(mt, 0)}
			if err := s.ack(); err != nil {
				return err
			}
			continue
		case 'C', 'D':
		default:
			return fmt.Errorf("unknown control line %q", line)
		}
		parts := strings.SplitN(line[1:], " ", 3)
		if len(parts) != 3 {
			return fmt.Errorf("bad control line %q", line)
		}
		mode, err1 := strconv.ParseUint(parts[0], 8, 32)
		size, err2 := strconv.ParseInt(parts[1], 10, 64)
		name := parts[2]
		if err1 != nil || err2 != nil || size < 0 || !safeName(name) {
			return fmt.Errorf("bad control line %q", line)
		}
		dest := target
		if isDir {
			dest = filepath.Join(target, name)
		}
		if line[0] == 'D' {
			if !s.o.recursive {
				return errors.New("received a directory without -r")
			}
			if st, err := os.Stat(dest); err == nil && !st.IsDir() {
				return fmt.Errorf("%s: not a directory", dest)
			} else if err != nil {
				if err := os.Mkdir(dest, os.FileMode(mode)&os.ModePerm|0o700); err != nil {
					return err
				}
			}
			if err := s.ack(); err != nil {
				return err
			}
			if err := s.sinkInto(dest, true, depth+1); err != nil {
				return err
			}
			os.Chmod(dest, os.FileMode(mode)&os.ModePerm)
			if times != nil {
				os.Chtimes(dest, times[0], times[1])
			}
			times = nil
			continue
		}
		if err := s.ack(); err != nil {
			return err
		}
		werr := receiveFile(dest, os.FileMode(mode)&os.ModePerm, size, s.in)
		// The source ends every file with one status byte.
		if err := s.readAck(); err != nil {
			return err
		}
		if werr != nil {
			if errors.Is(werr, errStream) {
				return werr
			}
			if err := s.warn("%s: %v", dest, werr); err != nil {
				return err
			}
		} else {
			if times != nil {
				os.Chtimes(dest, times[0], times[1])
			}
			if err := s.ack(); err != nil {
				return err
			}
		}
		times = nil
	}
}

var errStream = errors.New("connection lost in the middle of a file")

// receiveFile copies exactly size bytes from in to path. A failure to write still consumes the
// bytes, so the stream stays in step and the next file can follow.
func receiveFile(path string, mode os.FileMode, size int64, in io.Reader) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		if _, cerr := io.CopyN(io.Discard, in, size); cerr != nil {
			return errStream
		}
		return err
	}
	_, cerr := io.CopyN(f, in, size)
	werr := f.Close()
	if cerr != nil {
		if errors.Is(cerr, io.EOF) || errors.Is(cerr, io.ErrUnexpectedEOF) {
			return errStream
		}
		return cerr
	}
	os.Chmod(path, mode)
	return werr
}

func (s *session) sources() error {
	if err := s.readAck(); err != nil {
		return err
	}
	for _, p := range s.o.paths {
		if err := s.send(p); err != nil {
			return err
		}
	}
	return nil
}

func (s *session) send(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return s.warn("%s: %v", path, errors.Unwrap(err))
	}
	name := filepath.Base(path)
	if s.o.preserve {
		at := st.ModTime()
		if _, err := fmt.Fprintf(s.out, "T%d 0 %d 0\n", st.ModTime().Unix(), at.Unix()); err != nil {
			return err
		}
		if err := s.readAck(); err != nil {
			return err
		}
	}
	if st.IsDir() {
		if !s.o.recursive {
			return s.warn("%s: is a directory (use -r)", path)
		}
		entries, err := os.ReadDir(path)
		if err != nil {
			return s.warn("%s: %v", path, errors.Unwrap(err))
		}
		if _, err := fmt.Fprintf(s.out, "D%04o 0 %s\n", st.Mode().Perm(), name); err != nil {
			return err
		}
		if err := s.readAck(); err != nil {
			return err
		}
		for _, e := range entries {
			if err := s.send(filepath.Join(path, e.Name())); err != nil {
				return err
			}
		}
		if _, err := io.WriteString(s.out, "E\n"); err != nil {
			return err
		}
		return s.readAck()
	}
	if !st.Mode().IsRegular() {
		return s.warn("%s: not a regular file", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return s.warn("%s: %v", path, errors.Unwrap(err))
	}
	defer f.Close()
	if _, err := fmt.Fprintf(s.out, "C%04o %d %s\n", st.Mode().Perm(), st.Size(), name); err != nil {
		return err
	}
	if err := s.readAck(); err != nil {
		return err
	}
	n, err := io.CopyN(s.out, f, st.Size())
	if err != nil && n < st.Size() {
		// The peer expects exactly size bytes: pad, then say what went wrong.
		if _, werr := io.CopyN(s.out, zeros{}, st.Size()-n); werr != nil {
			return werr
		}
		if err := s.warn("%s: %v", path, err); err != nil {
			return err
		}
		return s.readAck()
	}
	if err := s.ack(); err != nil {
		return err
	}
	return s.readAck()
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 0
	}
	return len(p), nil
}
