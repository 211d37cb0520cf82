package main

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sort"
	"testing"
	"time"

	"github.com/framewire/framewire/engine"
	"github.com/framewire/framewire/engine/enginetest"
)

// TestBrowserSDKWithViewer: the real SDK 2.9.0 in Chromium drives the
// demo while a second client (a pion viewer on the connection routes)
// watches the same encode: both receive main_video, the driver's commands
// still work and their Send reaches the viewer too, the viewer leaving
// does not disturb the driver's stream, and the driver's disconnect()
// (stop) ends the viewer's connection as well.
func TestBrowserSDKWithViewer(t *testing.T) {
	needBrowser(t)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	engineURL := startServer(t, log, "-orphan-grace", "30s", "-ping-timeout", "20s")
	eval, _ := openHarnessWithin(t, 90*time.Second)
	eval("connect", fmt.Sprintf(`fw.connect(%q)`, engineURL), nil)
	var sid string
	eval("session id", `fw.sessionId()`, &sid)

	code, body := enginetest.Do(t, engineURL, "POST", "/sessions/"+sid+"/transport/webrtc/connections", nil, enginetest.RTCHeaders)
	if code != http.StatusCreated {
		t.Fatalf("register: %d %s", code, body)
	}
	var reg struct {
		ID       int                       `json:"connection_id"`
		TrackMap map[string]map[string]any `json:"track_map"`
	}
	if err := json.Unmarshal(body, &reg); err != nil {
		t.Fatal(err)
	}
	// The viewer offers the tracks the register answer maps (model view:
	// out is what the client receives).
	var tracks []engine.TrackCap
	for name, tm := range reg.TrackMap {
		dir := "sendonly"
		if tm["direction"] == "out" {
			dir = "recvonly"
		}
		tracks = append(tracks, engine.TrackCap{Name: name, Kind: tm["kind"].(string), Direction: dir})
	}
	sort.Slice(tracks, func(i, j int) bool { return tracks[i].Name < tracks[j].Name })
	viewer := enginetest.Dial(t, engineURL, sid, tracks, "POST", enginetest.ClientOptions{ConnectionID: reg.ID})
	viewer.WaitReady()
	viewer.WaitFrames(30, 15*time.Second)
	if wh := viewer.FrameWH.Load(); wh != int64(demoW)<<16|int64(demoH) {
		t.Errorf("viewer decodes %dx%d; want %dx%d", wh>>16, wh&0xffff, demoW, demoH)
	}

	type frames struct {
		FPS float64 `json:"fps"`
	}
	var f frames
	eval("driver frames with a viewer", `fw.frames(2000)`, &f)
	if f.FPS < 20 {
		t.Errorf("driver at %.1f fps with a viewer, want >= 20", f.FPS)
	}
	var n int
	var m map[string]any
	eval("message count", `fw.state.messages.length`, &n)
	eval("set_color", `fw.command("set_color", {hue: 120, mode: "solid"})`, nil)
	eval("color_set", fmt.Sprintf(`fw.waitMessage("color_set", %d, 5000)`, n), &m)
	if got := viewer.Expect("application", "color_set", 10*time.Second); got["hue"] != 120.0 {
		t.Errorf("viewer got color_set %v; want hue 120", got)
	}

	viewer.Close()
	eval("driver frames after the viewer left", `fw.frames(2000)`, &f)
	if f.FPS < 20 {
		t.Errorf("driver at %.1f fps after the viewer left, want >= 20", f.FPS)
	}

	// A second viewer, then disconnect() from the driver ends it too.
	code, body = enginetest.Do(t, engineURL, "POST", "/sessions/"+sid+"/transport/webrtc/connections", nil, enginetest.RTCHeaders)
	if code != http.StatusCreated || json.Unmarshal(body, &reg) != nil {
		t.Fatalf("register: %d %s", code, body)
	}
	viewer2 := enginetest.Dial(t, engineURL, sid, tracks, "POST", enginetest.ClientOptions{ConnectionID: reg.ID})
	viewer2.WaitReady()
	eval("disconnect", `fw.disconnect()`, nil)
	viewer2.Expect("runtime", "sessionEnded", 10*time.Second)
}
