package main

import (
	"bufio"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"
)

// readUntilClosed waits until the server closes conn (or answers on it
// and then closes it) and returns what it sent. It gives up after within,
// which only bounds a failing test.
func readUntilClosed(t *testing.T, conn net.Conn, within time.Duration) (string, bool) {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(within))
	var sb strings.Builder
	br := bufio.NewReader(conn)
	for {
		line, err := br.ReadString('\n')
		sb.WriteString(line)
		if err != nil {
			var ne net.Error
			if ok := asNetErr(err, &ne); ok && ne.Timeout() {
				return sb.String(), false
			}
			return sb.String(), true
		}
	}
}

func asNetErr(err error, ne *net.Error) bool {
	e, ok := err.(net.Error)
	if ok {
		*ne = e
	}
	return ok
}

// A client cannot hold a connection: a slow body meets the read deadline
// and an idle keep-alive connection is closed (issue 12, defect 2).
func TestHeldConnectionsAreClosed(t *testing.T) {
	base := startServer(t, slog.New(slog.DiscardHandler), "-read-timeout", "300ms", "-idle-timeout", "300ms")
	host := strings.TrimPrefix(base, "http://")

	slow, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fmt.Fprintf(slow, "POST /start_session HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{", host)
	if got, closed := readUntilClosed(t, slow, 20*time.Second); !closed {
		t.Errorf("a request body held open was not cut off (got %q)", got)
	}

	idle, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	fmt.Fprintf(idle, "GET /health HTTP/1.1\r\nHost: %s\r\n\r\n", host)
	if got, closed := readUntilClosed(t, idle, 20*time.Second); !closed || !strings.Contains(got, "200 OK") {
		t.Errorf("idle keep-alive connection: closed=%v after %q; want a 200, then the server closing it", closed, got)
	}
}
