package record

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

const chromium = "/usr/bin/chromium"

// stamp is the grey level frame n is painted with.
func stamp(n int) byte { return byte(16 + (n*7)%224) }

// TestClipPlaysInChromium records 2 s of flat frames, each stamped with
// its own grey level, and plays the playlist's init segment and media
// segments (H.264 video and AAC audio) through Media Source Extensions in
// headless Chromium, as a client that downloads a clip does: the buffered
// range (of both tracks) is the clip's
// media time, and the picture shown at a frame's time is that frame.
// FRAMEWIRE_E2E=1 makes a missing Chromium a failure.
func TestClipPlaysInChromium(t *testing.T) {
	if _, err := os.Stat(chromium); err != nil {
		if os.Getenv("FRAMEWIRE_E2E") != "" {
			t.Fatalf("%s missing: %v", chromium, err)
		}
		t.Skipf("%s missing", chromium)
	}
	s := openStore(t, StoreConfig{Dir: t.TempDir()})
	rec, err := s.NewRecorder("", Config{Enabled: true, ChunkSeconds: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- rec.Run(context.Background()) }()
	f := newFeeder(t, 64, 64)
	f.flat = stamp
	au, key := f.frame()
	codec := ""
	for nal := range nalUnits(au) {
		if nal[0]&0x1f == 7 && len(nal) >= 4 {
			// The init segment has an H.264 track and an AAC-LC one: MSE
			// wants both named.
			codec = fmt.Sprintf("avc1.%02x%02x%02x, mp4a.40.2", nal[1], nal[2], nal[3])
		}
	}
	tap := rec.VideoTap(30)
	tap.Packet(au, key, 64, 64, time.Second/30)
	f.feed(tap, 59)
	_ = rec.Close()
	<-done

	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "<!doctype html><title>clip</title><body></body>")
	})
	mux.HandleFunc("GET /clips", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		start, _ := strconv.ParseFloat(q.Get("start"), 64)
		end, _ := strconv.ParseFloat(q.Get("end"), 64)
		code, body := s.Playlist(q.Get("session_id"), start, end, "")
		w.WriteHeader(code)
		fmt.Fprint(w, body)
	})
	mux.HandleFunc("GET /clips/chunks/{sid}/{name}", func(w http.ResponseWriter, r *http.Request) {
		code, path, ctype := s.Chunk(r.PathValue("sid"), r.PathValue("name"))
		if code != http.StatusOK {
			http.Error(w, ctype, code)
			return
		}
		w.Header().Set("Content-Type", ctype)
		http.ServeFile(w, r, filepath.Clean(path))
	})
	hs := httptest.NewServer(mux)
	defer hs.Close()

	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.UserDataDir(t.TempDir()), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true))...)
	defer cancelAlloc()
	cctx, cancelTab := chromedp.NewContext(actx)
	defer cancelTab()
	if err := chromedp.Do(cctx, chromedp.Navigate(hs.URL+"/")); err != nil {
		t.Fatalf("open page: %v", err)
	}
	ctx, cancel := context.WithTimeout(cctx, 30*time.Second)
	defer cancel()
	clip, _ := rec.Recording("")
	times := []int{0, 15, 29, 30, 44, 59} // frames on both sides of the segment boundary
	js := fmt.Sprintf(`(async () => {
		const codec = %q, frames = %s;
		const text = await (await fetch(%q)).text();
		const uris = [];
		for (const l of text.split("\n")) {
			if (l.startsWith('#EXT-X-MAP:URI="')) uris.push(l.slice(16, -1));
			else if (l && !l.startsWith("#")) uris.push(l);
		}
		const type = 'video/mp4; codecs="' + codec + '"';
		if (!MediaSource.isTypeSupported(type)) return {error: "MSE does not take " + type};
		const v = document.createElement("video");
		v.muted = true;
		document.body.appendChild(v);
		const ms = new MediaSource();
		v.src = URL.createObjectURL(ms);
		window.step = "sourceopen";
		await new Promise(r => ms.addEventListener("sourceopen", r, {once: true}));
		window.step = "appending";
		const sb = ms.addSourceBuffer(type);
		for (const u of uris) {
			const b = await (await fetch(u)).arrayBuffer();
			await new Promise((ok, fail) => { sb.onupdateend = ok; sb.onerror = () => fail(new Error("append " + u)); sb.appendBuffer(b); });
		}
		ms.endOfStream();
		window.step = "appended";
		const c = document.createElement("canvas");
		c.width = c.height = 64;
		const g = c.getContext("2d", {willReadFrequently: true});
		const levels = [];
		for (const n of frames) {
			// "seeked" can fire before the new picture is composited (seen
			// near the stream's end: the previous frame drawn); the frame
			// callback says the sought picture is the one shown.
			const shown = new Promise(r => v.requestVideoFrameCallback(() => r()));
			v.currentTime = (n + 0.5) / 30;
			await new Promise(r => v.addEventListener("seeked", r, {once: true}));
			await Promise.race([shown, new Promise(r => setTimeout(r, 1000))]);
			window.step = "drawn " + n;
			g.drawImage(v, 0, 0, 64, 64);
			levels.push(g.getImageData(32, 32, 1, 1).data[1]);
		}
		return {segments: uris.length - 1, ranges: sb.buffered.length, start: sb.buffered.start(0), end: sb.buffered.end(0), levels};
	})()`, codec, mustJSON(times), hs.URL+clip.PlaylistURL)
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[[]byte](js, chromedp.EvalAwaitPromise))
	if err != nil {
		step, _ := chromedp.Run(cctx, chromedp.Evaluate[string](`String(window.step)`))
		t.Fatalf("play the clip: %v (at %q)", err, step)
	}
	var got struct {
		Error      string
		Segments   int
		Ranges     int
		Start, End float64
		Levels     []int
	}
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	if got.Error != "" {
		t.Fatal(got.Error)
	}
	// The range ends where the longer track does once the stream has
	// ended: the audio, 2 s of samples padded to whole AAC packets plus
	// the encoder's priming packet (at most two packets of 1024 samples).
	if got.Segments != 2 || got.Ranges != 1 || got.Start > 0.001 || got.End < 1.99 || got.End > 2+2*1024.0/AudioRate {
		t.Fatalf("buffered %+v, want one range 0–2 s (plus the audio's last packets) from 2 segments", got)
	}
	for i, n := range times {
		if d := got.Levels[i] - int(stamp(n)); d < -6 || d > 6 {
			t.Errorf("frame %d shows level %d, want %d (the frame the model emitted at that time)", n, got.Levels[i], stamp(n))
		}
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
