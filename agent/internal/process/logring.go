package process

import (
	"fmt"
	"strings"
	"sync"
	"time"
)

// The instance log: one bounded ring of everything the background processes wrote (stdout and
// stderr, tagged with the pid) and a line when each started and when it ended. A process's own
// replay buffer goes with its record once it is pruned; this ring keeps the recent history of
// the whole instance, so `faas instance logs` still shows why a server died after its caller
// has gone. Oldest entries are dropped first once LogMaxBytes is held.

// LogMaxBytes bounds the data held by the instance log.
const LogMaxBytes = 1 << 20

// LogEntry is one piece of the instance log.
type LogEntry struct {
	Seq    uint64 `json:"seq"`
	Time   string `json:"time"`
	Pid    int    `json:"pid"`
	Stream string `json:"stream"` // stdout, stderr, or agent (start and exit lines)
	Data   string `json:"data"`
}

type logRing struct {
	mu      sync.Mutex
	entries []LogEntry
	bytes   int
	next    uint64
}

// Log is the instance log of this agent.
var Log = &logRing{next: 1}

func (l *logRing) add(pid int, stream, data string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries = append(l.entries, LogEntry{Seq: l.next, Time: time.Now().UTC().Format(TimeFormat), Pid: pid, Stream: stream, Data: data})
	l.next++
	l.bytes += len(data)
	drop := 0
	for l.bytes > LogMaxBytes && len(l.entries)-drop > 1 {
		l.bytes -= len(l.entries[drop].Data)
		drop++
	}
	if drop > 0 {
		l.entries = append([]LogEntry(nil), l.entries[drop:]...)
	}
}

// Read returns the entries after seq `since`, at most the last `tail` of them (0: all), and the
// seq to ask from next time.
func (l *logRing) Read(since uint64, tail int) ([]LogEntry, uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	i := 0
	for i < len(l.entries) && l.entries[i].Seq <= since {
		i++
	}
	out := l.entries[i:]
	if tail > 0 && len(out) > tail {
		out = out[len(out)-tail:]
	}
	return append([]LogEntry{}, out...), l.next - 1
}

func describe(spec *Spec) string {
	if spec.Command != nil {
		return *spec.Command
	}
	return strings.Join(spec.Argv, " ")
}

func logStart(pid int, spec *Spec) {
	Log.add(pid, "agent", fmt.Sprintf("started: %s\n", describe(spec)))
}

func logExit(c *Child) {
	st := c.Status()
	how := fmt.Sprintf("exit code %d", st.ExitCode())
	if st.WS.Signaled() {
		how = fmt.Sprintf("killed by signal %d (%s)", int(st.WS.Signal()), st.WS.Signal())
	}
	if c.TimedOut() {
		how += " (its timeout ran out)"
	}
	Log.add(c.Pid, "agent", fmt.Sprintf("exited: %s\n", how))
}
