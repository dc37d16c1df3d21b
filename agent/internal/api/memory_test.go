package api

import (
	"archive/tar"
	"io"
	"net/http"
	"path/filepath"
	"testing"
	"time"
)

// patternReader produces n bytes without holding them in memory.
type patternReader struct{ n int64 }

func (r *patternReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), r.n))
	for i := range p[:n] {
		p[i] = byte(i * 7)
	}
	r.n -= int64(n)
	return n, nil
}

// TestTransferMemoryBounded: a 256 MiB tar upload and download must not grow
// the heap (client and server share this process, both must stream).
func TestTransferMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("large transfer")
	}
	const size = 256 << 20
	ts := newServer(t)
	dest := filepath.Join(t.TempDir(), "dest")

	heap := watchHeap(10 * time.Millisecond)

	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		tw.WriteHeader(&tar.Header{Name: "big/blob.bin", Mode: 0o644, Size: size, Typeflag: tar.TypeReg})
		io.CopyBuffer(tw, &patternReader{n: size}, make([]byte, 64<<10))
		pw.CloseWithError(tw.Close())
	}()
	req, _ := http.NewRequest("PUT", ts.URL+"/v1/files/tar?path="+q(dest), pr)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("upload %d %s", resp.StatusCode, body)
	}

	resp, err = http.Get(ts.URL + "/v1/files/tar?path=" + q(filepath.Join(dest, "big")))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(resp.Body)
	var got int64
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			n, err := io.CopyBuffer(io.Discard, tr, make([]byte, 64<<10))
			if err != nil {
				t.Fatal(err)
			}
			got += n
		}
	}
	resp.Body.Close()
	base, growth := heap()
	if got != size {
		t.Fatalf("downloaded %d bytes, want %d", got, size)
	}
	t.Logf("heap in use: base %d MiB, peak growth %.1f MiB", base>>20, float64(growth)/(1<<20))
	if growth > 16<<20 {
		t.Fatalf("heap grew by %d bytes during a %d byte transfer", growth, size)
	}
}
