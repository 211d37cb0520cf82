package main

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/framewire/framewire/engine/cluster/registry/registrytest"
	"github.com/framewire/framewire/engine/httpserve/httpservetest"
)

// runFront runs the front in this process (run, as the binary does) on a
// free loopback port with a real Redis and args added to the required
// flags; it returns the address.
func runFront(t *testing.T, args ...string) string {
	t.Helper()
	rd := registrytest.Start(t)
	dir := t.TempDir()
	secret, keys := filepath.Join(dir, "secret"), filepath.Join(dir, "keys")
	must(t, os.WriteFile(secret, []byte("flood-test-secret-0123456789abcdef"), 0o600))
	must(t, os.WriteFile(keys, []byte("acme:acme-key-0123456789\n"), 0o600))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	addr := ln.Addr().String()
	ln.Close() // run listens itself; the port is free again
	o, err := parseFlags(append([]string{"-addr", addr, "-redis", rd.Addr, "-jwt-secret-file", secret, "-keys-file", keys, "-drain", "1s"}, args...))
	must(t, err)
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, o, slog.New(slog.DiscardHandler)) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("front not listening on %s after 10 s: %v", addr, err)
		}
		time.Sleep(10 * time.Millisecond) // poll with a deadline
	}
}

// probe asserts /healthz and /metrics answer 200 within a second from a
// client outside the flood.
func probe(t *testing.T, addr string) {
	t.Helper()
	for _, path := range []string{"/healthz", "/metrics", "/healthz", "/metrics"} {
		code, body, took := httpservetest.Get(t, "127.0.0.3", addr, path)
		if code != http.StatusOK || took > time.Second {
			t.Errorf("GET %s under the flood: %d %.80q after %v; want 200 within 1 s", path, code, body, took.Round(time.Millisecond))
		}
	}
}

// A slow-connection flood over the front's connection cap, from many
// clients, sending headers or bodies slowly, and 1,100 idle keep-alive
// connections from one client: the front's /healthz and /metrics still
// answer within a second, and -read-timeout closes the slow ones.
func TestFrontUnderConnectionFlood(t *testing.T) {
	httpservetest.RaiseFDLimit(t, 8192)
	addr := runFront(t, "-max-conns", "200", "-max-conns-per-ip", "20", "-read-timeout", "1s")
	var slow []*httpservetest.Flood
	for _, kind := range []httpservetest.Kind{httpservetest.SlowHeaders, httpservetest.SlowBody} {
		slow = append(slow, httpservetest.Start(t, addr, httpservetest.IPs(50), 400, kind, "/sessions"))
		probe(t, addr)
	}
	for _, f := range slow {
		if alive := f.Alive(3 * time.Second); alive != 0 {
			t.Errorf("%d slow connections open 3 s past -read-timeout 1s", alive)
		}
	}
	keep := httpservetest.Start(t, addr, []string{"127.0.0.2"}, 1100, httpservetest.KeepAlive, "/healthz")
	if held := keep.Alive(200 * time.Millisecond); held > 20 {
		t.Errorf("one client holds %d connections; -max-conns-per-ip is 20", held)
	}
	probe(t, addr)
	_, body, _ := httpservetest.Get(t, "127.0.0.3", addr, "/metrics")
	for _, name := range []string{"framewire_http_connections_refused_total", "framewire_http_connections_evicted_total"} {
		if v := httpservetest.Metric(body, name); v <= 0 {
			t.Errorf("/metrics %s = %v after the floods; want > 0", name, v)
		}
	}
}

// The front takes the HTTP flags cmd/framewire takes.
func TestFrontSharedFlags(t *testing.T) {
	o, err := parseFlags([]string{"-max-conns", "7", "-max-conns-per-ip", "3", "-read-timeout", "2s", "-idle-timeout", "3s", "-header-timeout", "1s", "-max-upload", "1000"})
	must(t, err)
	if c := o.Flags.Config(nil); c.MaxConns != 7 || c.MaxConnsPerIP != 3 || c.ReadTimeout != 2*time.Second || c.IdleTimeout != 3*time.Second || c.ReadHeaderTimeout != time.Second || c.MaxBodyBytes != 1000+1<<20 {
		t.Errorf("config %+v", c)
	}
	if _, err := parseFlags([]string{"-max-conns", "0"}); err == nil {
		t.Error("-max-conns 0 accepted")
	}
	if _, err := parseFlags([]string{"extra"}); err == nil {
		t.Error("a stray argument accepted")
	}
}
