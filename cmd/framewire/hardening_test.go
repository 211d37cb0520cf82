package main

import (
	"bufio"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/framewire/framewire/engine/httpserve/httpservetest"
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

// startNode runs `framewire -mode node` in this process (serveNode) with a
// real Redis and args added, once it has registered (and so is ready); it
// returns the address.
func startNode(t *testing.T, args ...string) string {
	t.Helper()
	addr, _ := startRegisteredNode(t, args...)
	return addr
}

// probeHealth asserts path and /metrics answer 200 within a second from a
// client outside the flood.
func probeHealth(t *testing.T, addr, path string) {
	t.Helper()
	for _, p := range []string{path, "/metrics", path, "/metrics"} {
		code, body, took := httpservetest.Get(t, "127.0.0.3", addr, p)
		if code != http.StatusOK || took > time.Second {
			t.Errorf("GET %s under the flood: %d %.80q after %v; want 200 within 1 s", p, code, body, took.Round(time.Millisecond))
		}
	}
}

// Issue 18: a slow-connection flood over a node's connection cap, from
// many clients: /healthz and /metrics answer within a second; 1,100
// keep-alive connections from one client do not lock another out.
func TestNodeUnderConnectionFlood(t *testing.T) {
	httpservetest.RaiseFDLimit(t, 8192)
	addr := startNode(t, "-max-conns", "200", "-max-conns-per-ip", "20")
	for _, kind := range []httpservetest.Kind{httpservetest.SlowHeaders, httpservetest.SlowBody} {
		httpservetest.Start(t, addr, httpservetest.IPs(50), 400, kind, "/node/sessions")
		probeHealth(t, addr, "/healthz")
	}
	keep := httpservetest.Start(t, addr, []string{"127.0.0.2"}, 1100, httpservetest.KeepAlive, "/healthz")
	if held := keep.Alive(200 * time.Millisecond); held > 20 {
		t.Errorf("one client holds %d connections; -max-conns-per-ip is 20", held)
	}
	probeHealth(t, addr, "/healthz")
	wantCounted(t, addr, "framewire_http_connections_evicted_total")
}

// wantCounted asserts each of the /metrics counters names is above zero.
func wantCounted(t *testing.T, addr string, names ...string) {
	t.Helper()
	_, body, _ := httpservetest.Get(t, "127.0.0.3", addr, "/metrics")
	for _, name := range names {
		if v := httpservetest.Metric(body, name); v <= 0 {
			t.Errorf("/metrics %s = %v after the flood; want > 0", name, v)
		}
	}
}

// Issue 18: -read-timeout closes slow connections in node mode too.
func TestNodeReadTimeout(t *testing.T) {
	addr := startNode(t, "-read-timeout", "500ms")
	for _, kind := range []httpservetest.Kind{httpservetest.SlowHeaders, httpservetest.SlowBody} {
		f := httpservetest.Start(t, addr, []string{"127.0.0.2"}, 20, kind, "/node/sessions")
		if alive := f.Alive(3 * time.Second); alive != 0 {
			t.Errorf("%s: %d of %d connections open 3 s past -read-timeout 500ms", kind, alive, f.Opened)
		}
	}
}

// Issue 18: in local mode, 1,100 idle keep-alive connections from one
// client (the default caps) leave another client served at once.
func TestLocalKeepAliveFloodFromOneClient(t *testing.T) {
	httpservetest.RaiseFDLimit(t, 8192)
	base := startServer(t, slog.New(slog.DiscardHandler))
	addr := strings.TrimPrefix(base, "http://")
	keep := httpservetest.Start(t, addr, []string{"127.0.0.2"}, 1100, httpservetest.KeepAlive, "/health")
	if held := keep.Alive(200 * time.Millisecond); held > 256 {
		t.Errorf("one client holds %d connections; the default -max-conns-per-ip is 256", held)
	}
	probeHealth(t, addr, "/health")
	wantCounted(t, addr, "framewire_http_connections_refused_total")
	code, _, took := httpservetest.Get(t, "127.0.0.3", addr, "/framewire/stats")
	if code != http.StatusOK || took > time.Second {
		t.Errorf("GET /framewire/stats from another client: %d after %v", code, took)
	}
}

// Issue 18: a server bound to loopback refuses foreign Host headers on
// every route (a DNS-rebinding page reads neither the stats, the metrics
// nor an SDP answer), in local and node mode; -allow-host names a proxy.
func TestForeignHostRefused(t *testing.T) {
	local := strings.TrimPrefix(startServer(t, slog.New(slog.DiscardHandler), "-allow-host", "proxy.example"), "http://")
	node := startNode(t)
	for _, tc := range []struct{ addr, method, path string }{
		{local, "GET", "/"}, {local, "GET", "/framewire/stats"}, {local, "GET", "/metrics"}, {local, "GET", "/health"},
		{local, "GET", "/sessions/x/transport/webrtc/sdp_params"}, {local, "POST", "/start_session"}, {local, "OPTIONS", "/start_session"},
		{node, "GET", "/healthz"}, {node, "GET", "/metrics"}, {node, "POST", "/node/sessions"},
	} {
		for host, want := range map[string]int{"evil.example:80": http.StatusMisdirectedRequest, tc.addr: 0} {
			r, _ := http.NewRequest(tc.method, "http://"+tc.addr+tc.path, nil)
			r.Host = host
			resp, err := http.DefaultClient.Do(r)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if (want != 0 && resp.StatusCode != want) || (want == 0 && resp.StatusCode == http.StatusMisdirectedRequest) {
				t.Errorf("%s %s with Host %s: %d", tc.method, tc.path, host, resp.StatusCode)
			}
		}
	}
	r, _ := http.NewRequest("GET", "http://"+local+"/health", nil)
	r.Host = "proxy.example"
	if resp, err := http.DefaultClient.Do(r); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("Host proxy.example with -allow-host proxy.example: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	http.DefaultClient.CloseIdleConnections()
}
