package localaws

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// Invocation records one function invocation, for tests to inspect.
type Invocation struct {
	Function  string
	RequestID string
	Payload   []byte // request payload as received ({} for an empty request)
	// Response is the result payload, or the error body
	// ({"errorType":...,"errorMessage":...}) when ErrorType is set.
	Response     []byte
	ErrorType    string
	ErrorMessage string
	// Start is when a process took the invocation up (after Wait for a free one), and
	// Duration the time from then to the answer, including a cold start.
	Start    time.Time
	Duration time.Duration
	Wait     time.Duration
	Instance int // runtime process that served it; 0 for in-process handlers
}

// LogLine is one line written by a function's process, or a START/END/REPORT line of the
// endpoint itself (Stream "platform").
type LogLine struct {
	Time     time.Time
	Function string
	Instance int
	Stream   string // "stdout", "stderr" or "platform"
	Text     string
}

// ColdStart is the time from starting a function process to its first call of
// /runtime/invocation/next, i.e. until the runtime was ready for work.
type ColdStart struct {
	Function string
	Instance int
	Start    time.Time
	Ready    time.Duration
}

// recorder keeps bounded histories of invocations, log lines and cold starts.
type recorder struct {
	mu          sync.Mutex
	max         int
	invocations []Invocation
	logs        []LogLine
	coldStarts  []ColdStart
	out         io.Writer // optional live copy of log lines
}

func appendBounded[T any](s []T, v T, max int) []T {
	if len(s) >= max {
		n := copy(s, s[len(s)-max+1:])
		s = s[:n]
	}
	return append(s, v)
}

func (r *recorder) invocation(inv Invocation) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.invocations = appendBounded(r.invocations, inv, r.max)
}

func (r *recorder) log(l LogLine) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.logs = appendBounded(r.logs, l, r.max)
	switch {
	case r.out == nil:
	case l.Instance == 0:
		fmt.Fprintf(r.out, "%s %s\n", l.Function, l.Text)
	default:
		fmt.Fprintf(r.out, "%s[%d] %s\n", l.Function, l.Instance, l.Text)
	}
}

func (r *recorder) coldStart(c ColdStart) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.coldStarts = appendBounded(r.coldStarts, c, r.max)
}

func (r *recorder) allInvocations() []Invocation {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Invocation(nil), r.invocations...)
}

func (r *recorder) allLogs() []LogLine {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]LogLine(nil), r.logs...)
}

func (r *recorder) allColdStarts() []ColdStart {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]ColdStart(nil), r.coldStarts...)
}
