package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/framewire/framewire/engine/cluster/registry/registrytest"
	"github.com/framewire/framewire/engine/enginetest"
)

// TestDrain: on SIGTERM (run's context ending) the front answers /readyz
// 503 while it still serves every other route, a request in flight (a
// POST /sessions whose body is still arriving) finishes with its answer,
// and then run returns.
func TestDrain(t *testing.T) {
	r := registrytest.Start(t)
	dir := t.TempDir()
	secret, keys := filepath.Join(dir, "secret"), filepath.Join(dir, "keys")
	must(t, os.WriteFile(secret, []byte("drain-test-secret-0123456789abcdef"), 0o600))
	must(t, os.WriteFile(keys, []byte("acme:acme-key-0123456789\n"), 0o600))
	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	o, err := parseFlags([]string{"-addr", fmt.Sprint("127.0.0.1:", port), "-redis", r.Addr, "-jwt-secret-file", secret, "-keys-file", keys,
		"-models", "framewire-demo", "-drain-delay", "2s", "-drain", "10s"})
	must(t, err)
	ctx, sigterm := context.WithCancel(context.Background())
	defer sigterm()
	done := make(chan error, 1)
	go func() { done <- run(ctx, o, slog.New(slog.DiscardHandler)) }()
	get := func(path string) int {
		resp, err := http.Get(base + path)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	enginetest.Eventually(t, 10*time.Second, "front ready", func() bool { return get("/readyz") == 200 })
	code, body := enginetest.Do(t, base, "POST", "/tokens", nil, map[string]string{"Reactor-API-Key": "acme-key-0123456789"})
	if code != 200 {
		t.Fatalf("tokens: %d %s", code, body)
	}
	tok := string(body[strings.Index(string(body), `"jwt":"`)+7:])
	tok = tok[:strings.Index(tok, `"`)]

	// A request in flight: its body arrives in two halves.
	pr, pw := io.Pipe()
	req, _ := http.NewRequest("POST", base+"/sessions", pr)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	answer := make(chan int, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			answer <- 0
			return
		}
		resp.Body.Close()
		answer <- resp.StatusCode
	}()
	half := len(createBody) / 2
	_, err = pw.Write([]byte(createBody[:half]))
	must(t, err)

	sigterm()
	enginetest.Eventually(t, 2*time.Second, "/readyz 503 while draining", func() bool { return get("/readyz") == 503 })
	if c := get("/healthz"); c != 200 {
		t.Errorf("/healthz while draining: %d, want 200 (still served)", c)
	}
	_, err = pw.Write([]byte(createBody[half:]))
	must(t, err)
	must(t, pw.Close())
	if c := <-answer; c != http.StatusCreated {
		t.Errorf("request in flight at SIGTERM: %d, want 201", c)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("front did not exit after draining")
	}
	if c := get("/healthz"); c != 0 {
		t.Errorf("after the drain /healthz answered %d", c)
	}
}

// TestFlags: the lifetimes are flags, handed to the front.
func TestFlags(t *testing.T) {
	o, err := parseFlags([]string{"-session-ttl", "2h", "-ended-ttl", "10s", "-reconnect-window", "45s", "-drain-delay", "1s"})
	must(t, err)
	if o.sessionTTL != 2*time.Hour || o.endedTTL != 10*time.Second || o.reconnectWindow != 45*time.Second || o.drainDelay != time.Second {
		t.Errorf("parsed %+v", o)
	}
}
