package process

import (
	"strings"
	"testing"
)

func TestLogRingKeepsTheNewestWithinItsBound(t *testing.T) {
	l := &logRing{next: 1}
	chunk := strings.Repeat("x", 1000)
	for i := 0; i < 2000; i++ {
		l.add(7, "stdout", chunk)
	}
	entries, next := l.Read(0, 0)
	if next != 2000 {
		t.Fatalf("next = %d, want 2000", next)
	}
	if held := len(entries) * 1000; held > LogMaxBytes {
		t.Fatalf("holds %d bytes, more than %d", held, LogMaxBytes)
	}
	if entries[len(entries)-1].Seq != 2000 {
		t.Fatalf("the newest entry is missing")
	}
	tail, _ := l.Read(0, 3)
	if len(tail) != 3 || tail[0].Seq != 1998 {
		t.Fatalf("tail 3 = %+v", tail)
	}
	after, _ := l.Read(1999, 0)
	if len(after) != 1 || after[0].Seq != 2000 {
		t.Fatalf("since 1999 = %+v", after)
	}
}
