package main

import (
	"context"
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

	"github.com/framewire/framewire/engine/host"
	"github.com/framewire/framewire/engine/metrics"
	"github.com/framewire/framewire/engine/protocol"
)

// pageJSHelpers are installed in the page: grabbing the decoded main_video
// into a canvas, and setting React-controlled inputs the way a user's
// input event does.
const pageJSHelpers = `window.__t = {
  video() { return document.querySelector(".video-card video"); },
  grab() {
    const v = this.video();
    if (!v || v.videoWidth === 0 || v.readyState < 2) return null;
    const c = document.createElement("canvas");
    c.width = v.videoWidth; c.height = v.videoHeight;
    const g = c.getContext("2d");
    g.drawImage(v, 0, 0);
    return g.getImageData(0, 0, c.width, c.height);
  },
  // motion grabs twice, ms apart: mean luma of the second, and the mean
  // absolute per-channel difference between them.
  async motion(ms) {
    const a = this.grab();
    if (!a) return null;
    await new Promise((r) => setTimeout(r, ms));
    const b = this.grab();
    if (!b || b.data.length !== a.data.length) return null;
    let luma = 0, diff = 0;
    for (let i = 0; i < a.data.length; i += 4) {
      luma += 0.299 * b.data[i] + 0.587 * b.data[i + 1] + 0.114 * b.data[i + 2];
      diff += Math.abs(a.data[i] - b.data[i]) + Math.abs(a.data[i + 1] - b.data[i + 1]) + Math.abs(a.data[i + 2] - b.data[i + 2]);
    }
    const n = a.data.length / 4;
    return { w: b.width, h: b.height, luma: luma / n, diff: diff / (3 * n) };
  },
  // mean RGB of a rectangle of the decoded picture.
  mean(x0, y0, x1, y1) {
    const im = this.grab();
    if (!im) return null;
    const s = [0, 0, 0];
    for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) {
      const i = (y * im.width + x) * 4;
      s[0] += im.data[i]; s[1] += im.data[i + 1]; s[2] += im.data[i + 2];
    }
    const n = (x1 - x0) * (y1 - y0);
    return s.map((v) => Math.round(v / n));
  },
  text(sel) { const e = document.querySelector(sel); return e ? e.textContent : ""; },
  commands() { return [...document.querySelectorAll("[data-testid=controller] h4")].map((h) => h.textContent); },
  expand(name) {
    const h = [...document.querySelectorAll("[data-testid=controller] h4")].find((h) => h.textContent === name);
    if (!h) throw new Error("no command " + name + " in the controller");
    h.click();
  },
  setValue(sel, value, event) {
    const el = document.querySelector(sel);
    if (!el) throw new Error("no element " + sel);
    const proto = el instanceof HTMLSelectElement ? HTMLSelectElement.prototype : HTMLInputElement.prototype;
    Object.getOwnPropertyDescriptor(proto, "value").set.call(el, String(value));
    el.dispatchEvent(new Event(event, { bubbles: true }));
  },
  clickButton(text) {
    const b = [...document.querySelectorAll("button")].find((b) => b.textContent.trim() === text);
    if (!b) throw new Error("no button " + text);
    b.click();
  },
};
true`

// TestDemoPage loads the demo page from the real server (in-process, on a
// free port, so the page's API base URL is not :8080) in headless Chromium
// with a fake camera, connects with the page's button, and checks what a
// newcomer sees: moving, non-black video; the demo model's commands in the
// SDK's ReactorController; a command changing the picture; non-zero fps in
// the stats panel, from the SDK and from the engine; readable errors for a
// failed connect, a command the model rejects and a session that ends.
// It saves a screenshot to $FRAMEWIRE_SCREENSHOT or the test's temp dir.
func TestDemoPage(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("FRAMEWIRE_E2E") != "" {
			t.Fatalf("%s missing (run `make web`): %v", chromiumPath, err)
		}
		t.Skipf("%s missing; run `make web` (or `make test`) for the browser test", chromiumPath)
	}
	if _, err := host.PageDir(); err != nil {
		if os.Getenv("FRAMEWIRE_E2E") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	base := startServer(t, log)

	// The routes without a browser: the shell at /, the stats document.
	resp, err := http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	if shell := readAll(t, resp); resp.StatusCode != http.StatusOK || !strings.Contains(shell, `src="/framewire/app.js"`) {
		t.Fatalf("GET / = %d %q, want 200 and the page shell", resp.StatusCode, shell)
	}
	if doc := getStats(t, base); doc.Model != "framewire-demo" || len(doc.Sessions) != 0 {
		t.Fatalf("stats before any session: %+v, want model framewire-demo and no sessions", doc)
	}

	// A port nothing listens on, for the failed connect.
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadURL := "http://" + dead.Addr().String()
	dead.Close()

	opts := chromiumOptions(t, chromedp.WindowSize(1280, 900), chromedp.Flag("hide-scrollbars", true))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	cctx, cancelTab := chromedp.NewContext(actx)
	defer cancelTab()
	// The first call starts the browser; no timeout on it.
	if err := chromedp.Do(cctx, chromedp.Navigate(base+"/?api="+deadURL)); err != nil {
		t.Fatalf("open page: %v", err)
	}
	ctx, cancel := context.WithTimeout(cctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900)); err != nil {
		t.Fatal(err)
	}

	run := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	eval := evaluator(t, ctx)
	text := func(sel string) string {
		var s string
		eval("text of "+sel, fmt.Sprintf(`__t.text(%q)`, sel), &s)
		return s
	}
	waitText := func(within time.Duration, sel, want string) {
		t.Helper()
		waitTrue(t, within, fmt.Sprintf("%s shows %q (it shows %q)", sel, want, text(sel)), func() bool {
			return strings.Contains(text(sel), want)
		})
	}
	install := func() {
		t.Helper()
		run("page renders", chromedp.WaitVisible(`[data-testid=connect-button]`))
		eval("install helpers", pageJSHelpers, nil)
	}
	shot := func() {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		path := os.Getenv("FRAMEWIRE_SCREENSHOT")
		if path == "" {
			path = filepath.Join(t.TempDir(), "screenshot.png")
		}
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s (%d bytes)", path, len(png))
	}

	// 1. Connecting to an engine that is not there says so, with a retry.
	install()
	run("click Connect", chromedp.Click(`[data-testid=connect-button]`))
	waitText(10*time.Second, `[data-testid=banner]`, "Could not connect to the engine at "+deadURL)
	waitText(2*time.Second, `[data-testid=banner-connect]`, "Try again")
	t.Logf("failed connect: %q", text(`[data-testid=banner]`))

	// 2. The real engine, on the page's own origin: connect → ready. Before
	// connecting the face strip says what to do.
	run("open page", chromedp.Navigate(base+"/"))
	install()
	waitText(2*time.Second, `[data-testid=faces-hint]`, "Connect, then allow your camera")
	run("click Connect", chromedp.Click(`[data-testid=connect-button]`))
	run("status ready", chromedp.WaitVisible(`[data-testid=status][data-status=ready]`))
	waitText(2*time.Second, `[data-testid=connect-button]`, "Disconnect")

	// The page publishes Chromium's fake camera (no face in it): the face
	// panel shows the model's faces messages, count 0 and a detection time.
	waitTrue(t, 10*time.Second, "face strip shows the faces message", func() bool {
		return text(`[data-testid=faces-count]`) == "0" && strings.Contains(text(`[data-testid=faces-detect]`), " ms")
	})
	t.Logf("face strip: %s faces, detect %s", text(`[data-testid=faces-count]`), text(`[data-testid=faces-detect]`))

	// 3. main_video: decoded at the model's size, not black, moving.
	type motion struct {
		W, H       int
		Luma, Diff float64
	}
	var m *motion
	waitTrue(t, 10*time.Second, "decoded main_video frames", func() bool {
		m = nil
		eval("motion", `__t.motion(400)`, &m)
		return m != nil
	})
	t.Logf("main_video %dx%d, mean luma %.1f, mean change over 400 ms %.1f", m.W, m.H, m.Luma, m.Diff)
	if m.W != demoW || m.H != demoH {
		t.Errorf("main_video decoded at %dx%d, want %dx%d", m.W, m.H, demoW, demoH)
	}
	if m.Luma < 20 {
		t.Errorf("main_video is black: mean luma %.1f", m.Luma)
	}
	if m.Diff < 2 {
		t.Errorf("main_video does not move: mean change %.2f over 400 ms", m.Diff)
	}

	// 4. The controller lists the model's commands (from modelCapabilities).
	var cmds []string
	waitTrue(t, 10*time.Second, "controller lists the commands", func() bool {
		eval("commands", `__t.commands()`, &cmds)
		return len(cmds) == len(demoCommands)
	})
	for i, c := range demoCommands {
		if cmds[i] != c["name"] {
			t.Errorf("controller command %d is %q, want %q (all: %v)", i, cmds[i], c["name"], cmds)
		}
	}

	// 5. A command changes the picture: set_color mode checker, hue 120.
	// The SDK's slider submits the form values of the previous render, so
	// move it twice; the second send carries hue 120.
	region := `__t.mean(20, 40, 280, 200)` // left of the webcam inset, above the square
	var before []int
	eval("colour before", region, &before)
	eval("expand set_color", `__t.expand("set_color")`, nil)
	eval("mode checker", `__t.setValue("[data-testid=controller] select", "checker", "change")`, nil)
	for _, hue := range []int{119, 120} {
		time.Sleep(150 * time.Millisecond)
		eval("hue slider", fmt.Sprintf(`__t.setValue("[data-testid=controller] input[type=range]", %d, "input")`, hue), nil)
	}
	var after []int
	waitTrue(t, 10*time.Second, "picture turns green after set_color from the controller", func() bool {
		eval("colour after", region, &after)
		return len(after) == 3 && after[1] > after[0]+40 && after[1] > after[2]+40
	})
	t.Logf("mean colour of the left region: %v before, %v after set_color hue 120 checker", before, after)
	waitText(5*time.Second, `[data-testid=log]`, `"type":"color_set"`)

	// 6. The stats panel: non-zero fps from the SDK (useStats, every ~2 s)
	// and from the engine (GET /framewire/stats, every second).
	positive := func(sel string) func() bool {
		return func() bool {
			var v float64
			_, err := fmt.Sscanf(text(sel), "%g", &v)
			return err == nil && v > 0
		}
	}
	waitTrue(t, 10*time.Second, "stats panel shows the browser's fps", positive(`[data-testid=sdk-fps]`))
	waitTrue(t, 10*time.Second, "stats panel shows the engine's fps", positive(`[data-testid=engine-fps]`))
	if b := text(`[data-testid=engine-backend]`); b == "" || b == "–" {
		t.Errorf("stats panel shows no encoder backend")
	}
	if st := text(`[data-testid=engine-stages]`); !strings.Contains(st, "encoded") || !strings.Contains(st, "wire") {
		t.Errorf("stats panel's stage timing %q lacks the encoded and wire stages", st)
	}
	doc := getStats(t, base)
	if len(doc.Sessions) != 1 || len(doc.Sessions[0].Tracks) != 1 || doc.Sessions[0].Tracks[0].Sent == 0 || doc.Sessions[0].Tracks[0].Backend == "" {
		t.Errorf("stats during the session: %+v, want one session with main_video sent > 0 and a backend", doc)
	} else {
		tr := doc.Sessions[0].Tracks[0]
		t.Logf("engine: backend %s, sent %d, dropped %d, encode p50/p99 %.1f/%.1f ms, emit→wire p50/p99 %.1f/%.1f ms, %d bit/s",
			tr.Backend, tr.Sent, tr.Dropped, tr.EncodeP50, tr.EncodeP99, tr.LatencyP50, tr.LatencyP99, tr.Bitrate)
		t.Logf("page: browser fps %s, engine fps %s", text(`[data-testid=sdk-fps]`), text(`[data-testid=engine-fps]`))
	}
	if os.Getenv("FRAMEWIRE_SCREENSHOT") != "" {
		time.Sleep(20 * time.Second) // let the sparklines gather some history
	}
	shot()

	// 7. A command the model rejects: inspect_file without an upload.
	eval("expand inspect_file", `__t.expand("inspect_file")`, nil)
	eval("execute inspect_file", `__t.clickButton("Execute inspect_file")`, nil)
	waitText(5*time.Second, `[data-testid=banner]`, "The model rejected inspect_file")
	waitText(1*time.Second, `[data-testid=banner]`, "needs an upload")

	// 8. The engine ends the session: the page says so and offers a new one.
	req, _ := http.NewRequest(http.MethodPost, base+"/stop_session", nil)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	run("status disconnected", chromedp.WaitVisible(`[data-testid=status][data-status=disconnected]`))
	// The engine sends sessionEnded just before it closes the peer; whether
	// the browser delivers it before the close is a race, so either banner
	// is right as long as it says what happened and offers a new session.
	waitTrue(t, 5*time.Second, "banner says the session ended or the connection was lost", func() bool {
		b := text(`[data-testid=banner]`)
		return strings.Contains(b, "The engine ended the session") || strings.Contains(b, "Connection to the engine lost")
	})
	t.Logf("after stop_session: %q", text(`[data-testid=banner]`))
	waitText(1*time.Second, `[data-testid=banner-connect]`, "New session")
	run("click New session", chromedp.Click(`[data-testid=banner-connect]`))
	run("status ready again", chromedp.WaitVisible(`[data-testid=status][data-status=ready]`))
	waitTrue(t, 10*time.Second, "video again after a new session", func() bool {
		m = nil
		eval("motion", `__t.motion(300)`, &m)
		return m != nil && m.Luma > 20 && m.Diff > 2
	})
	var banner bool
	eval("banner gone", `!!document.querySelector("[data-testid=banner]")`, &banner)
	if banner {
		t.Errorf("banner still shown after reconnecting: %q", text(`[data-testid=banner]`))
	}
	run("click Disconnect", chromedp.Click(`[data-testid=connect-button]`))
	run("status disconnected", chromedp.WaitVisible(`[data-testid=status][data-status=disconnected]`))
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func getStats(t *testing.T, base string) metrics.Stats {
	t.Helper()
	resp, err := http.Get(base + "/framewire/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || ct != "application/json" {
		t.Fatalf("GET /framewire/stats = %d %s", resp.StatusCode, ct)
	}
	var doc metrics.Stats
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatalf("GET /framewire/stats: %v", err)
	}
	return doc
}

// TestPageRoutes checks the page routes without a browser: a missing
// bundle answers 503 with what to run, a present one gets the shell, the
// stats route answers JSON naming the model.
func TestPageRoutes(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	o, err := parseFlags(nil)
	if err != nil {
		t.Fatal(err)
	}
	eng := newDemoEngine(log)
	srv, err := protocol.NewServer(eng, o.ServerConfig(log))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	mux := http.NewServeMux()
	mux.Handle("/", srv)
	host.MountPage(mux, eng, srv, log)
	hs := httptest.NewServer(mux)
	defer hs.Close()
	get := func(path string) (int, string, string) {
		t.Helper()
		resp, err := http.Get(hs.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, resp.Header.Get("Content-Type"), readAll(t, resp)
	}

	dir := t.TempDir()
	t.Setenv(host.PageDirEnv, dir)
	if code, _, body := get("/"); code != http.StatusServiceUnavailable || !strings.Contains(body, "make page") || !strings.Contains(body, dir) {
		t.Errorf("GET / without a bundle = %d %q, want 503 saying to run make web and where it looked", code, body)
	}
	if code, _, _ := get("/framewire/app.js"); code != http.StatusNotFound {
		t.Errorf("GET /framewire/app.js without a bundle = %d, want 404", code)
	}
	if code, _, body := get("/start_session"); code != http.StatusMethodNotAllowed && code != http.StatusBadRequest {
		t.Errorf("GET /start_session = %d %q: the protocol routes must stay the server's", code, body)
	}

	const js = "console.log('page')"
	if err := os.WriteFile(filepath.Join(dir, "app.js"), []byte(js), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, ct, body := get("/"); code != http.StatusOK || !strings.HasPrefix(ct, "text/html") || !strings.Contains(body, `<div id="root">`) {
		t.Errorf("GET / = %d %s %q, want the HTML shell", code, ct, body)
	}
	if code, ct, body := get("/framewire/app.js"); code != http.StatusOK || !strings.HasPrefix(ct, "text/javascript") || body != js {
		t.Errorf("GET /framewire/app.js = %d %s %q, want the bundle", code, ct, body)
	}
	if code, _, body := get("/framewire/app.css"); code != http.StatusOK || body != "" {
		t.Errorf("GET /framewire/app.css without CSS = %d %q, want an empty stylesheet", code, body)
	}
	if code, _, _ := get("/nothing"); code != http.StatusNotFound {
		t.Errorf("GET /nothing = %d, want the protocol server's 404", code)
	}
	if doc := getStats(t, hs.URL); doc.Model != "framewire-demo" || doc.Server.State != "ready" || len(doc.Sessions) != 0 {
		t.Errorf("stats %+v, want model framewire-demo, state ready, no sessions", doc)
	}
}
