package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/framewire/framewire/engine"
	"github.com/framewire/framewire/engine/wiring"
)

const (
	chromiumPath = "/usr/bin/chromium"
	bundlePath   = "web/dist/e2e.bundle.js"
)

// TestBrowserSDK drives the real @reactor-team/js-sdk 2.9.0 in headless
// Chromium against this binary's server and demo model. The page is served
// from another origin (port) than the engine, so every call is CORS.
// `make test` builds the bundle and sets FRAMEWIRE_E2E=1, which turns a
// missing browser or bundle into a failure instead of a skip.
func TestBrowserSDK(t *testing.T) {
	needBrowser(t)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	// The engine.
	engineURL := startServer(t, log, "-orphan-grace", "30s", "-ping-timeout", "20s")

	eval, _ := openHarnessWithin(t, 90*time.Second)

	// connect → ready.
	var readyMs float64
	eval("connect", fmt.Sprintf(`fw.connect(%q)`, engineURL), &readyMs)
	var statuses []string
	eval("statuses", `fw.state.statuses`, &statuses)
	if strings.Join(statuses, ",") != "disconnected,connecting,waiting,ready" {
		t.Fatalf("status sequence %v, want disconnected, connecting, waiting, ready", statuses)
	}
	var sid string
	eval("session id", `fw.sessionId()`, &sid)

	// main_video decoded at the emitted size and rate.
	type frames struct {
		FPS    float64 `json:"fps"`
		Width  int     `json:"width"`
		Height int     `json:"height"`
	}
	var f frames
	eval("main_video frames", `fw.frames(3000)`, &f)
	t.Logf("connect() to ready: %.0f ms; main_video %dx%d at %.1f fps in the browser", readyMs, f.Width, f.Height, f.FPS)
	if f.Width != demoW || f.Height != demoH {
		t.Errorf("main_video decoded at %dx%d, want %dx%d", f.Width, f.Height, demoW, demoH)
	}
	if f.FPS < 20 {
		t.Errorf("main_video at %.1f fps in the browser, want >= 20 for a 30 fps model", f.FPS)
	}

	// Webcam published with replaceTrack; the model reports what it sees.
	type msg map[string]any
	var m msg
	eval("publish webcam", `fw.publishWebcam()`, nil)
	eval("webcam report", `fw.waitMessage("webcam", 0, 10000)`, &m)
	if w, _ := m["width"].(float64); w <= 0 {
		t.Errorf("model reported webcam %v, want a positive width", m)
	}
	t.Logf("model sees the webcam: %v", m)

	// A command with number and string parameters changes the picture and
	// is answered with Send.
	var n int
	eval("message count", `fw.state.messages.length`, &n)
	eval("set_color", `fw.command("set_color", {hue: 120, mode: "solid"})`, nil)
	eval("color_set", fmt.Sprintf(`fw.waitMessage("color_set", %d, 5000)`, n), &m)
	if m["hue"] != 120.0 || m["mode"] != "solid" {
		t.Errorf("color_set reply %v, want hue 120, mode solid", m)
	}
	green := func() bool {
		var px []int
		eval("pixel", `fw.pixel(40, 40)`, &px)
		return len(px) == 3 && px[1] > px[0]+80 && px[1] > px[2]+80
	}
	waitTrue(t, 5*time.Second, "picture turns green after set_color", green)

	// requestCapabilities → modelCapabilities with every command.
	eval("requestCapabilities", `fw.requestCapabilities()`, &m)
	data, _ := m["data"].(map[string]any)
	if cmds, _ := data["commands"].([]any); len(cmds) != len(demoCommands) {
		t.Errorf("modelCapabilities lists %d commands, want %d: %v", len(cmds), len(demoCommands), m)
	}

	// Upload, then a command whose file parameter resolves to the bytes.
	const text = "hello framewire, bytes over PUT"
	eval("message count", `fw.state.messages.length`, &n)
	eval("upload", fmt.Sprintf(`fw.upload(%q)`, text), nil)
	eval("file_info", fmt.Sprintf(`fw.waitMessage("file_info", %d, 15000)`, n), &m)
	sum := sha256.Sum256([]byte(text))
	if m["sha256"] != hex.EncodeToString(sum[:]) || m["size"] != float64(len(text)) || m["name"] != "hello_world.txt" {
		t.Errorf("file_info %v, want size %d, sha256 %x, sanitised name hello_world.txt", m, len(text), sum)
	}

	// Recoverable disconnect, then reconnect(): same model session, video
	// flowing again (still green: the model's state survived).
	eval("drop transport", `fw.drop()`, nil)
	var st string
	eval("status", `fw.status()`, &st)
	if st != "disconnected" {
		t.Fatalf("status after recoverable disconnect %q", st)
	}
	var reMs float64
	eval("reconnect", `fw.reconnect()`, &reMs)
	var sid2 string
	eval("session id", `fw.sessionId()`, &sid2)
	if sid2 != sid {
		t.Errorf("reconnect changed the session id %q → %q", sid, sid2)
	}
	eval("frames after reconnect", `fw.frames(2000)`, &f)
	t.Logf("reconnect() to ready: %.0f ms; main_video at %.1f fps after reconnect", reMs, f.FPS)
	if f.FPS < 10 {
		t.Errorf("after reconnect main_video at %.1f fps", f.FPS)
	}
	waitTrue(t, 5*time.Second, "picture still green after reconnect (same model session)", green)

	// disconnect() ends the model session: its routes answer non-2xx.
	eval("disconnect", `fw.disconnect()`, nil)
	waitTrue(t, 5*time.Second, "session routes refuse after disconnect()", func() bool {
		resp, err := http.Get(engineURL + "/sessions/" + sid + "/transport/webrtc/ice_servers")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode >= 400
	})
	var errs []any
	eval("errors", `fw.state.errors`, &errs)
	if len(errs) != 0 {
		t.Errorf("SDK reported errors: %v", errs)
	}
}

// openHarnessWithin serves the harness page (web/index.html and the SDK
// bundle) on another port than the engine, opens it in a new headless
// Chromium (chromiumOptions plus extra), waits for window.fw and returns
// an evaluator and the tab's context, whose calls share a deadline of
// within. The browser and the page stop when the test ends; a failed test
// logs the harness's console.
func openHarnessWithin(t *testing.T, within time.Duration, extra ...chromedp.ExecAllocatorOption) (func(what, js string, out any), context.Context) {
	t.Helper()
	pln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pageMux := http.NewServeMux()
	pageMux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { http.ServeFile(w, r, "web/index.html") })
	pageMux.HandleFunc("/e2e.bundle.js", func(w http.ResponseWriter, r *http.Request) { http.ServeFile(w, r, bundlePath) })
	ps := &http.Server{Handler: pageMux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = ps.Serve(pln) }()
	t.Cleanup(func() { ps.Close() })

	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), chromiumOptions(t, extra...)...)
	t.Cleanup(cancelAlloc)
	cctx, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(cancelTab)
	if err := chromedp.Do(cctx, chromedp.Navigate("http://"+pln.Addr().String()+"/")); err != nil { // starts the browser; no timeout on this first call
		t.Fatalf("open page: %v", err)
	}
	ctx, cancel := context.WithTimeout(cctx, within)
	t.Cleanup(cancel)
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		if console, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`fw.state.console`)); err == nil {
			for _, l := range console {
				t.Log("browser console:", l)
			}
		}
	})
	waitTrue(t, 10*time.Second, "harness loaded", func() bool {
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](`typeof fw`))
		return err == nil && v == "object"
	})
	return evaluator(t, ctx), ctx
}

func waitTrue(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// newDemoEngine loads the demo model (CPU path) and returns it wired, for
// tests that build the server themselves. The engine is left to the
// process: it owns no goroutine until a session starts, and the server
// stops its sessions on Close.
func newDemoEngine(log *slog.Logger) *wiring.Wiring {
	eng, err := engine.New(demoModel(), engine.WithLogger(log))
	if err != nil {
		panic(fmt.Sprintf("demo model: %v", err)) // a test helper: the declaration is static
	}
	a, err := wiring.New(eng, wiring.Config{Logger: log})
	if err != nil {
		panic(fmt.Sprintf("demo model: %v", err))
	}
	return a
}

// startServer runs the server (serve, with command-line args) on a free
// loopback port until the test and its deferred calls have finished, and
// returns its base URL.
func startServer(t *testing.T, log *slog.Logger, args ...string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o, err := parseFlags(args)
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- serve(ctx, ln, o, log) }()
	t.Cleanup(func() {
		stop()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}

// chromiumOptions are the browser tests' Chromium settings: Debian's
// headless Chromium with a new empty profile, no sandbox (root), no GPU, no
// QUIC or background traffic (the machine reaches no other host), a fake
// camera granted without a prompt, and autoplay allowed. extra is appended.
func chromiumOptions(t *testing.T, extra ...chromedp.ExecAllocatorOption) []chromedp.ExecAllocatorOption {
	return append(append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
	), extra...)
}

// needBrowser skips a browser test when Chromium or the harness bundle is
// missing, or fails it under FRAMEWIRE_E2E=1 (make test), where a missing
// piece is a broken install, not a reason to skip.
func needBrowser(t *testing.T) {
	t.Helper()
	if raceEnabled {
		t.Skip("browser tests run without the race detector (make test-go)")
	}
	for _, p := range []string{chromiumPath, bundlePath} {
		if _, err := os.Stat(p); err != nil {
			if os.Getenv("FRAMEWIRE_E2E") != "" {
				t.Fatalf("%s missing (run `make web`): %v", p, err)
			}
			t.Skipf("%s missing; run `make web` (or `make test`) for the browser test", p)
		}
	}
}

// evaluator returns eval(what, js, out): it evaluates js in ctx's tab
// (awaiting a promise), decodes the result into out when out is not nil,
// and fails the test naming what, with the harness's console (fw.state.
// console, when the page has one) on an error.
func evaluator(t *testing.T, ctx context.Context) func(what, js string, out any) {
	return func(what, js string, out any) {
		t.Helper()
		raw, err := chromedp.Run(ctx, chromedp.Evaluate[[]byte](js, chromedp.EvalAwaitPromise))
		if err != nil {
			var console []string
			if c, err := chromedp.Run(ctx, chromedp.Evaluate[[]byte](`fw.state.console`)); err == nil {
				_ = json.Unmarshal(c, &console)
			}
			t.Fatalf("%s: %v (console: %v)", what, err, console)
		}
		if out != nil {
			if err := json.Unmarshal(raw, out); err != nil {
				t.Fatalf("%s: result %s: %v", what, raw, err)
			}
		}
	}
}
