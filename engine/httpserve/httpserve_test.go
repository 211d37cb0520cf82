package httpserve_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/framewire/framewire/engine/httpserve"
	"github.com/framewire/framewire/engine/httpserve/httpservetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// blocked counts requests waiting in the test handler's /block.
var blocked atomic.Int32

// start serves a handler that answers "ok" on /healthz, /metrics and /,
// reads bodies on POST /upload, and blocks on /block until release is
// closed; it returns the address and the server.
func start(t *testing.T, cfg httpserve.Config, release <-chan struct{}) (string, *httpserve.Server) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	ok := func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") }
	mux.HandleFunc("GET /healthz", ok)
	mux.HandleFunc("GET /metrics", ok)
	mux.HandleFunc("GET /", ok)
	mux.HandleFunc("POST /upload", func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
			return
		}
		fmt.Fprintln(w, n)
	})
	mux.HandleFunc("GET /block", func(w http.ResponseWriter, r *http.Request) {
		blocked.Add(1)
		defer blocked.Add(-1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
		fmt.Fprintln(w, "released")
	})
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := httpserve.Start(ln, mux, cfg)
	t.Cleanup(func() {
		if err := s.Shutdown(); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return ln.Addr().String(), s
}

// quick asserts a GET of path from client answers 200 within a second.
func quick(t *testing.T, from, addr, path string) {
	t.Helper()
	code, body, took := httpservetest.Get(t, from, addr, path)
	if code != http.StatusOK || took > time.Second {
		t.Errorf("GET %s from %s: %d %q after %v; want 200 within 1 s", path, from, code, body, took.Round(time.Millisecond))
	}
}

// One client's 1,100 idle keep-alive connections do not lock another
// client out: the per-client cap refuses the first client's excess, and
// without a per-client cap the new client's connection evicts one of its
// idle ones.
func TestKeepAliveFloodFromOneClient(t *testing.T) {
	httpservetest.RaiseFDLimit(t, 8192)
	for _, perIP := range []int{256, 0} {
		t.Run(fmt.Sprint("per-ip=", perIP), func(t *testing.T) {
			addr, s := start(t, httpserve.Config{MaxConns: 1024, MaxConnsPerIP: perIP}, nil)
			f := httpservetest.Start(t, addr, []string{"127.0.0.2"}, 1100, httpservetest.KeepAlive, "/")
			t.Logf("client 1 holds %d keep-alive connections; server: %+v", f.Opened, s.Stats())
			if perIP > 0 && f.Opened > perIP {
				t.Errorf("client 1 holds %d connections; the per-client cap is %d", f.Opened, perIP)
			}
			for range 20 {
				quick(t, "127.0.0.3", addr, "/")
			}
			quick(t, "127.0.0.3", addr, "/healthz")
		})
	}
}

// A flood of slow connections from many clients, over the connection cap,
// sending headers or a body slowly: health and metrics still answer
// within a second (a slow-header connection is evicted; with every
// connection in a handler, the new one is served over the cap for the
// priority routes only), and other routes answer 503 rather than hang.
func TestSlowFloodKeepsHealthAnswerable(t *testing.T) {
	httpservetest.RaiseFDLimit(t, 8192)
	for _, kind := range []httpservetest.Kind{httpservetest.SlowHeaders, httpservetest.SlowBody} {
		t.Run(fmt.Sprint("kind=", kind), func(t *testing.T) {
			addr, s := start(t, httpserve.Config{MaxConns: 200, MaxConnsPerIP: 20}, nil)
			httpservetest.Start(t, addr, httpservetest.IPs(50), 400, kind, "/upload")
			t.Logf("server: %+v", s.Stats())
			for range 5 {
				quick(t, "127.0.0.3", addr, "/healthz")
				quick(t, "127.0.0.3", addr, "/metrics")
			}
		})
	}
}

// blockAll has one blocking request in a handler from each of ips (the
// server's cap is len(ips), one per client): nothing can be evicted. The
// requests end at the test's cleanup.
func blockAll(t *testing.T, addr string, s *httpserve.Server, ips []string, release chan struct{}) {
	t.Helper()
	done := make(chan struct{})
	for _, ip := range ips {
		go func() {
			defer func() { done <- struct{}{} }()
			httpservetest.Get(t, ip, addr, "/block")
		}()
	}
	t.Cleanup(func() {
		close(release)
		for range ips {
			<-done
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for s.Stats().Open < int64(len(ips)) || blocked.Load() < int32(len(ips)) {
		if time.Now().After(deadline) {
			t.Fatalf("%d blocking requests not all in their handlers after 10 s: %+v, %d", len(ips), s.Stats(), blocked.Load())
		}
		time.Sleep(5 * time.Millisecond) // poll with a deadline
	}
}

// waitStats waits up to 10 s for the server's stats to satisfy ok (the
// accept loop runs behind the clients' dials).
func waitStats(t *testing.T, s *httpserve.Server, what string, ok func(httpserve.Stats) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok(s.Stats()) {
		if time.Now().After(deadline) {
			t.Fatalf("not %s after 10 s: %+v", what, s.Stats())
		}
		time.Sleep(5 * time.Millisecond) // poll with a deadline
	}
}

// With every connection in a handler nothing can be evicted: a new
// connection is served over the cap, the priority routes only, once.
func TestOverCapServesPriorityRoutesOnly(t *testing.T) {
	release := make(chan struct{})
	addr, s := start(t, httpserve.Config{MaxConns: 10, MaxConnsPerIP: 1}, release)
	blockAll(t, addr, s, httpservetest.IPs(10), release)
	quick(t, "127.0.0.3", addr, "/healthz")
	quick(t, "127.0.0.3", addr, "/metrics")
	code, _, took := httpservetest.Get(t, "127.0.0.4", addr, "/")
	if code != http.StatusServiceUnavailable || took > time.Second {
		t.Errorf("GET / over the cap: %d after %v; want 503 at once", code, took)
	}
	if st := s.Stats(); st.Overflow != 3 || st.Evicted != 0 {
		t.Errorf("stats %+v: want 3 connections served over the cap, none evicted", st)
	}
}

// When the clients holding the server's connections also fill every place
// over the cap with connections that never finish their request, a client
// holding no connection still gets its health check answered (it takes
// the oldest such place), and the flooding clients' next connection is
// refused. This is the state a slow flood reaches when the server's
// goroutines run late (a clean-clone run under -race on two cores).
func TestFullOverflowPoolYieldsToNewClient(t *testing.T) {
	release := make(chan struct{})
	addr, s := start(t, httpserve.Config{MaxConns: 40, MaxConnsPerIP: 1}, release)
	ips := httpservetest.IPs(40)
	blockAll(t, addr, s, ips, release)
	f := httpservetest.Start(t, addr, ips[:32], 64, httpservetest.SlowHeaders, "/")
	waitStats(t, s, "64 slow connections from 32 holding clients over the cap", func(st httpserve.Stats) bool { return st.Overflow == 64 && st.Open == 40+64 })
	quick(t, "127.0.0.3", addr, "/healthz")
	if st := s.Stats(); st.Evicted != 1 || st.Overflow != 65 {
		t.Errorf("stats %+v: want the health check served over the cap in place of one evicted slow connection", st)
	}
	if alive := f.Alive(100 * time.Millisecond); alive != 63 {
		t.Errorf("%d of the 64 slow connections open; want 63 (one evicted)", alive)
	}
	httpservetest.Start(t, addr, ips[32:33], 1, httpservetest.SlowHeaders, "/")
	waitStats(t, s, "the pool full again", func(st httpserve.Stats) bool { return st.Overflow == 66 && st.Open == 40+64 })
	code, body, _ := httpservetest.Get(t, ips[39], addr, "/healthz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "connection limit") {
		t.Errorf("GET /healthz from a client holding a connection, the pool full: %d %q; want 503 at the limit", code, body)
	}
}

// -read-timeout closes connections that hold a request.
func TestReadTimeoutClosesSlowConnections(t *testing.T) {
	addr, _ := start(t, httpserve.Config{ReadTimeout: 300 * time.Millisecond}, nil)
	var floods []*httpservetest.Flood
	for _, kind := range []httpservetest.Kind{httpservetest.SlowHeaders, httpservetest.SlowBody} {
		floods = append(floods, httpservetest.Start(t, addr, []string{"127.0.0.2"}, 20, kind, "/upload"))
	}
	for _, f := range floods {
		if alive := f.Alive(3 * time.Second); alive != 0 {
			t.Errorf("%d of %d slow connections open 3 s past a 300 ms read timeout", alive, f.Opened)
		}
	}
}

// Bodies over the cap are refused: by Content-Length before the handler,
// chunked ones when read.
func TestBodyCap(t *testing.T) {
	addr, _ := start(t, httpserve.Config{MaxBodyBytes: 1000}, nil)
	for _, tc := range []struct {
		size    int
		chunked bool
		want    int
	}{{1000, false, 200}, {1001, false, 413}, {5000, true, 413}} {
		req, _ := http.NewRequest("POST", "http://"+addr+"/upload", strings.NewReader(strings.Repeat("x", tc.size)))
		if tc.chunked {
			req.ContentLength = -1
			req.Body = io.NopCloser(strings.NewReader(strings.Repeat("x", tc.size)))
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%d-byte body (chunked %v): %d, want %d", tc.size, tc.chunked, resp.StatusCode, tc.want)
		}
	}
	http.DefaultClient.CloseIdleConnections()
}

// Shutdown lets a request in flight finish, and cuts it at the deadline.
func TestGracefulShutdown(t *testing.T) {
	for _, finish := range []bool{true, false} {
		release := make(chan struct{})
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		started := make(chan struct{})
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			close(started)
			select {
			case <-release:
			case <-r.Context().Done():
			}
			fmt.Fprintln(w, "released")
		})
		ctx, cancel := context.WithCancel(context.Background())
		served := make(chan error, 1)
		go func() {
			served <- httpserve.Serve(ctx, ln, h, httpserve.Config{ShutdownTimeout: 300 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
		}()
		got := make(chan error, 1)
		go func() {
			resp, err := http.Get("http://" + ln.Addr().String() + "/")
			if err == nil {
				resp.Body.Close()
			}
			got <- err
		}()
		<-started
		cancel()
		t0 := time.Now()
		if finish {
			close(release)
		}
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
		err = <-got
		switch {
		case finish && err != nil:
			t.Errorf("a request in flight was cut by a graceful shutdown: %v", err)
		case !finish && err == nil:
			t.Error("a request past the shutdown deadline still answered")
		case time.Since(t0) > 3*time.Second:
			t.Errorf("shutdown took %v with a 300 ms deadline", time.Since(t0))
		}
		if !finish {
			close(release)
		}
		http.DefaultClient.CloseIdleConnections()
	}
}

// A serving failure ends Serve with the error.
func TestServeReportsListenerFailure(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	err = httpserve.Serve(context.Background(), ln, http.NotFoundHandler(), httpserve.Config{Logger: slog.New(slog.DiscardHandler)})
	if err == nil || errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Serve on a closed listener: %v", err)
	}
}

func TestFlags(t *testing.T) {
	var f httpserve.Flags
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	f.Register(fs, "127.0.0.1:1")
	other := fs.Bool("capacity", false, "")
	_ = other
	if err := fs.Parse([]string{"-max-conns", "10", "-max-conns-per-ip", "3", "-read-timeout", "2s", "-capacity"}); err != nil {
		t.Fatal(err)
	}
	c := f.Config(nil)
	if c.MaxConns != 10 || c.MaxConnsPerIP != 3 || c.ReadTimeout != 2*time.Second || c.ReadHeaderTimeout != 2*time.Second || c.MaxBodyBytes != 100<<20+1<<20 {
		t.Errorf("config %+v", c)
	}
	err := httpserve.RefuseFlags(fs, map[string]string{"capacity": "applies to -mode node only", "redis": "x"})
	if err == nil || err.Error() != "-capacity: applies to -mode node only" {
		t.Errorf("RefuseFlags: %v", err)
	}
	f.MaxConns = 0
	if f.Check() == nil {
		t.Error("-max-conns 0 accepted")
	}
}

// Preflight answers 204 with the API's methods, the given and requested
// headers and the max age, keeping what the caller set.
func TestPreflight(t *testing.T) {
	r := httptest.NewRequest("OPTIONS", "/sessions", nil)
	r.Header.Set("Access-Control-Request-Headers", "X-Extra")
	w := httptest.NewRecorder()
	w.Header().Set("Access-Control-Allow-Origin", "*")
	httpserve.Preflight(w, r, "Authorization, Content-Type", 2*time.Hour)
	h := w.Result().Header
	if w.Code != 204 || h.Get("Access-Control-Allow-Headers") != "Authorization, Content-Type, X-Extra" ||
		h.Get("Access-Control-Max-Age") != "7200" || !strings.Contains(h.Get("Access-Control-Allow-Methods"), "DELETE") ||
		h.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("preflight: %d %v", w.Code, h)
	}
}

// hostGet makes a GET of path on addr with the Host header host and
// returns the status.
func hostGet(t *testing.T, addr, path, host string) int {
	t.Helper()
	r, _ := http.NewRequest("GET", "http://"+addr+path, nil)
	r.Host = host
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// A server listening on loopback answers only localhost names, loopback
// IPs and the hosts it is told (DNS rebinding: a foreign page whose name
// resolves to 127.0.0.1 reads nothing, health and metrics included); one
// listening beyond loopback answers any Host.
func TestForeignHostOnLoopback(t *testing.T) {
	defer http.DefaultClient.CloseIdleConnections()
	addr, _ := start(t, httpserve.Config{AllowHosts: []string{"proxy.example"}}, nil)
	_, port, _ := net.SplitHostPort(addr)
	for host, want := range map[string]int{
		"evil.example:" + port: 421, "evil.example": 421, "127.0.0.1.evil.example": 421,
		"localhost:" + port: 200, "app.localhost:" + port: 200, "127.0.0.1:" + port: 200, "127.1.2.3": 200, "[::1]:" + port: 200,
		"proxy.example": 200, "PROXY.example:443": 200,
	} {
		for _, path := range []string{"/", "/healthz", "/metrics"} {
			if got := hostGet(t, addr, path, host); got != want {
				t.Errorf("GET %s with Host %s: %d, want %d", path, host, got, want)
			}
		}
	}

	ln, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Skip(err)
	}
	s := httpserve.Start(ln, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}), httpserve.Config{Logger: slog.New(slog.DiscardHandler)})
	defer s.Shutdown()
	_, port, _ = net.SplitHostPort(ln.Addr().String())
	if got := hostGet(t, "127.0.0.1:"+port, "/", "app.example.com"); got != 200 {
		t.Errorf("a server on every interface refused Host app.example.com: %d", got)
	}
}
