//go:build !cuda

package main

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/framewire/framewire/engine/record"
	"github.com/framewire/framewire/engine/record/recordtest"
)

// TestPythonRecording: a Python model whose config.yml has a recording:
// block (tests/models/recording.py, 1 s chunks) records its output while
// the real SDK watches it; the recording served by GET /clips is read back
// by FFmpeg: H.264 and AAC of the same length, the AAC decoding to the
// model's 440 Hz tone.
func TestPythonRecording(t *testing.T) {
	needBrowser(t)
	needPython(t)
	recs := t.TempDir()
	url, logs := startPython(t, "tests/models/recording.py", "-recordings", recs)
	eval, _ := openHarness(t)
	connectPython(t, eval, url, "recording", 320, 240)
	var id string
	waitTrue(t, 10*time.Second, "a recording folder", func() bool {
		ents, _ := os.ReadDir(recs)
		for _, e := range ents {
			if e.IsDir() && record.ValidID(e.Name()) {
				id = e.Name()
			}
		}
		return id != ""
	})
	get := func(path string) (int, http.Header, []byte) {
		t.Helper()
		resp, err := http.Get(url + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, resp.Header, b
	}
	var playlist string
	waitTrue(t, 20*time.Second, "the playlist of 0–3 s", func() bool {
		code, _, b := get(fmt.Sprintf("/clips?session_id=%s&start=0&end=3", id))
		if code != http.StatusOK && code != http.StatusAccepted {
			t.Fatalf("GET /clips: %d %s", code, b)
		}
		playlist = string(b)
		return code == http.StatusOK
	})
	dir := t.TempDir()
	var files []string
	for _, l := range strings.Split(strings.TrimSpace(playlist), "\n") {
		u, ok := strings.CutPrefix(l, `#EXT-X-MAP:URI="`)
		if ok {
			u = strings.TrimSuffix(u, `"`)
		} else if strings.HasPrefix(l, "#") {
			continue
		} else {
			u = l
		}
		code, _, b := get(u)
		if code != http.StatusOK {
			t.Fatalf("GET %s: %d %s", u, code, b)
		}
		p := filepath.Join(dir, fmt.Sprintf("%02d_%s", len(files), filepath.Base(u)))
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, p)
	}
	st, err := recordtest.ProbeAudio(files...)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("recording %s: %d segments, video %.3f s, audio %.3f s (%d Hz)", id, len(files)-1, st.Duration, st.AudioDuration, st.AudioRate)
	if len(files) != 4 || st.Codec != "h264" || st.Audio != "aac" || st.Width != 320 || st.Height != 240 || math.Abs(st.Duration-3) > 0.05 ||
		math.Abs(st.AudioDuration-st.Duration) > 0.05 {
		t.Fatalf("recording %+v (%d files), want 3 s of 320x240 h264 and as much aac", st, len(files))
	}
	// The middle second: the model's tone, not silence.
	mid := st.PCM[st.AudioRate : 2*st.AudioRate]
	var sum float64
	for _, v := range mid {
		sum += float64(v) * float64(v)
	}
	rms, want := math.Sqrt(sum/float64(len(mid))), 8000.0/32768/math.Sqrt2
	if math.Abs(rms-want) > 0.15*want {
		t.Fatalf("audio RMS %.4f over the second second, want %.4f (the model's tone)\n%s", rms, want, logs.String())
	}
	if p440, p1k := power(mid, 440, st.AudioRate), power(mid, 1000, st.AudioRate); p440 < 100*p1k {
		t.Fatalf("audio power at 440 Hz %.3g, at 1 kHz %.3g: not the model's 440 Hz tone", p440, p1k)
	}
	eval("disconnect", `fw.disconnect()`, nil)
}

// power is the Goertzel power of x at freq Hz, rate samples a second.
func power(x []float32, freq float64, rate int) float64 {
	c := 2 * math.Cos(2*math.Pi*freq/float64(rate))
	var s1, s2 float64
	for _, v := range x {
		s1, s2 = float64(v)+c*s1-s2, s1
	}
	return s1*s1 + s2*s2 - c*s1*s2
}
