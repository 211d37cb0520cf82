package host_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/framewire/framewire/engine/enginetest"
	"github.com/framewire/framewire/engine/host"
)

// A server listening on loopback refuses every request whose Host is not
// a loopback name, on every route: a DNS-rebinding page (evil.example
// resolving to 127.0.0.1) sends its own name as Host, and its GETs carry
// no Origin, so before this it could read /framewire/stats (session ids),
// /metrics and SDP answers.
func TestLoopbackServerRefusesForeignHost(t *testing.T) {
	o, err := host.Parse("grey", []string{"-addr", "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- host.Serve(ctx, ln, enginetest.GreyModel(64, 48), o, slog.New(slog.DiscardHandler)) }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return within 10 s of its context ending")
		}
	}()
	get := func(method, path, hostHeader string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader("{}"))
		req.Header.Set("Content-Type", "application/json")
		if hostHeader != "" {
			req.Host = hostHeader
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	enginetest.Eventually(t, 10*time.Second, "serving", func() bool {
		resp, err := http.Get(base + "/health")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == 200
	})
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	for _, r := range [][2]string{
		{"GET", "/framewire/stats"}, {"GET", "/metrics"}, {"GET", "/health"}, {"GET", "/"},
		{"POST", "/start_session"}, {"GET", "/sessions/x/transport/webrtc/sdp_params"}, {"PUT", "/uploads/x"},
	} {
		if code, body := get(r[0], r[1], "evil.example:"+port); code != http.StatusMisdirectedRequest || !strings.Contains(body, "-allow-host") {
			t.Errorf("%s %s with Host evil.example: %d %.200s, want 421 naming -allow-host (engine/httpserve)", r[0], r[1], code, body)
		}
	}
	for _, h := range []string{"localhost:" + port, "127.0.0.1:" + port, "app.localhost:" + port} {
		if code, body := get("GET", "/framewire/stats", h); code != http.StatusOK {
			t.Errorf("GET /framewire/stats with Host %s: %d %.200s, want 200", h, code, body)
		}
	}
}
