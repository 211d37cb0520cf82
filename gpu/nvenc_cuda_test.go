//go:build cuda

package gpu

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/framewire/framewire/encode"
)

// lockedBuffer is a bytes.Buffer for a slog handler that FFmpeg's threads
// and the test write concurrently.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// requireRefusingNVENC skips unless libnvidia-encode.so.1 is the
// emulator's, which refuses every session as an H100's driver does.
func requireRefusingNVENC(t *testing.T, d *Device) {
	t.Helper()
	if !emulated(d) || !libPresent(libNVENC) || EmulatorStat("nvenc.sessions_refused") < 0 {
		t.Skip("needs the emulated driver's refusing libnvidia-encode.so.1 (build/cudaemu)")
	}
}

// The H100 case: libnvidia-encode.so.1 loads and refuses every session.
// Three encoders of one device (three output tracks) and the host-frame
// question (EncodesHostFrames) try one NVENC session in all; every encoder
// runs cuda+libx264; the refusal is logged once at INFO with FFmpeg's
// reason ("unsupported device"), and nothing is logged above INFO
// (FFmpeg's ERROR line is captured into that reason). Before the verdict
// was cached, each track retried h264_nvenc and FFmpeg logged an ERROR
// each time.
func TestNVENCRefusedOncePerDevice(t *testing.T) {
	d := openDevice(t)
	requireRefusingNVENC(t, d)
	var logged lockedBuffer
	log := slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelDebug}))
	encode.RouteFFmpegLog(log)
	defer encode.RouteFFmpegLog(nil)
	before := EmulatorStat("nvenc.sessions_refused")
	const w, h = 320, 240
	src := upload(t, d, testImage(w, h, 3, 9))
	out := make([]byte, 1<<20)
	for i := range 3 {
		enc, err := NewEncoder(d, EncoderConfig{}, log.With("track", i))
		if err != nil {
			t.Fatal(err)
		}
		defer enc.Close()
		if n, _, err := enc.Encode(Frame{Ptr: src.Ptr(), Width: w, Height: h, Format: RGB24}, 3000, out); err != nil || n == 0 {
			t.Fatalf("track %d: Encode n=%d err=%v", i, n, err)
		}
		if enc.Backend() != BackendX264 {
			t.Errorf("track %d: backend %s, want %s", i, enc.Backend(), BackendX264)
		}
		if enc.EncodesHostFrames() {
			t.Errorf("track %d: EncodesHostFrames on a device whose NVENC refuses sessions", i)
		}
	}
	if n := EmulatorStat("nvenc.sessions_refused") - before; n != 1 {
		t.Errorf("%d NVENC sessions tried for three tracks, want 1 (the verdict cached per device)", n)
	}
	if bad := EmulatorStat("nvenc.bad_calls"); bad != 0 {
		t.Errorf("%d malformed NVENC session calls", bad)
	}
	text := logged.String()
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		if strings.Contains(line, "level=ERROR") || strings.Contains(line, "level=WARN") {
			t.Errorf("logged above INFO: %s", line)
		}
	}
	if c := strings.Count(text, "h264_nvenc does not open"); c != 1 || !strings.Contains(text, "unsupported device") {
		t.Errorf("want one INFO line with FFmpeg's reason (unsupported device), got %d in:\n%s", c, text)
	}
}
