package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/framewire/framewire/engine/host"
)

// TestDemoPageClip: the demo model records (its built-in config), and the
// demo page's "Clip the last 10 s" button, with the real SDK 2.9.0 in
// headless Chromium, sends requestClip through the SDK's data channel,
// polls GET /clips, fetches the segments and plays the clip: a video of
// the model's 640×360 output lasting at least one 4 s chunk.
func TestDemoPageClip(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("FRAMEWIRE_E2E") != "" {
			t.Fatalf("%s missing: %v", chromiumPath, err)
		}
		t.Skipf("%s missing", chromiumPath)
	}
	if _, err := host.PageDir(); err != nil {
		if os.Getenv("FRAMEWIRE_E2E") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	base := startServer(t, log, "-recordings", t.TempDir())
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), chromiumOptions(t, chromedp.WindowSize(1280, 900))...)
	defer cancelAlloc()
	cctx, cancelTab := chromedp.NewContext(actx)
	defer cancelTab()
	if err := chromedp.Do(cctx, chromedp.Navigate(base+"/")); err != nil {
		t.Fatalf("open page: %v", err)
	}
	ctx, cancel := context.WithTimeout(cctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.WaitVisible(`[data-testid=connect-button]`), chromedp.Click(`[data-testid=connect-button]`),
		chromedp.WaitVisible(`[data-testid=status][data-status=ready]`)); err != nil {
		t.Fatalf("connect: %v", err)
	}
	eval := evaluator(t, ctx)
	state := func() (s struct{ State, Detail string }) {
		eval("clip state", `(() => { const c = document.querySelector("[data-testid=clip-card]");
			return {state: c ? c.dataset.state : "", detail: (document.querySelector("[data-testid=clip-detail]") || {}).textContent || ""}; })()`, &s)
		return s
	}
	// Two seconds of output, then the clip (0–2 s: chunk 0, ready once it
	// closes at 4 s).
	waitTrue(t, 20*time.Second, "2 s of media recorded (GET /framewire/stats)", func() bool {
		doc := getStats(t, base)
		return len(doc.Sessions) == 1 && doc.Sessions[0].Recording != nil && doc.Sessions[0].Recording.Media >= 2*time.Second
	})
	if err := chromedp.Do(ctx, chromedp.Click(`[data-testid=clip-button]:not([disabled])`)); err != nil {
		t.Fatalf("click clip: %v", err)
	}
	waitTrue(t, 30*time.Second, "the clip ready in the page", func() bool {
		s := state()
		if s.State == "failed" {
			t.Fatalf("clip failed: %s", s.Detail)
		}
		return s.State == "ready"
	})
	var v struct {
		Duration      float64
		Width, Height int
		Ready         int
	}
	waitTrue(t, 10*time.Second, "the clip's video loaded", func() bool {
		eval("clip video", `(() => { const v = document.querySelector("[data-testid=clip-video]");
			return v ? {duration: v.duration, width: v.videoWidth, height: v.videoHeight, ready: v.readyState} : {}; })()`, &v)
		return v.Ready >= 2
	})
	if v.Width != demoW || v.Height != demoH || !(v.Duration >= 3.9) {
		t.Fatalf("clip video %+v, want %dx%d lasting at least a 4 s chunk (%s)", v, demoW, demoH, fmt.Sprint(state()))
	}
	t.Logf("clip: %+v, %s", v, state().Detail)
}
