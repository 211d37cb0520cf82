package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/framewire/framewire/engine"
	"github.com/framewire/framewire/tracks"
)

// The counter model: 640×360 at 30 fps into main_video, each picture
// stamped with its frame number (mod 2^24) as 24 black/white 24×24 blocks
// on the top row, most significant first, which both browser pages read
// back; set_color and inspect_file as the demo's (a Send reply each).
const (
	counterW, counterH = 640, 360
	counterBlock       = 24
)

func counterModel() engine.Model {
	return engine.Model{
		Name:   "framewire-counter",
		Tracks: []tracks.Spec{tracks.VideoOutput("main_video", tracks.Default(), tracks.Rate(30))},
		Commands: []engine.CommandDef{
			engine.Command("set_color", "Answers color_set", func(s *engine.Session, p SetColor) error {
				return s.Send(map[string]any{"type": "color_set", "hue": p.Hue, "mode": p.Mode})
			}),
			engine.Command("inspect_file", "Report an uploaded file's size and SHA-256", func(s *engine.Session, p InspectFile) error {
				return s.Send(fileInfo(p.File.Name, p.File.MimeType, p.File.Data))
			}),
		},
		New: func(engine.Config) (engine.Runner, error) { return counterRunner{}, nil },
	}
}

type counterRunner struct{}

func (counterRunner) RunSession(ctx context.Context, s *engine.Session) error {
	out, err := s.VideoOut("main_video")
	if err != nil {
		return err
	}
	img := make([]byte, counterW*counterH*3)
	for i := range img {
		img[i] = 96
	}
	tick := time.NewTicker(time.Second / 30)
	defer tick.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		for b := range 24 {
			v := byte(16)
			if n>>(23-b)&1 == 1 {
				v = 235
			}
			for y := range counterBlock {
				row := img[(y*counterW+b*counterBlock)*3 : (y*counterW+b*counterBlock+counterBlock)*3]
				for k := range row {
					row[k] = v
				}
			}
		}
		if err := out.Emit(img, counterH, counterW, 3); err != nil {
			if errors.Is(err, tracks.ErrClosed) {
				return nil
			}
			return err
		}
	}
}

// whepPage is a WHEP player with no SDK: a plain RTCPeerConnection with
// one recvonly video transceiver, the offer (with its gathered candidates:
// the server takes no trickle on WHEP) POSTed as application/sdp, the 201
// answer set, the track played in a <video>. whep.leave() DELETEs the
// Location.
const whepPage = `<!doctype html>
<html><head><meta charset="utf-8"><title>whep viewer</title></head>
<body><video id="v" muted autoplay playsinline></video>
<script>
const st = { states: [], trackEnded: false, location: "", console: [] };
let pc;
window.whep = {
  st,
  async start(url) {
    pc = new RTCPeerConnection();
    pc.addTransceiver("video", { direction: "recvonly" });
    pc.onconnectionstatechange = () => st.states.push(pc.connectionState);
    pc.ontrack = (e) => {
      e.track.onended = () => { st.trackEnded = true; };
      const v = document.getElementById("v");
      v.srcObject = new MediaStream([e.track]);
      v.play().catch(() => {});
    };
    await pc.setLocalDescription(await pc.createOffer());
    if (pc.iceGatheringState !== "complete") {
      await new Promise((r) => pc.addEventListener("icegatheringstatechange", () => pc.iceGatheringState === "complete" && r()));
    }
    const resp = await fetch(url, { method: "POST", headers: { "Content-Type": "application/sdp" }, body: pc.localDescription.sdp });
    const body = await resp.text();
    if (resp.status !== 201) throw new Error("WHEP POST: " + resp.status + " " + body);
    st.location = new URL(resp.headers.get("Location"), url).href;
    await pc.setRemoteDescription({ type: "answer", sdp: body });
    return st.location;
  },
  async leave() {
    const resp = await fetch(st.location, { method: "DELETE" });
    return resp.status;
  },
  // ended: the server ended this player: the peer connection or its DTLS
  // transport failed or closed, or the track ended.
  ended() {
    const t = pc.getTransceivers()[0].receiver.transport;
    return {
      connection: pc.connectionState,
      dtls: t ? t.state : "",
      trackEnded: st.trackEnded,
      ended: ["failed", "closed"].includes(pc.connectionState) || (t && ["failed", "closed"].includes(t.state)) || st.trackEnded,
    };
  },
  async frames(ms) {
    const v = document.getElementById("v");
    const end = performance.now() + 10000;
    while (!(v.videoWidth > 0 && v.readyState >= 2)) {
      if (performance.now() > end) throw new Error("no decoded frame in 10 s (states " + st.states + ")");
      await new Promise((r) => setTimeout(r, 20));
    }
    let count = 0;
    let done = false;
    const on = () => { count++; if (!done) v.requestVideoFrameCallback(on); };
    v.requestVideoFrameCallback(on);
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, ms));
    done = true;
    return { fps: count / ((performance.now() - t0) / 1000), width: v.videoWidth, height: v.videoHeight };
  },
};
</script></body></html>`

// stampJS, evaluated in a page, starts reading the counter stamp of every
// frame its <video> presents into window.__stamps until window.__stampsDone.
const stampJS = `(() => {
  const v = document.querySelector("video");
  const W = 24 * 24;
  const c = document.createElement("canvas");
  c.width = W;
  c.height = 24;
  const g = c.getContext("2d", { willReadFrequently: true });
  window.__stamps = [];
  window.__stampsDone = false;
  const on = () => {
    g.drawImage(v, 0, 0, W, 24, 0, 0, W, 24);
    const d = g.getImageData(0, 0, W, 24).data;
    let n = 0;
    for (let b = 0; b < 24; b++) n = n * 2 + (d[(12 * W + b * 24 + 12) * 4] > 128 ? 1 : 0);
    window.__stamps.push(n);
    if (!window.__stampsDone) v.requestVideoFrameCallback(on);
  };
  v.requestVideoFrameCallback(on);
  return true;
})()`

// driverRateJS, evaluated in the driver's page, measures its <video> over
// 2 s: frames presented (requestVideoFrameCallback) and frames decoded
// (getVideoPlaybackQuality().totalVideoFrames), each per second.
const driverRateJS = `new Promise((resolve) => {
  const v = document.querySelector("video");
  const q0 = v.getVideoPlaybackQuality().totalVideoFrames;
  let n = 0;
  let done = false;
  const on = () => { n++; if (!done) v.requestVideoFrameCallback(on); };
  v.requestVideoFrameCallback(on);
  const t0 = performance.now();
  setTimeout(() => {
    done = true;
    const secs = (performance.now() - t0) / 1000;
    resolve({ presented: n / secs, decoded: (v.getVideoPlaybackQuality().totalVideoFrames - q0) / secs });
  }, 2000);
})`

// checkDriverStreams fails t unless the driver's page decodes >= 20 fps
// of the 30 fps model over 2 s. It judges decoded frames, the stream the
// server sends the driver, rather than presented ones: on a loaded
// machine (2 cores, load average 8-10) Chromium's presentation stalls
// 100-300 ms at random moments of a window, with or without a viewer
// leaving and with the server's CPU unchanged (8-9 %), which put a
// presented rate at 18.3 fps once in four runs while its frames were
// still decoded.
func checkDriverStreams(t *testing.T, driver func(what, js string, out any), after string) {
	t.Helper()
	var r struct{ Presented, Decoded float64 }
	driver("driver frame rate "+after, driverRateJS, &r)
	t.Logf("driver %s: %.1f fps decoded, %.1f presented", after, r.Decoded, r.Presented)
	if r.Decoded < 20 {
		t.Errorf("driver decodes %.1f fps %s, want >= 20", r.Decoded, after)
	}
}

// serveWHEPPage serves whepPage on a loopback port (another origin than
// the engine's) until the test ends and returns its URL.
func serveWHEPPage(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(whepPage))
	})
	ps := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = ps.Serve(ln) }()
	t.Cleanup(func() { ps.Close() })
	return "http://" + ln.Addr().String() + "/"
}

// openWHEPViewer opens the WHEP player page in a new tab of parent's
// browser, starts watching session sid of engineURL and returns the tab's
// evaluator and a func closing the tab (idempotent; it also runs when the
// test ends).
func openWHEPViewer(t *testing.T, parent context.Context, pageURL, engineURL, sid string) (func(what, js string, out any), func()) {
	t.Helper()
	tctx, closeTab := chromedp.NewContext(parent)
	t.Cleanup(closeTab)
	if err := chromedp.Do(tctx, chromedp.Navigate(pageURL)); err != nil {
		closeTab()
		t.Fatalf("open the WHEP page: %v", err)
	}
	eval := evaluator(t, tctx)
	var loc string
	eval("WHEP start", fmt.Sprintf(`whep.start(%q)`, engineURL+"/sessions/"+sid+"/whep"), &loc)
	return eval, closeTab
}

// readStamps starts stamp reading in both pages, lets them present frames
// for ms and returns the stamps each read.
func readStamps(t *testing.T, driver, viewer func(what, js string, out any), ms int) (d, v []int) {
	t.Helper()
	driver("driver stamps", stampJS, nil)
	viewer("viewer stamps", stampJS, nil)
	driver("watch", fmt.Sprintf(`new Promise((r) => setTimeout(r, %d))`, ms), nil)
	viewer("viewer stamps read", `(window.__stampsDone = true, window.__stamps)`, &v)
	driver("driver stamps read", `(window.__stampsDone = true, window.__stamps)`, &d)
	return d, v
}

// checkSameFrames fails t unless the viewer's stamps show the frames the
// driver's show: each page reads increasing counters, at least a third of
// the viewer's (and 20) are stamps the driver presented too, and none is
// more than a second (30 frames) outside the driver's range.
func checkSameFrames(t *testing.T, d, v []int) {
	t.Helper()
	if len(d) < 30 || len(v) < 30 {
		t.Fatalf("stamps read: driver %d, viewer %d in 3 s; want >= 30 each", len(d), len(v))
	}
	for name, s := range map[string][]int{"driver": d, "viewer": v} {
		back := 0
		for i := 1; i < len(s); i++ {
			if s[i] < s[i-1] {
				back++
			}
		}
		if back > len(s)/20 {
			t.Errorf("%s's stamps go back %d times in %d frames: the stamp is not read (%v)", name, back, len(s), s)
		}
	}
	seen := map[int]bool{}
	for _, n := range d {
		seen[n] = true
	}
	lo, hi := slices.Min(d), slices.Max(d)
	common, outside := 0, 0
	for _, n := range v {
		if seen[n] {
			common++
		}
		if n < lo-30 || n > hi+30 {
			outside++
		}
	}
	t.Logf("frames presented over 3 s: driver %d (%d..%d), viewer %d (%d..%d), %d of the viewer's also the driver's",
		len(d), lo, hi, len(v), slices.Min(v), slices.Max(v), common)
	if common < 20 || common < len(v)/3 || outside > len(v)/20 {
		t.Errorf("the viewer does not show the driver's frames: %d of %d stamps in common, %d outside the driver's %d..%d (driver %v, viewer %v)",
			common, len(v), outside, lo, hi, d, v)
	}
}

// TestBrowserSDKWithWHEPPage: the real SDK 2.9.0 in Chromium drives the
// counter model while a second page of the same browser, a WHEP player
// with no SDK, watches the session: both present the same frames (the
// frame counter stamped in the picture), the driver's commands and an
// upload work while it watches, the player leaving (DELETE its Location)
// leaves the driver streaming at >= 20 fps, a second player closing its
// tab does too, and the driver's disconnect() (stop_session) ends a third.
func TestBrowserSDKWithWHEPPage(t *testing.T) {
	needBrowser(t)
	engineURL := startModelServer(t, counterModel())
	whepURL := serveWHEPPage(t)
	driver, dctx := openHarnessWithin(t, 150*time.Second)
	driver("connect", fmt.Sprintf(`fw.connect(%q, "framewire-counter")`, engineURL), nil)
	var sid string
	driver("session id", `fw.sessionId()`, &sid)

	type frames struct {
		FPS           float64 `json:"fps"`
		Width, Height int
	}
	var f frames
	viewer, closeViewer := openWHEPViewer(t, dctx, whepURL, engineURL, sid)
	viewer("viewer frames", `whep.frames(2000)`, &f)
	if f.Width != counterW || f.Height != counterH || f.FPS < 10 {
		t.Errorf("the WHEP page presents %dx%d at %.1f fps; want %dx%d at >= 10", f.Width, f.Height, f.FPS, counterW, counterH)
	}
	driver("driver frames", `fw.frames(1000)`, nil)
	d, v := readStamps(t, driver, viewer, 3000)
	checkSameFrames(t, d, v)

	// The driver's commands and an upload while the page watches.
	var n int
	var m map[string]any
	driver("message count", `fw.state.messages.length`, &n)
	driver("set_color", `fw.command("set_color", {hue: 120, mode: "solid"})`, nil)
	driver("color_set", fmt.Sprintf(`fw.waitMessage("color_set", %d, 5000)`, n), &m)
	if m["hue"] != 120.0 {
		t.Errorf("color_set %v; want hue 120", m)
	}
	const text = "hello framewire, uploaded while a WHEP page watches"
	driver("message count", `fw.state.messages.length`, &n)
	driver("upload", fmt.Sprintf(`fw.upload(%q)`, text), nil)
	driver("file_info", fmt.Sprintf(`fw.waitMessage("file_info", %d, 15000)`, n), &m)
	if sum := sha256.Sum256([]byte(text)); m["sha256"] != hex.EncodeToString(sum[:]) || m["size"] != float64(len(text)) {
		t.Errorf("file_info %v; want size %d, sha256 %x", m, len(text), sum)
	}
	viewer("viewer frames after the commands", `whep.frames(1000)`, &f)
	if f.FPS < 10 {
		t.Errorf("the WHEP page at %.1f fps after the driver's commands", f.FPS)
	}

	// The player leaves with DELETE: the driver streams on.
	var code int
	viewer("WHEP DELETE", `whep.leave()`, &code)
	if code != http.StatusOK {
		t.Errorf("DELETE the WHEP Location: %d; want 200", code)
	}
	closeViewer()
	checkDriverStreams(t, driver, "after the WHEP page left (DELETE)")

	// A second player closes its tab without a DELETE.
	viewer2, closeViewer2 := openWHEPViewer(t, dctx, whepURL, engineURL, sid)
	viewer2("second viewer frames", `whep.frames(1000)`, nil)
	closeViewer2()
	checkDriverStreams(t, driver, "after the WHEP tab closed")

	// A third player, then the driver's disconnect() ends it.
	viewer3, _ := openWHEPViewer(t, dctx, whepURL, engineURL, sid)
	viewer3("third viewer frames", `whep.frames(1000)`, nil)
	driver("disconnect", `fw.disconnect()`, nil)
	var end struct {
		Connection, DTLS  string
		TrackEnded, Ended bool
	}
	waitTrue(t, 30*time.Second, "the WHEP page's connection ends after the driver's disconnect()", func() bool {
		viewer3("viewer ended", `whep.ended()`, &end)
		return end.Ended
	})
	t.Logf("after disconnect(): the WHEP page's connection %s, DTLS %s, track ended %v", end.Connection, end.DTLS, end.TrackEnded)
}
