package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/framewire/framewire/engine/cluster/auth"
	"github.com/framewire/framewire/engine/cluster/front"
	"github.com/framewire/framewire/engine/cluster/registry"
	"github.com/framewire/framewire/engine/cluster/registry/registrytest"
)

// startProduction runs production mode in this process: a real Redis, an
// engine node of the demo model (serveNode, as `framewire -mode node`) and
// a front; it returns the front's URL, the issuer and the store.
func startProduction(t *testing.T, log *slog.Logger) (string, *auth.Issuer, *registry.Store) {
	t.Helper()
	url, _, issuer, store := startProductionNode(t, log, 2)
	return url, issuer, store
}

// startProductionNode is startProduction with a node of the given
// capacity; it also returns the node's URL.
func startProductionNode(t *testing.T, log *slog.Logger, capacity int) (string, string, *auth.Issuer, *registry.Store) {
	t.Helper()
	rd := registrytest.Start(t)
	store := registry.New(rd.Client(t), "")
	secretFile := filepath.Join(t.TempDir(), "secret")
	secret := []byte("browser-test-secret-0123456789abcdef")
	if err := os.WriteFile(secretFile, secret, 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o, err := parseFlags([]string{"-mode", "node", "-redis", rd.Addr, "-jwt-secret-file", secretFile, "-capacity", fmt.Sprint(capacity),
		"-heartbeat", "200ms", "-ttl", "1s", "-reconnect-window", "3s", "-drain-timeout", "2s"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- serveNode(ctx, ln, o, log) }()
	t.Cleanup(func() {
		stop()
		if err := <-served; err != nil {
			t.Errorf("serveNode: %v", err)
		}
	})
	url, issuer := startFront(t, store, secret, "framewire-demo", log)
	return url, "http://" + ln.Addr().String(), issuer, store
}

// startFront runs a front for model over store, sharing secret with the
// nodes and taking the API key mintToken uses; it returns its URL.
func startFront(t *testing.T, store *registry.Store, secret []byte, model string, log *slog.Logger) (string, *auth.Issuer) {
	t.Helper()
	issuer, err := auth.NewIssuer(secret)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := auth.ParseKeys("acme:acme-key-0123456789")
	if err != nil {
		t.Fatal(err)
	}
	f, err := front.New(front.Config{Store: store, Issuer: issuer, Keys: keys, Models: []string{model}, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	fs := httptest.NewServer(f)
	t.Cleanup(fs.Close)
	return fs.URL, issuer
}

// mintToken is what an app backend does: POST /tokens with its API key.
func mintToken(t *testing.T, frontURL string) string {
	req, _ := http.NewRequest("POST", frontURL+"/tokens", strings.NewReader(`{"expires_after": 600}`))
	req.Header.Set("Reactor-API-Key", "acme-key-0123456789")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct {
		JWT string `json:"jwt"`
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || json.Unmarshal(b, &r) != nil || r.JWT == "" {
		t.Fatalf("tokens: %d %s", resp.StatusCode, b)
	}
	return r.JWT
}

// TestBrowserSDKProduction drives the real @reactor-team/js-sdk 2.9.0 in
// headless Chromium in production mode (local false, apiUrl = a front,
// connect(jwt) with a token from /tokens): ready through the coordinator
// API, video from the node, a command and its reply, an upload through the
// front's presigned URL read by the model, disconnect(true) + reconnect()
// into the same session, and disconnect() deleting it.
func TestBrowserSDKProduction(t *testing.T) {
	needBrowser(t)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	frontURL, _, store := startProduction(t, log)
	jwt := mintToken(t, frontURL)

	eval, _ := openHarnessWithin(t, 90*time.Second)

	var readyMs float64
	eval("connect(jwt)", fmt.Sprintf(`fw.connect(%q, "framewire-demo", %q)`, frontURL, jwt), &readyMs)
	var statuses []string
	eval("statuses", `fw.state.statuses`, &statuses)
	if strings.Join(statuses, ",") != "disconnected,connecting,waiting,ready" {
		t.Fatalf("status sequence %v", statuses)
	}
	var sid string
	eval("session id", `fw.sessionId()`, &sid)
	var f struct {
		FPS           float64 `json:"fps"`
		Width, Height int
	}
	eval("main_video frames", `fw.frames(2000)`, &f)
	t.Logf("production connect(jwt) to ready: %.0f ms; main_video at %.1f fps", readyMs, f.FPS)
	if f.FPS < 10 {
		t.Errorf("main_video at %.1f fps", f.FPS)
	}
	var m map[string]any
	var n int
	eval("message count", `fw.state.messages.length`, &n)
	eval("set_color", `fw.command("set_color", {hue: 120, mode: "solid"})`, nil)
	eval("color_set", fmt.Sprintf(`fw.waitMessage("color_set", %d, 5000)`, n), &m)
	if m["hue"] != 120.0 {
		t.Errorf("color_set reply %v", m)
	}
	const text = "bytes through the front's presigned URL"
	eval("message count", `fw.state.messages.length`, &n)
	eval("upload", fmt.Sprintf(`fw.upload(%q)`, text), nil)
	eval("file_info", fmt.Sprintf(`fw.waitMessage("file_info", %d, 15000)`, n), &m)
	sum := sha256.Sum256([]byte(text))
	if m["sha256"] != hex.EncodeToString(sum[:]) {
		t.Errorf("file_info %v, want sha256 %x", m, sum)
	}

	eval("disconnect(true)", `fw.drop()`, nil)
	var reMs float64
	eval("reconnect", `fw.reconnect()`, &reMs)
	var sid2 string
	eval("session id", `fw.sessionId()`, &sid2)
	if sid2 != sid {
		t.Errorf("reconnect changed the session %q → %q", sid, sid2)
	}
	eval("frames after reconnect", `fw.frames(1500)`, &f)
	t.Logf("reconnect() to ready: %.0f ms; %.1f fps after", reMs, f.FPS)

	eval("disconnect()", `fw.disconnect()`, nil)
	waitTrue(t, 5*time.Second, "session CLOSED after disconnect()", func() bool {
		x, err := store.Session(context.Background(), sid)
		return err == nil && x.State == registry.StateClosed
	})
	var errs []any
	eval("errors", `fw.state.errors`, &errs)
	if len(errs) != 0 {
		t.Errorf("SDK reported errors: %v", errs)
	}

	// A new session dropped without DELETE outlives the reconnect window
	// (3 s here) no more: the node closes it, and reconnect() fails fast.
	eval("connect(jwt) again", fmt.Sprintf(`fw.connect(%q, "framewire-demo", %q)`, frontURL, jwt), &readyMs)
	eval("disconnect(true)", `fw.drop()`, nil)
	eval("session id", `fw.sessionId()`, &sid)
	waitTrue(t, 6*time.Second, "session CLOSED after the reconnect window", func() bool {
		x, err := store.Session(context.Background(), sid)
		return err == nil && x.State == registry.StateClosed
	})
	var failMs float64
	eval("reconnect after the window", `fw.reconnectFails()`, &failMs)
	t.Logf("reconnect() after the window: RECONNECTION_FAILED in %.0f ms", failMs)
	if failMs > 2000 {
		t.Errorf("RECONNECTION_FAILED after %.0f ms, want within 2 s", failMs)
	}
}

// TestBrowserSDKNodeThreeSessions: a node of capacity 3 runs three
// sessions of the real SDK 2.9.0 (three Chromium tabs) at once through a
// front, each with its own command and its own upload answered on its own
// session; the node's JSON stats list all three with their commands and
// /metrics counts three streaming sessions (no session label).
func TestBrowserSDKNodeThreeSessions(t *testing.T) {
	needBrowser(t)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	frontURL, nodeURL, _, _ := startProductionNode(t, log, 3)
	jwt := mintToken(t, frontURL)
	eval1, ctx1 := openHarnessWithin(t, 120*time.Second)
	evals := []func(string, string, any){eval1}
	for range 2 {
		tab, cancel := chromedp.NewContext(ctx1) // more tabs of the same browser
		defer cancel()
		if err := chromedp.Do(tab, chromedp.Navigate(chromedpLocation(t, ctx1))); err != nil {
			t.Fatal(err)
		}
		waitTrue(t, 10*time.Second, "harness loaded in another tab", func() bool {
			v, err := chromedp.Run(tab, chromedp.Evaluate[string](`typeof fw`))
			return err == nil && v == "object"
		})
		evals = append(evals, evaluator(t, tab))
	}
	sids := make([]string, len(evals))
	for i, eval := range evals {
		eval("connect(jwt)", fmt.Sprintf(`fw.connect(%q, "framewire-demo", %q)`, frontURL, jwt), nil)
		eval("session id", `fw.sessionId()`, &sids[i])
	}
	for i, eval := range evals {
		var m map[string]any
		var n int
		hue := 40 * (i + 1)
		eval("message count", `fw.state.messages.length`, &n)
		eval("set_color", fmt.Sprintf(`fw.command("set_color", {hue: %d, mode: "solid"})`, hue), nil)
		eval("color_set", fmt.Sprintf(`fw.waitMessage("color_set", %d, 5000)`, n), &m)
		if m["hue"] != float64(hue) {
			t.Errorf("session %s: color_set %v, want hue %d (its own command)", sids[i], m, hue)
		}
		text := fmt.Sprintf("upload of session %d through the front", i)
		eval("message count", `fw.state.messages.length`, &n)
		eval("upload", fmt.Sprintf(`fw.upload(%q)`, text), nil)
		eval("file_info", fmt.Sprintf(`fw.waitMessage("file_info", %d, 15000)`, n), &m)
		if sum := sha256.Sum256([]byte(text)); m["sha256"] != hex.EncodeToString(sum[:]) {
			t.Errorf("session %s: file_info %v, want the sha256 of its own upload %x", sids[i], m, sum)
		}
	}
	get := func(path string) []byte {
		resp, err := http.Get(nodeURL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return b
	}
	var doc struct {
		Sessions []struct {
			ID       string `json:"id"`
			State    string `json:"state"`
			Commands uint64 `json:"commands"`
		} `json:"sessions"`
	}
	if err := json.Unmarshal(get("/framewire/stats"), &doc); err != nil {
		t.Fatal(err)
	}
	listed := map[string]uint64{}
	for _, s := range doc.Sessions {
		if s.State == "streaming" {
			listed[s.ID] = s.Commands
		}
	}
	for _, sid := range sids {
		if c, ok := listed[sid]; !ok || c < 2 {
			t.Errorf("node stats %+v: session %s not listed streaming with its 2 commands", doc.Sessions, sid)
		}
	}
	if m := string(get("/metrics")); !strings.Contains(m, `framewire_session_state{state="streaming"} 3`) || strings.Contains(m, sids[0]) {
		t.Errorf("/metrics does not count 3 streaming sessions without naming them:\n%s", grepLines(m, "framewire_session_state"))
	}
	for _, eval := range evals {
		eval("disconnect()", `fw.disconnect()`, nil)
	}
}

// grepLines returns the lines of s containing sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// chromedpLocation is the URL of ctx's tab.
func chromedpLocation(t *testing.T, ctx context.Context) string {
	u, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	return u
}
