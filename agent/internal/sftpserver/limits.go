package sftpserver

// The limits@openssh.com extension (OpenSSH's PROTOCOL, "sftp: Extension request
// limits@openssh.com"), which pkg/sftp's server does not speak. Without it OpenSSH's sftp and
// scp send 32 KiB WRITE and READ requests; with it they use the size the server announces, here
// 255 KiB: eight times fewer requests, each one a pwrite, a status packet and a TCP segment
// through gVisor's sentry (docs/benchmarks.md "SSH gateway"). The extension sits on both sides
// of pkg/sftp's server:
//   - inFilter passes the client's packets through unchanged, except a limits@openssh.com request,
//     which it answers itself;
//   - packetWriter writes each of the server's packets with one write (pkg/sftp writes a header
//     and its payload separately: two syscalls and two TCP segments per READ answer), announces
//     the extension in the VERSION packet, and puts the limits answers between whole packets.

import (
	"bufio"
	"encoding/binary"
	"io"
	"sync"
)

const (
	fxpVersion       = 2
	fxpExtended      = 200
	fxpExtendedReply = 201
	limitsExt        = "limits@openssh.com"
	// maxPacket is pkg/sftp's largest packet (its maxMsgLength, 256 KiB, length field excluded);
	// maxData leaves room for a request's other fields, as OpenSSH's sftp-server does.
	maxPacket = 256 << 10
	maxData   = maxPacket - 1024
)

// limitsReply answers request id: max packet, read and write lengths, no limit on open handles.
func limitsReply(id uint32) []byte {
	b := make([]byte, 4+1+4+4*8)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	b[4] = fxpExtendedReply
	binary.BigEndian.PutUint32(b[5:], id)
	binary.BigEndian.PutUint64(b[9:], maxPacket)
	binary.BigEndian.PutUint64(b[17:], maxData)
	binary.BigEndian.PutUint64(b[25:], maxData)
	binary.BigEndian.PutUint64(b[33:], 0)
	return b
}

// inFilter is the server's input: the client's bytes, less the limits requests.
type inFilter struct {
	br   *bufio.Reader
	out  *packetWriter
	left int // bytes of the current packet not yet passed on
}

func (f *inFilter) Read(p []byte) (int, error) {
	for f.left == 0 {
		hdr, err := f.br.Peek(5) // length, type: never more than a packet's own bytes
		if err != nil {
			if len(hdr) == 0 {
				return 0, err
			}
			f.left = len(hdr) // a truncated packet: pkg/sftp sees what there is, then the error
			break
		}
		n := int(binary.BigEndian.Uint32(hdr))
		if hdr[4] == fxpExtended && n >= 9 && n < 256 {
			if pkt, err := f.br.Peek(4 + n); err == nil && isLimits(pkt[9:]) {
				id := binary.BigEndian.Uint32(pkt[5:])
				f.br.Discard(4 + n)
				if err := f.out.inject(limitsReply(id)); err != nil {
					return 0, err
				}
				continue
			}
		}
		f.left = 4 + n
	}
	if len(p) > f.left {
		p = p[:f.left]
	}
	k, err := f.br.Read(p)
	f.left -= k
	return k, err
}

// isLimits: the request's name (an SSH string) is limits@openssh.com.
func isLimits(body []byte) bool {
	if len(body) < 4 {
		return false
	}
	n := int(binary.BigEndian.Uint32(body))
	return n == len(limitsExt) && len(body) >= 4+n && string(body[4:4+n]) == limitsExt
}

// packetWriter is the server's output: whole packets, one write each.
type packetWriter struct {
	mu      sync.Mutex
	w       io.Writer
	buf     []byte   // the start of a packet not yet complete
	pending [][]byte // limits answers waiting for the current packet to complete
	version bool     // the VERSION packet went out
}

func (p *packetWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(b)
	for len(b) > 0 {
		if len(p.buf) == 0 && len(b) >= 4 && len(b) >= 4+int(binary.BigEndian.Uint32(b)) {
			// A whole packet in one call: written from the caller's buffer.
			k := 4 + int(binary.BigEndian.Uint32(b))
			if err := p.emit(b[:k]); err != nil {
				return 0, err
			}
			b = b[k:]
			continue
		}
		p.buf = append(p.buf, b...)
		b = nil
		for len(p.buf) >= 4 && len(p.buf) >= 4+int(binary.BigEndian.Uint32(p.buf)) {
			k := 4 + int(binary.BigEndian.Uint32(p.buf))
			if err := p.emit(p.buf[:k]); err != nil {
				return 0, err
			}
			p.buf = append(p.buf[:0], p.buf[k:]...)
		}
	}
	if len(p.buf) == 0 {
		for _, r := range p.pending {
			if _, err := p.w.Write(r); err != nil {
				return 0, err
			}
		}
		p.pending = nil
	}
	return n, nil
}

// emit writes one whole packet; the first VERSION packet also announces limits@openssh.com.
func (p *packetWriter) emit(pkt []byte) error {
	if !p.version && len(pkt) > 4 && pkt[4] == fxpVersion {
		p.version = true
		ext := make([]byte, 0, len(pkt)+8+len(limitsExt)+1)
		ext = append(ext, pkt...)
		ext = binary.BigEndian.AppendUint32(ext, uint32(len(limitsExt)))
		ext = append(ext, limitsExt...)
		ext = binary.BigEndian.AppendUint32(ext, 1)
		ext = append(ext, '1')
		binary.BigEndian.PutUint32(ext, uint32(len(ext)-4))
		pkt = ext
	}
	_, err := p.w.Write(pkt)
	return err
}

// inject writes a packet of the filter's own between the server's packets.
func (p *packetWriter) inject(pkt []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.buf) > 0 {
		p.pending = append(p.pending, pkt)
		return nil
	}
	_, err := p.w.Write(pkt)
	return err
}
