//go:build cuda

package host

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/framewire/framewire/encode"
	"github.com/framewire/framewire/engine"
	"github.com/framewire/framewire/engine/cluster/auth"
	"github.com/framewire/framewire/engine/cluster/node"
	"github.com/framewire/framewire/engine/cluster/registry"
	"github.com/framewire/framewire/engine/enginetest"
	"github.com/framewire/framewire/engine/metrics"
	"github.com/framewire/framewire/engine/peer"
	"github.com/framewire/framewire/engine/pipeline"
	"github.com/framewire/framewire/engine/wiring"
	"github.com/framewire/framewire/gpu"
	"github.com/framewire/framewire/tracks"
)

// On a GPU host: a model that emits batches of two device pictures
// (EmitDevice) has them encoded on the device by the adapter's gpu.Encoder,
// every picture of every batch, with no device errors. Without a device it
// checks that the setup refuses device frames with the reason.
func TestDeviceFramesThroughAdapter(t *testing.T) {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	dev := openDevice(log)
	defer dev.close()
	if dev.device == nil {
		if dev.encoder != nil || dev.option == nil {
			t.Fatal("without a device the setup must refuse device frames and offer no encoder")
		}
		t.Skip("no CUDA device here")
	}
	const w, h = 320, 240
	buf, err := dev.device.Alloc(2 * w * h * 3)
	if err != nil {
		t.Fatal(err)
	}
	defer buf.Close()
	pix := make([]byte, 2*w*h*3)
	for i := range pix {
		pix[i] = byte(i / 3 % 251)
	}
	if err := buf.Upload(pix); err != nil {
		t.Fatal(err)
	}
	frame := gpu.Frame{Ptr: buf.Ptr(), Width: w, Height: h, Format: gpu.RGB24, Count: 2}
	model := engine.Model{
		Name:   "device-emitter",
		Tracks: []tracks.Spec{tracks.VideoOutput("main_video", tracks.Rate(30))},
		New: func(engine.Config) (engine.Runner, error) {
			return engine.RunFunc(func(ctx context.Context, s *engine.Session) error {
				out, err := s.VideoOut("")
				if err != nil {
					return err
				}
				tick := time.NewTicker(time.Second / 15) // batches of 2 at 15/s: 30 pictures/s
				defer tick.Stop()
				for {
					select {
					case <-ctx.Done():
						return nil
					case <-tick.C:
					}
					if err := out.EmitDevice(frame); err != nil {
						return err
					}
				}
			}), nil
		},
	}
	eng, err := engine.New(model, dev.option)
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	a, err := wiring.New(eng, wiring.Config{DeviceEncoder: dev.encoder, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	enginetest.StartVideo(t, a)
	var st []wiring.SessionStats
	defer logIfFailed(t, &st)
	enginetest.Eventually(t, 10*time.Second, "20 device frames sent", func() bool {
		st = a.Stats()
		return len(st) == 1 && len(st[0].Video) == 1 && st[0].Video[0].Sent >= 20
	})
	v := st[0].Video[0]
	if v.DeviceErrors != 0 || !strings.HasPrefix(v.Backend, "cuda") {
		t.Fatalf("stats %+v: want no device errors and a cuda backend", v)
	}
	t.Logf("device path: backend %s, sent %d, encode p50 %v", v.Backend, v.Sent, v.EncodeP50)
}

// logIfFailed logs the last stats a poll read when the test has failed
// (deferred: it runs when Eventually gives up, too).
func logIfFailed[T any](t *testing.T, last *T) {
	if t.Failed() {
		t.Logf("last stats read: %+v", *last)
	}
}

// threeTrackModel emits frame on three output tracks at 15 pictures/s.
func threeTrackModel(frame gpu.Frame) engine.Model {
	names := []string{"main_video", "depth", "mask"}
	var specs []tracks.Spec
	for _, n := range names {
		specs = append(specs, tracks.VideoOutput(n, tracks.Rate(15)))
	}
	return engine.Model{
		Name:   "three-device-tracks",
		Tracks: specs,
		New: func(engine.Config) (engine.Runner, error) {
			return engine.RunFunc(func(ctx context.Context, s *engine.Session) error {
				var outs []*tracks.VideoOut
				for _, n := range names {
					out, err := s.VideoOut(n)
					if err != nil {
						return err
					}
					outs = append(outs, out)
				}
				tick := time.NewTicker(time.Second / 15)
				defer tick.Stop()
				for {
					select {
					case <-ctx.Done():
						return nil
					case <-tick.C:
					}
					for _, out := range outs {
						if err := out.EmitDevice(frame); err != nil {
							return err
						}
					}
				}
			}), nil
		},
	}
}

// The H100 case end to end, under the emulated driver whose
// libnvidia-encode.so.1 loads and refuses every session: a session with
// three output tracks tries NVENC once for the device (not once per
// track), logs nothing above INFO (FFmpeg's ERROR line is captured into
// the one INFO verdict), and encodes every track through GPU conversion →
// pinned memory → libx264.
func TestThreeTracksOnGPUWithoutNVENC(t *testing.T) {
	var logged enginetest.SyncBuffer
	log := slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelDebug}))
	dev := openDevice(log)
	defer dev.close()
	if dev.device == nil || gpu.EmulatorStat("nvenc.sessions_refused") < 0 {
		t.Skip("needs the emulated driver with its refusing libnvidia-encode.so.1 (build/cudaemu)")
	}
	encode.RouteFFmpegLog(log)
	defer encode.RouteFFmpegLog(nil)
	const w, h = 160, 120
	buf, err := dev.device.Alloc(w * h * 3)
	if err != nil {
		t.Fatal(err)
	}
	defer buf.Close()
	if err := buf.Upload(make([]byte, w*h*3)); err != nil {
		t.Fatal(err)
	}
	eng, err := engine.New(threeTrackModel(gpu.Frame{Ptr: buf.Ptr(), Width: w, Height: h, Format: gpu.RGB24}), dev.option)
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	a, err := wiring.New(eng, wiring.Config{DeviceEncoder: dev.encoder, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	before := gpu.EmulatorStat("nvenc.sessions_refused") // the host encoders' probe tried its own
	s, err := a.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Engine().Stop("test over")
	maps := []peer.TrackMapping{
		{MID: "0", Name: "main_video", Kind: peer.KindVideo, Direction: peer.DirRecvonly},
		{MID: "1", Name: "depth", Kind: peer.KindVideo, Direction: peer.DirRecvonly},
		{MID: "2", Name: "mask", Kind: peer.KindVideo, Direction: peer.DirRecvonly},
	}
	if _, err := s.Prepare(enginetest.RecvOffer(t, peer.KindVideo, peer.KindVideo, peer.KindVideo), maps); err != nil {
		t.Fatal(err)
	}
	waitThreeTracksSent(t, a, 10)
	if n := gpu.EmulatorStat("nvenc.sessions_refused") - before; n != 1 {
		t.Errorf("%d NVENC sessions tried for three tracks of one device, want 1", n)
	}
	text := logged.String()
	for _, line := range strings.Split(text, "\n") {
		if strings.Contains(line, "level=ERROR") || strings.Contains(line, "level=WARN") {
			t.Errorf("logged above INFO: %s", line)
		}
	}
	if c := strings.Count(text, "h264_nvenc does not open"); c != 1 {
		t.Errorf("the NVENC verdict logged %d times, want once", c)
	}
}

// waitThreeTracksSent waits until each of the three tracks of the one
// session has sent n access units encoded by cuda+libx264 without device
// errors.
func waitThreeTracksSent(t *testing.T, a *wiring.Wiring, n uint64) {
	t.Helper()
	var st []wiring.SessionStats
	defer logIfFailed(t, &st)
	enginetest.Eventually(t, 20*time.Second, fmt.Sprintf("three tracks each sent %d access units", n), func() bool {
		st = a.Stats()
		done := len(st) == 1 && len(st[0].Video) == 3
		for i := 0; done && i < 3; i++ {
			v := st[0].Video[i]
			if v.DeviceErrors != 0 || (v.Backend != "" && v.Backend != string(gpu.BackendX264)) {
				t.Fatalf("track %s: %+v, want cuda+libx264 and no device errors", v.Track, v)
			}
			done = v.Sent >= n
		}
		return done
	})
}

// One session emits a device frame with a bad pointer (memory no
// allocation holds), another good frames, on one device: the bad session's
// frames are refused before any kernel runs (counted as device errors, the
// reason logged once), the good session keeps sending, the device is not
// poisoned and the process stays ready (health nil), and both sessions end
// cleanly. Before the pointer check the bad frame's kernel faulted and the
// sticky fault broke every session of the device.
func TestBadPointerSessionDoesNotBreakOthers(t *testing.T) {
	var logged enginetest.SyncBuffer
	log := slog.New(slog.NewTextHandler(&logged, nil))
	dev := openDevice(log)
	defer dev.close()
	if dev.device == nil {
		t.Skip("no CUDA device here")
	}
	const w, h = 160, 120
	buf, err := dev.device.Alloc(w * h * 3)
	if err != nil {
		t.Fatal(err)
	}
	defer buf.Close()
	if err := buf.Upload(make([]byte, w*h*3)); err != nil {
		t.Fatal(err)
	}
	var sessions atomic.Int32
	model := engine.Model{
		Name:   "bad-and-good",
		Tracks: []tracks.Spec{tracks.VideoOutput("main_video", tracks.Rate(30))},
		New: func(engine.Config) (engine.Runner, error) {
			return engine.RunFunc(func(ctx context.Context, s *engine.Session) error {
				f := gpu.Frame{Ptr: buf.Ptr(), Width: w, Height: h, Format: gpu.RGB24}
				if sessions.Add(1) == 1 {
					f.Ptr = 0x10000 // the first session's producer hands over a wrong pointer
				}
				return emitEvery(ctx, s, f, time.Second/30)
			}), nil
		},
	}
	eng, err := engine.New(model, dev.option, engine.WithMaxSessions(2))
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	a, err := wiring.New(eng, wiring.Config{DeviceEncoder: dev.encoder, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	s1, s2 := enginetest.StartVideo(t, a), enginetest.StartVideo(t, a)
	var vs [2][]pipeline.VideoStats
	defer logIfFailed(t, &vs)
	var bad, good pipeline.VideoStats
	enginetest.Eventually(t, 20*time.Second, "one session refused (5 device errors), the other sending (10 access units)", func() bool {
		vs = [2][]pipeline.VideoStats{s1.Stats().Video, s2.Stats().Video}
		if len(vs[0]) != 1 || len(vs[1]) != 1 {
			return false
		}
		bad, good = vs[0][0], vs[1][0] // whichever session's function ran first got the bad pointer
		if good.DeviceErrors > bad.DeviceErrors {
			bad, good = good, bad
		}
		return bad.DeviceErrors >= 5 && good.Sent >= 10
	})
	if good.DeviceErrors != 0 || bad.Sent != 0 {
		t.Fatalf("bad session %+v, good session %+v: want the bad one refused and the good one clean", bad, good)
	}
	if err := dev.health(); err != nil {
		t.Errorf("the process reports unhealthy after a refused bad pointer: %v", err)
	}
	if !strings.Contains(logged.String(), "is not CUDA memory") {
		t.Errorf("the bad session's reason was not logged:\n%s", logged.String())
	}
	s1.Engine().Stop("test over")
	s2.Engine().Stop("test over")
}

// emitEvery emits f on the session's default output every period until
// ctx ends (an emit error ends the session's function without error: the
// pipeline counts what it refuses).
func emitEvery(ctx context.Context, s *engine.Session, f gpu.Frame, period time.Duration) error {
	out, err := s.VideoOut("")
	if err != nil {
		return err
	}
	tick := time.NewTicker(period)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		if err := out.EmitDevice(f); err != nil {
			return nil
		}
	}
}

// A sticky fault no check could prevent (injected by the emulator into
// the next kernel, as a model's faulting kernel would raise it in the
// shared context) while two sessions stream: the device reports itself
// poisoned, the process's health fails (a node's /readyz answers 503 with
// the reason; framewire_gpu_device_poisoned is 1), both sessions end
// cleanly when stopped, and the device closes without a crash.
func TestPoisonedDeviceFailsReadiness(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	dev := openDevice(log)
	defer dev.close()
	if dev.device == nil || gpu.EmulatorStat("primary_faults") < 0 {
		t.Skip("needs the emulated driver (it injects the fault)")
	}
	const w, h = 160, 120
	buf, err := dev.device.Alloc(w * h * 3)
	if err != nil {
		t.Fatal(err)
	}
	defer buf.Close()
	if err := buf.Upload(make([]byte, w*h*3)); err != nil {
		t.Fatal(err)
	}
	f := gpu.Frame{Ptr: buf.Ptr(), Width: w, Height: h, Format: gpu.RGB24}
	model := engine.Model{
		Name:   "streaming",
		Tracks: []tracks.Spec{tracks.VideoOutput("main_video", tracks.Rate(30))},
		New: func(engine.Config) (engine.Runner, error) {
			return engine.RunFunc(func(ctx context.Context, s *engine.Session) error { return emitEvery(ctx, s, f, time.Second/30) }), nil
		},
	}
	eng, err := engine.New(model, dev.option, engine.WithMaxSessions(2))
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	a, err := wiring.New(eng, wiring.Config{DeviceEncoder: dev.encoder, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	s1, s2 := enginetest.StartVideo(t, a), enginetest.StartVideo(t, a)
	enginetest.Eventually(t, 20*time.Second, "both sessions sending", func() bool {
		v1, v2 := s1.Stats().Video, s2.Stats().Video
		return len(v1) == 1 && len(v2) == 1 && v1[0].Sent >= 5 && v2[0].Sent >= 5
	})
	if err := dev.health(); err != nil {
		t.Fatalf("unhealthy before the fault: %v", err)
	}
	gpu.EmulatorInjectFault()
	enginetest.Eventually(t, 20*time.Second, "the device poisoned", func() bool { return dev.health() != nil })
	if !errors.Is(dev.health(), gpu.ErrDeviceFault) {
		t.Errorf("health: %v, want gpu.ErrDeviceFault", dev.health())
	}
	n := readyzOf(t, a, dev)
	if n.Code != http.StatusServiceUnavailable || !strings.Contains(n.Body.String(), "poisoned") {
		t.Errorf("/readyz of a node on the poisoned device: %d %s", n.Code, n.Body)
	}
	prom, err := metrics.Handler(a, nil, dev.gauges()...)
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	prom.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if !strings.Contains(rec.Body.String(), "\nframewire_gpu_device_poisoned 1\n") {
		t.Errorf("metrics do not say the device is poisoned")
	}
	s1.Engine().Stop("test over")
	s2.Engine().Stop("test over")
	enginetest.Eventually(t, 20*time.Second, "both sessions ended", func() bool { return len(a.Stats()) == 0 })
}

// readyzOf answers GET /readyz of a node serving a on dev (its Redis is
// never reached: the health check answers first).
func readyzOf(t *testing.T, a *wiring.Wiring, dev deviceSetup) *httptest.ResponseRecorder {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { rdb.Close() })
	issuer, err := auth.NewIssuer([]byte("a-shared-secret-of-32-bytes-or-more"))
	if err != nil {
		t.Fatal(err)
	}
	n, err := node.New(a, node.Config{ID: "n", Addr: "http://127.0.0.1:9", Store: registry.New(rdb, ""), Issuer: issuer, Health: dev.health})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	n.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	return rec
}
