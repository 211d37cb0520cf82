//go:build !cuda

// The browser tests of Python models run in the default build; the cuda
// build runs TestPythonDeviceFrames (python_cuda_test.go) instead.

package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/framewire/framewire/engine/cluster/registry"
	"github.com/framewire/framewire/engine/cluster/registry/registrytest"
	"github.com/framewire/framewire/engine/enginetest"
)

// openHarness opens the e2e harness page in a new headless Chromium and
// returns its evaluator and context (calls within 120 s).
func openHarness(t *testing.T, extra ...chromedp.ExecAllocatorOption) (func(what, js string, out any), context.Context) {
	t.Helper()
	return openHarnessWithin(t, 120*time.Second, extra...)
}

type videoInfo struct {
	FPS    float64 `json:"fps"`
	Width  int     `json:"width"`
	Height int     `json:"height"`
}

// connectPython connects the SDK to model at url and checks ready and
// main_video at w×h.
func connectPython(t *testing.T, eval func(string, string, any), url, model string, w, h int) {
	t.Helper()
	var readyMs float64
	eval("connect", fmt.Sprintf(`fw.connect(%q, %q)`, url, model), &readyMs)
	var statuses []string
	eval("statuses", `fw.state.statuses`, &statuses)
	if strings.Join(statuses, ",") != "disconnected,connecting,waiting,ready" {
		t.Fatalf("%s: status sequence %v", model, statuses)
	}
	var f videoInfo
	eval("main_video frames", `fw.frames(2500)`, &f)
	t.Logf("%s: ready in %.0f ms; main_video %dx%d at %.1f fps", model, readyMs, f.Width, f.Height, f.FPS)
	if f.Width != w || f.Height != h || f.FPS < 10 {
		t.Errorf("%s: main_video %dx%d at %.1f fps, want %dx%d at >= 10 fps", model, f.Width, f.Height, f.FPS, w, h)
	}
}

// TestPythonPageExamples serves the tracks page's three examples from
// Python and drives each with the real SDK: the default track, the
// webcam transformed (FaceTransform), and Morpheus (on_media, set_prompt
// with a typed argument and its rejection, reconnect into the same
// session).
func TestPythonPageExamples(t *testing.T) {
	needBrowser(t)
	needPython(t)
	t.Run("default_track", func(t *testing.T) {
		url, _ := startPython(t, "examples/default_track.py")
		eval, _ := openHarness(t)
		connectPython(t, eval, url, "default-track", 640, 360)
		eval("disconnect", `fw.disconnect()`, nil)
	})
	t.Run("face_transform", func(t *testing.T) {
		url, _ := startPython(t, "examples/face_transform.py")
		eval, _ := openHarness(t)
		var readyMs float64
		eval("connect", fmt.Sprintf(`fw.connect(%q, "face-transform")`, url), &readyMs)
		eval("publish webcam", `fw.publishWebcam()`, nil)
		var f videoInfo
		eval("main_video frames", `fw.frames(3000)`, &f)
		t.Logf("face-transform: the webcam's 640x480 back as main_video %dx%d at %.1f fps", f.Width, f.Height, f.FPS)
		if f.Width != 640 || f.Height != 480 || f.FPS < 10 {
			t.Errorf("main_video %dx%d at %.1f fps, want the webcam's 640x480 at >= 10 fps", f.Width, f.Height, f.FPS)
		}
		eval("disconnect", `fw.disconnect()`, nil)
	})
	t.Run("morpheus", func(t *testing.T) { testMorpheus(t) })
}

func testMorpheus(t *testing.T) {
	url, _ := startPython(t, "examples/morpheus.py")
	eval, _ := openHarness(t)
	var readyMs float64
	eval("connect", fmt.Sprintf(`fw.connect(%q, "morpheus")`, url), &readyMs)
	var f videoInfo
	eval("black frame while warming up", `fw.frames(1000)`, &f)
	if f.Width != 1280 || f.Height != 720 {
		t.Errorf("emit(None) decoded at %dx%d, want the 1280x720 black frame", f.Width, f.Height)
	}
	eval("publish webcam", `fw.publishWebcam()`, nil)
	waitTrue(t, 10*time.Second, "webcam frames through on_media reach main_video at 640x480", func() bool {
		eval("frames", `fw.frames(500)`, &f)
		return f.Width == 640 && f.Height == 480
	})
	var n int
	var m map[string]any
	eval("message count", `fw.state.messages.length`, &n)
	eval("set_prompt", `fw.command("set_prompt", {prompt: "ocean"})`, nil)
	eval("prompt_set", fmt.Sprintf(`fw.waitMessage("prompt_set", %d, 5000)`, n), &m)
	if m["prompt"] != "ocean" {
		t.Errorf("prompt_set %v, want ocean", m)
	}
	var r int
	eval("runtime count", `fw.state.runtime.length`, &r)
	eval("set_prompt with a number", `fw.command("set_prompt", {prompt: 5})`, nil)
	eval("rejection", fmt.Sprintf(`fw.waitRuntime("error", %d, 5000)`, r), &m)
	if data, _ := m["data"].(map[string]any); data == nil || !strings.Contains(fmt.Sprint(data["message"]), `parameter "prompt": got the number 5; want a string`) {
		t.Errorf("rejection %v, want the engine's message naming prompt and what it wants", m)
	}
	var sid, sid2 string
	eval("session id", `fw.sessionId()`, &sid)
	eval("drop", `fw.drop()`, nil)
	var reMs float64
	eval("reconnect", `fw.reconnect()`, &reMs)
	eval("session id", `fw.sessionId()`, &sid2)
	if sid != sid2 {
		t.Errorf("reconnect changed the session %q → %q", sid, sid2)
	}
	eval("frames after reconnect", `fw.frames(1500)`, &f)
	if f.FPS < 10 {
		t.Errorf("after reconnect main_video at %.1f fps", f.FPS)
	}
	eval("disconnect", `fw.disconnect()`, nil)
	var errs []any
	eval("errors", `fw.state.errors`, &errs)
	if len(errs) != 0 {
		t.Errorf("SDK reported errors: %v", errs)
	}
}

// TestPythonStudio drives the test model: typed commands, an upload, a
// model error, and every bad emit input answered with its clear error
// while the session goes on.
func TestPythonStudio(t *testing.T) {
	needBrowser(t)
	needPython(t)
	url, logs := startPython(t, "tests/models/studio.py")
	eval, _ := openHarness(t)
	connectPython(t, eval, url, "studio", 320, 240)
	var n, r int
	var m map[string]any
	eval("message count", `fw.state.messages.length`, &n)
	eval("set_colour", `fw.command("set_colour", {name: "green"})`, nil)
	eval("colour_set", fmt.Sprintf(`fw.waitMessage("colour_set", %d, 5000)`, n), &m)
	if m["name"] != "green" || m["level"] != 255.0 {
		t.Errorf("colour_set %v, want green at the default level 255", m)
	}
	waitTrue(t, 5*time.Second, "picture turns green", func() bool {
		var px []int
		eval("pixel", `fw.pixel(40, 40)`, &px)
		return len(px) == 3 && px[1] > px[0]+80 && px[1] > px[2]+80
	})
	// Every fourth frame is lent (emit(copy=False)): sampled over 24
	// frames, each shows the model's picture, none freed or stale memory.
	enginetest.Holds(t, 800*time.Millisecond, "the green picture, lent frames included", func() bool {
		var px []int
		eval("pixel", `fw.pixel(40, 40)`, &px)
		if len(px) != 3 || px[1] < px[0]+80 || px[1] < px[2]+80 {
			t.Logf("sampled %v", px)
			return false
		}
		return true
	})
	for _, bad := range []struct{ args, says string }{
		{`{name: "pink"}`, `"name": got "pink"; want one of red, green, blue`},
		{`{name: "red", level: 300}`, `"level": got 300; want at most 255`},
	} {
		eval("runtime count", `fw.state.runtime.length`, &r)
		eval("bad set_colour", `fw.command("set_colour", `+bad.args+`)`, nil)
		eval("rejection", fmt.Sprintf(`fw.waitRuntime("error", %d, 5000)`, r), &m)
		if !strings.Contains(fmt.Sprint(m), bad.says) {
			t.Errorf("set_colour %s: %v, want %q", bad.args, m, bad.says)
		}
	}
	const text = "hello from the browser, through a presigned PUT"
	eval("message count", `fw.state.messages.length`, &n)
	eval("upload", fmt.Sprintf(`fw.uploadTo("inspect", "file", %q)`, text), nil)
	eval("file_info", fmt.Sprintf(`fw.waitMessage("file_info", %d, 15000)`, n), &m)
	sum := sha256.Sum256([]byte(text))
	if m["sha256"] != hex.EncodeToString(sum[:]) || m["size"] != float64(len(text)) || m["scale"] != 1.5 || m["scale_type"] != "float" || m["note"] != false {
		t.Errorf("file_info %v, want sha256 %x, size %d, the default scale 1.5 as a float, no note", m, sum, len(text))
	}
	eval("message count", `fw.state.messages.length`, &n)
	eval("emit_checks", `fw.command("emit_checks", {})`, nil)
	eval("emit_checks", fmt.Sprintf(`fw.waitMessage("emit_checks", %d, 5000)`, n), &m)
	checkEmitErrors(t, m)
	eval("a failing command", `fw.command("fail", {})`, nil)
	// on_media raises on every 10th webcam frame: reported, and it goes on.
	eval("publish webcam", `fw.publishWebcam()`, nil)
	waitTrue(t, 15*time.Second, "on_media sees 25 webcam frames through its own errors", func() bool {
		eval("message count", `fw.state.messages.length`, &n)
		eval("media_count", `fw.command("media_count", {})`, nil)
		eval("media_count", fmt.Sprintf(`fw.waitMessage("media_count", %d, 5000)`, n), &m)
		return m["frames"].(float64) >= 25
	})
	if !strings.Contains(logs.String(), "on_media: RuntimeError: on_media cannot handle frame 10 of shape (480, 640, 3)") {
		t.Errorf("on_media's exception was not reported like a Go model's error:\n%s", logs.String())
	}
	var f videoInfo
	eval("frames after the bad input", `fw.frames(1500)`, &f)
	if f.FPS < 10 {
		t.Errorf("after bad emits and a failing command main_video at %.1f fps: the session must go on", f.FPS)
	}
	eval("disconnect", `fw.disconnect()`, nil)
}

// checkEmitErrors checks the test model's report of every bad emit input.
func checkEmitErrors(t *testing.T, m map[string]any) {
	t.Helper()
	res, _ := m["results"].(map[string]any)
	want := map[string]string{
		"float":          "TypeError: emit: got numpy.ndarray of shape (240, 320, 3) and dtype float32; want uint8 values 0-255",
		"int16":          "TypeError: emit: got numpy.ndarray of shape (240, 320, 3) and dtype int16; want a NumPy uint8 array",
		"gray":           "ValueError: emit: got numpy.ndarray of shape (240, 320) and dtype uint8; want shape (H, W, 3) or (N, H, W, 3)",
		"rgba":           "with 4 channels; want 3 (RGB)",
		"noncontig":      "not C-contiguous",
		"list":           "TypeError: emit: got list; want a NumPy uint8 array",
		"5d":             "want shape (H, W, 3) or (N, H, W, 3)",
		"empty":          "ValueError: tracks: bad frame: main_video: shape (0, 320, 3) has a zero or negative size",
		"torch_float":    "TypeError: emit: got torch.Tensor of shape (240, 320, 3) and dtype torch.float32; want uint8 values 0-255",
		"cai_v2":         "without a 'stream'",
		"audio_on_video": "TypeError: emit: got numpy.ndarray of shape (240, 320, 3) and dtype uint8; want int16 or float32 samples",
	}
	for k, w := range want {
		got, _ := res[k].(string)
		if !strings.Contains(got, w) {
			t.Errorf("emit of %s: %q, want it to say %q", k, got, w)
		}
	}
	if len(res) != len(want) {
		t.Errorf("emit checks %v, want %d cases", res, len(want))
	}
	t.Logf("bad emits: %v; track stats %v", res, m["stats"])
}

// TestPythonNodeProduction serves the test model from Python as a
// production engine node (-mode node) behind a front, and drives two SDK
// sessions on it at once in production mode (connect(jwt)): each command
// runs on its own session's thread, where get_ctx() must be that session,
// and each session keeps its own state.
func TestPythonNodeProduction(t *testing.T) {
	needBrowser(t)
	needPython(t)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	rd := registrytest.Start(t)
	store := registry.New(rd.Client(t), "")
	secret := []byte("python-node-secret-0123456789abcdef")
	secretFile := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secretFile, secret, 0o600); err != nil {
		t.Fatal(err)
	}
	_, _ = startPython(t, "tests/models/studio.py", "-mode", "node", "-redis", rd.Addr, "-jwt-secret-file", secretFile,
		"-capacity", "2", "-heartbeat", "200ms", "-ttl", "1s", "-drain-timeout", "2s")
	frontURL, _ := startFront(t, store, secret, "studio", log)
	jwt := mintToken(t, frontURL)

	eval1, ctx1 := openHarness(t)
	tab2, cancel2 := chromedp.NewContext(ctx1) // a second tab of the same browser
	defer cancel2()
	if err := chromedp.Do(tab2, chromedp.Navigate(chromedpLocation(t, ctx1))); err != nil {
		t.Fatal(err)
	}
	eval2 := evaluator(t, tab2)
	waitTrue(t, 10*time.Second, "harness loaded in the second tab", func() bool {
		v, err := chromedp.Run(tab2, chromedp.Evaluate[string](`typeof fw`))
		return err == nil && v == "object"
	})
	sessions := map[string]string{}
	for i, tab := range []struct {
		eval   func(string, string, any)
		colour string
	}{{eval1, "red"}, {eval2, "green"}} {
		var ms float64
		tab.eval("connect(jwt)", fmt.Sprintf(`fw.connect(%q, "studio", %q)`, frontURL, jwt), &ms)
		var sid string
		tab.eval("session id", `fw.sessionId()`, &sid)
		sessions[tab.colour] = sid
		t.Logf("session %d (%s) ready through the front in %.0f ms", i+1, sid, ms)
	}
	if sessions["red"] == sessions["green"] {
		t.Fatalf("both tabs got session %s", sessions["red"])
	}
	// The node names its engine sessions itself (it maps the front's ids
	// to them), so each tab's commands must see one engine session, and
	// the two tabs two different ones.
	seen := map[string]string{}
	for _, tab := range []struct {
		eval   func(string, string, any)
		colour string
	}{{eval1, "red"}, {eval2, "green"}} {
		var n int
		var who, set map[string]any
		tab.eval("message count", `fw.state.messages.length`, &n)
		tab.eval("whoami", `fw.command("whoami", {})`, nil)
		tab.eval("whoami reply", fmt.Sprintf(`fw.waitMessage("whoami", %d, 5000)`, n), &who)
		tab.eval("set_colour", fmt.Sprintf(`fw.command("set_colour", {name: %q})`, tab.colour), nil)
		tab.eval("colour_set", fmt.Sprintf(`fw.waitMessage("colour_set", %d, 5000)`, n), &set)
		id, _ := who["session"].(string)
		if id == "" || set["session"] != id {
			t.Errorf("session %s: whoami saw %v, set_colour ran as %v: get_ctx() must be the calling session on every thread", sessions[tab.colour], who["session"], set["session"])
		}
		seen[tab.colour] = id
	}
	if seen["red"] == seen["green"] {
		t.Errorf("both tabs' commands saw engine session %s", seen["red"])
	}
	for _, tab := range []struct {
		eval func(string, string, any)
		ch   int
	}{{eval1, 0}, {eval2, 1}} {
		waitTrue(t, 5*time.Second, "each session shows its own colour", func() bool {
			var px []int
			tab.eval("pixel", `fw.pixel(40, 40)`, &px)
			return len(px) == 3 && px[tab.ch] > 150 && px[1-tab.ch] < 80
		})
	}
	for _, e := range []func(string, string, any){eval1, eval2} {
		e("disconnect", `fw.disconnect()`, nil)
	}
}
