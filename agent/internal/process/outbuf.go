package process

import "sync"

// MaxBuffered is the per-process replay buffer size (combined output).
const MaxBuffered = 1 << 20

// Chunk is one read from a child's stdout or stderr.
type Chunk struct {
	Seq    uint64
	Stream string
	Data   string
}

// outBuf is a bounded log of chunks with monotonically increasing sequence
// numbers (starting at 1). Writers never block on readers: readers hold only
// a sequence number and find out they fell behind when their next seq has
// been evicted, which is reported as a "dropped" range.
type outBuf struct {
	mu      sync.Mutex
	chunks  []Chunk // oldest first
	head    int     // index of oldest live chunk in chunks
	bytes   int
	nextSeq uint64
	closed  bool
	notify  chan struct{} // closed and replaced on every append/close
}

func newOutBuf() *outBuf {
	return &outBuf{nextSeq: 1, notify: make(chan struct{})}
}

func (b *outBuf) append(stream, data string) {
	b.mu.Lock()
	b.chunks = append(b.chunks, Chunk{Seq: b.nextSeq, Stream: stream, Data: data})
	b.nextSeq++
	b.bytes += len(data)
	for b.bytes > MaxBuffered && len(b.chunks)-b.head > 1 {
		b.bytes -= len(b.chunks[b.head].Data)
		b.chunks[b.head] = Chunk{}
		b.head++
	}
	// Compact occasionally so the backing array does not grow forever.
	if b.head > 1024 && b.head > len(b.chunks)/2 {
		b.chunks = append([]Chunk(nil), b.chunks[b.head:]...)
		b.head = 0
	}
	close(b.notify)
	b.notify = make(chan struct{})
	b.mu.Unlock()
}

func (b *outBuf) close() {
	b.mu.Lock()
	b.closed = true
	close(b.notify)
	b.notify = make(chan struct{})
	b.mu.Unlock()
}

// Read returns chunks with seq >= from (at most max bytes, at least one
// chunk if any), the first seq that is still retained when from has been
// evicted (dropped = [from, firstKept-1]), whether the buffer is closed
// (no more output will come), and a channel closed on the next change.
func (b *outBuf) read(from uint64, maxBytes int) (out []Chunk, firstKept uint64, closed bool, changed <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	live := b.chunks[b.head:]
	firstKept = b.nextSeq
	if len(live) > 0 {
		firstKept = live[0].Seq
	}
	start := min(max(from, firstKept), b.nextSeq)
	size := 0
	for i := int(start - firstKept); i < len(live); i++ {
		if size > 0 && size+len(live[i].Data) > maxBytes {
			break
		}
		out = append(out, live[i])
		size += len(live[i].Data)
	}
	return out, firstKept, b.closed, b.notify
}
