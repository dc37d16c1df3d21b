package sftpserver

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"testing"
)

func packet(typ byte, id uint32, body ...[]byte) []byte {
	b := []byte{0, 0, 0, 0, typ}
	b = binary.BigEndian.AppendUint32(b, id)
	for _, x := range body {
		b = append(b, x...)
	}
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

func sshString(s string) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(s))), s...)
}

// The filter answers limits@openssh.com itself and passes every other packet through byte for byte.
func TestInFilterAnswersLimitsAndPassesTheRest(t *testing.T) {
	write := packet(6, 7, sshString("h"), make([]byte, 8), sshString(string(bytes.Repeat([]byte{9}, 70000))))
	other := packet(fxpExtended, 8, sshString("statvfs@openssh.com"), sshString("/"))
	limits := packet(fxpExtended, 9, sshString(limitsExt))
	in := bytes.Join([][]byte{write, limits, other, limits[:6]}, nil)
	var out bytes.Buffer
	f := &inFilter{br: bufio.NewReaderSize(bytes.NewReader(in), 4096), out: &packetWriter{w: &out}}
	got, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	if want := bytes.Join([][]byte{write, other, limits[:6]}, nil); !bytes.Equal(got, want) {
		t.Fatalf("passed %d bytes, want %d", len(got), len(want))
	}
	reply := out.Bytes()
	if len(reply) != 41 || reply[4] != fxpExtendedReply || binary.BigEndian.Uint32(reply[5:]) != 9 {
		t.Fatalf("limits reply % x", reply)
	}
	if binary.BigEndian.Uint64(reply[25:]) != maxData {
		t.Fatalf("write length %d", binary.BigEndian.Uint64(reply[25:]))
	}
}

// Header and payload written apart go out as one write; a reply injected between them waits for
// the packet to complete; VERSION gains the extension.
func TestPacketWriterWholePackets(t *testing.T) {
	var writes [][]byte
	w := &packetWriter{w: writerFunc(func(b []byte) (int, error) {
		writes = append(writes, append([]byte(nil), b...))
		return len(b), nil
	})}
	version := packet(fxpVersion, 3) // version 3, no extensions: the id field is the version
	w.Write(version[:6])
	w.Write(version[6:])
	data := packet(103, 1, sshString("abc"))
	w.Write(data[:9])
	w.inject([]byte("injected"))
	w.Write(data[9:])
	if len(writes) != 3 || !bytes.Equal(writes[1], data) || string(writes[2]) != "injected" {
		t.Fatalf("writes %q", writes)
	}
	v := writes[0]
	if int(binary.BigEndian.Uint32(v)) != len(v)-4 || !bytes.Contains(v, sshString(limitsExt)) || !bytes.HasSuffix(v, sshString("1")) {
		t.Fatalf("version % x", v)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }
