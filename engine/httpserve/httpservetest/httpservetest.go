// Package httpservetest holds hostile clients for tests of servers built
// on httpserve: connection floods from a chosen loopback source address
// (Linux routes all of 127.0.0.0/8 to lo, so 127.0.0.2 and 127.0.0.3 are
// two clients) and a timed GET from another one.
//
// Every function is safe for concurrent use; what it opens is closed by
// t.Cleanup or by the returned stop function.
package httpservetest

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// RaiseFDLimit raises the soft limit on open files to at least n (up to
// the hard limit) and skips t when the hard limit is lower.
func RaiseFDLimit(t testing.TB, n uint64) {
	t.Helper()
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		t.Skipf("getrlimit: %v", err)
	}
	if r.Cur >= n {
		return
	}
	if r.Max < n {
		t.Skipf("open-file hard limit %d < %d", r.Max, n)
	}
	r.Cur = n
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		t.Skipf("setrlimit: %v", err)
	}
}

// Dial connects to addr from the loopback source IP from (port chosen by
// the kernel).
func Dial(from, addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	return d.Dial("tcp", addr)
}

// Kind is what a flood's connections do once connected.
type Kind int

const (
	// KeepAlive connections make one GET of the flood's path, read the
	// answer and stay open, idle.
	KeepAlive Kind = iota
	// SlowHeaders connections send part of a request's headers and hold.
	SlowHeaders
	// SlowBody connections send a POST's headers with Content-Length 1 MiB
	// and one byte of body, and hold.
	SlowBody
)

func (k Kind) String() string {
	return [...]string{"keep-alive", "slow-headers", "slow-body"}[k]
}

// Flood is a set of connections held open against a server.
type Flood struct {
	mu     sync.Mutex
	conns  []net.Conn
	Opened int // connections that connected (and, for KeepAlive, got an answer)
}

// Start opens n connections of kind to addr, from the source IPs given in
// turn (one IP: one client), with up to 64 dials at once, and returns
// when all were tried. path is the KeepAlive GET's. Failed dials are not
// errors: a server may refuse them; Opened counts the others. The
// connections close at t's cleanup, or by Close.
func Start(t testing.TB, addr string, from []string, n int, kind Kind, path string) *Flood {
	t.Helper()
	f := &Flood{}
	t.Cleanup(f.Close)
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := Dial(from[i%len(from)], addr)
			if err != nil {
				return
			}
			if !f.hold(c, kind, addr, path) {
				c.Close()
				return
			}
			f.mu.Lock()
			f.conns = append(f.conns, c)
			f.Opened++
			f.mu.Unlock()
		}()
	}
	wg.Wait()
	return f
}

func (f *Flood) hold(c net.Conn, kind Kind, addr, path string) bool {
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	defer c.SetDeadline(time.Time{})
	switch kind {
	case KeepAlive:
		if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", path, addr); err != nil {
			return false
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return false
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK && !resp.Close
	case SlowHeaders:
		_, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nX-Slow: ", path, addr)
		return err == nil
	default:
		_, err := fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/octet-stream\r\nContent-Length: 1048576\r\n\r\nx", path, addr)
		return err == nil
	}
}

// Alive counts the flood's connections the server has not closed: a read
// that waits wait without an EOF or reset means open. It reads what the
// server sent meanwhile, so call it only once the flood is done sending.
func (f *Flood) Alive(wait time.Duration) int {
	f.mu.Lock()
	conns := append([]net.Conn(nil), f.conns...)
	f.mu.Unlock()
	var alive sync.WaitGroup
	var mu sync.Mutex
	n := 0
	for _, c := range conns {
		alive.Add(1)
		go func() {
			defer alive.Done()
			_ = c.SetReadDeadline(time.Now().Add(wait))
			_, err := io.Copy(io.Discard, c)
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				mu.Lock()
				n++
				mu.Unlock()
			}
		}()
	}
	alive.Wait()
	return n
}

// Close closes the flood's connections; it is idempotent.
func (f *Flood) Close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.conns {
		c.Close()
	}
	f.conns = nil
}

// Get makes one GET of path on a new connection from the source IP from
// and returns the status, the body and how long it took. A request that
// fails or does not answer within 10 s fails t.
func Get(t testing.TB, from, addr, path string) (int, string, time.Duration) {
	t.Helper()
	start := time.Now()
	c, err := Dial(from, addr)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, from, err)
	}
	defer c.Close()
	_ = c.SetDeadline(start.Add(10 * time.Second))
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path, addr); err != nil {
		t.Fatalf("GET %s from %s: %v", path, from, err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("GET %s from %s after %v: %v", path, from, time.Since(start).Round(time.Millisecond), err)
	}
	defer resp.Body.Close()
	var sb strings.Builder
	_, _ = io.Copy(&sb, io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, sb.String(), time.Since(start)
}

// Metric returns the value of the unlabelled series name in a Prometheus
// text exposition, or -1 when it is missing.
func Metric(text, name string) float64 {
	for _, l := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			var f float64
			if _, err := fmt.Sscan(v, &f); err == nil {
				return f
			}
		}
	}
	return -1
}

// IPs returns n loopback source addresses 127.0.<a>.<b>, starting at
// 127.0.1.1: n distinct clients.
func IPs(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("127.0.%d.%d", 1+i/250, 1+i%250)
	}
	return out
}
