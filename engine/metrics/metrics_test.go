package metrics_test

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/framewire/framewire/encode"
	"github.com/framewire/framewire/engine"
	"github.com/framewire/framewire/engine/enginetest"
	"github.com/framewire/framewire/engine/metrics"
	"github.com/framewire/framewire/engine/protocol"
	"github.com/framewire/framewire/engine/wiring"
)

// Handler reports the running session's pipeline (the model really
// draws, the pipeline really encodes with libx264), the engine's totals
// and the server's counters, read from the snapshots at scrape time.
func TestMetrics(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	eng, err := engine.New(enginetest.GreyModel(320, 240), engine.WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	w, err := wiring.New(eng, wiring.Config{Backend: encode.BackendX264, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := protocol.NewServer(w, protocol.Config{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	h, err := metrics.Handler(w, srv)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(h)
	defer hs.Close()
	scrape := func() string {
		t.Helper()
		resp, err := http.Get(hs.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("GET /metrics: %d %s", resp.StatusCode, b)
		}
		return string(b)
	}
	value := func(text, series string) float64 {
		t.Helper()
		m := regexp.MustCompile("(?m)^" + regexp.QuoteMeta(series) + ` (\S+)$`).FindStringSubmatch(text)
		if m == nil {
			return -1
		}
		v, _ := strconv.ParseFloat(m[1], 64)
		return v
	}

	idle := scrape()
	if value(idle, `framewire_live_sessions`) != 0 || value(idle, `framewire_session_state{state="ready"}`) != 1 || value(idle, "go_goroutines") <= 0 {
		t.Fatalf("idle metrics wrong:\n%s", idle)
	}

	// A session with main_video's pipeline running into an unbound output
	// (what a peer would carry is dropped; everything before it is real).
	s := enginetest.StartVideo(t, w)
	var text string
	enginetest.Eventually(t, 10*time.Second, "five frames sent in the metrics", func() bool {
		text = scrape()
		return value(text, `framewire_video_frames_total{event="sent",track="main_video"}`) >= 5
	})
	for series, ok := range map[string]func(float64) bool{
		`framewire_live_sessions`: func(v float64) bool { return v == 1 },
		`framewire_video_encoder_info{backend="libx264",track="main_video"}`: func(v float64) bool { return v == 1 },
		`framewire_track_frames_total{event="emitted",track="main_video"}`:   func(v float64) bool { return v >= 5 },
		`framewire_video_target_bitrate_bps{track="main_video"}`:             func(v float64) bool { return v == 2_500_000 },
		`framewire_video_encode_seconds{quantile="0.5",track="main_video"}`:  func(v float64) bool { return v > 0 },
		`framewire_video_stage_seconds{quantile="0.5",stage="encoded",track="main_video"}`: func(v float64) bool {
			return v > 0 && v >= value(text, `framewire_video_stage_seconds{quantile="0.5",stage="dequeued",track="main_video"}`)
		},
		`framewire_track_frames_total{event="delivered",track="webcam"}`: func(v float64) bool { return v == 0 },
		`framewire_commands_total{outcome="run"}`:                        func(v float64) bool { return v == 0 },
		`framewire_sessions_started_total`:                               func(v float64) bool { return v == 1 },
	} {
		if v := value(text, series); !ok(v) {
			t.Errorf("%s = %v", series, v)
		}
	}

	// The session ends: its counts stay in the totals (a counter that
	// went down would read as a reset), its levels leave with it; a second
	// session adds to them.
	sent := `framewire_video_frames_total{event="sent",track="main_video"}`
	emitted := `framewire_track_frames_total{event="emitted",track="main_video"}`
	before := value(scrape(), sent)
	s.Engine().Stop("test: first session over")
	<-s.Engine().Done()
	enginetest.Eventually(t, 10*time.Second, "the ended session out of live_sessions", func() bool {
		text = scrape()
		return value(text, `framewire_live_sessions`) == 0
	})
	first, firstEmitted := value(text, sent), value(text, emitted)
	if first < before || firstEmitted < first {
		t.Errorf("after the session ended: %s = %v (was %v), %s = %v", sent, first, before, emitted, firstEmitted)
	}
	if v := value(text, `framewire_video_target_bitrate_bps{track="main_video"}`); v > 0 {
		t.Errorf("target bitrate %v with no session running; want 0 or absent", v)
	}
	enginetest.StartVideo(t, w)
	enginetest.Eventually(t, 10*time.Second, "the second session's frames added to the first's", func() bool {
		text = scrape()
		return value(text, sent) >= first+5
	})
	if v := value(text, emitted); v < firstEmitted+5 {
		t.Errorf("%s = %v with a second session running; want ≥ %v", emitted, v, firstEmitted+5)
	}
}

// The device-fault gauge follows the device's state (1 while poisoned).
func TestDeviceFaultGauge(t *testing.T) {
	var fault error
	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics.DeviceFaultGauge(func() error { return fault }))
	read := func() float64 {
		mfs, err := reg.Gather()
		if err != nil || len(mfs) != 1 {
			t.Fatalf("gather: %v, %d families", err, len(mfs))
		}
		return mfs[0].GetMetric()[0].GetGauge().GetValue()
	}
	if v := read(); v != 0 {
		t.Errorf("healthy: %v, want 0", v)
	}
	fault = errors.New("poisoned")
	if v := read(); v != 1 {
		t.Errorf("poisoned: %v, want 1", v)
	}
}
