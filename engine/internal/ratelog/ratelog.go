// Package ratelog bounds how often a class of log lines is written, for
// lines a client can cause at will (rejected commands, dropped messages):
// a burst per window, then a count of what was suppressed, reported on
// the next line allowed.
package ratelog

import (
	"fmt"
	"sync"
	"time"
)

// Limiter allows Burst lines per Window. The zero value allows 10 lines
// per 10 s. It is safe for concurrent use.
type Limiter struct {
	Burst  int
	Window time.Duration

	mu         sync.Mutex
	start      time.Time
	n          int
	suppressed uint64
}

// Allow reports whether a line may be written now and, when it may, how
// many lines were suppressed since the last one written.
func (l *Limiter) Allow() (ok bool, suppressed uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	burst, window := l.Burst, l.Window
	if burst <= 0 {
		burst = 10
	}
	if window <= 0 {
		window = 10 * time.Second
	}
	now := time.Now()
	if now.Sub(l.start) >= window {
		l.start, l.n = now, 0
	}
	if l.n >= burst {
		l.suppressed++
		return false, 0
	}
	l.n++
	suppressed, l.suppressed = l.suppressed, 0
	return true, suppressed
}

// Truncate cuts a client-supplied string to at most n bytes (plus a note
// of its length) for a log line or an error reply.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + fmt.Sprintf("…(%d bytes)", len(s))
}
