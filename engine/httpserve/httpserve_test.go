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

// With every connection in a handler nothing can be evicted: a new
// connection is served over the cap, the priority routes only, once.
func TestOverCapServesPriorityRoutesOnly(t *testing.T) {
	release := make(chan struct{})
	addr, s := start(t, httpserve.Config{MaxConns: 10, MaxConnsPerIP: 1}, release)
	done := make(chan struct{})
	for _, ip := range httpservetest.IPs(10) {
		go func() {
			defer func() { done <- struct{}{} }()
			httpservetest.Get(t, ip, addr, "/block")
		}()
	}
	defer func() {
		close(release)
		for range 10 {
			<-done
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for s.Stats().Open < 10 || blocked.Load() < 10 {
		if time.Now().After(deadline) {
			t.Fatalf("10 blocking requests not all in their handlers after 10 s: %+v, %d", s.Stats(), blocked.Load())
		}
		time.Sleep(5 * time.Millisecond) // poll with a deadline
	}
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
