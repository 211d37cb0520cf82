//go:build cuda

package host

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/framewire/framewire/engine"
	"github.com/framewire/framewire/engine/enginetest"
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
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := a.Stats()
		if len(st) == 1 && len(st[0].Video) == 1 && st[0].Video[0].Sent >= 20 {
			v := st[0].Video[0]
			if v.DeviceErrors != 0 || !strings.HasPrefix(v.Backend, "cuda") {
				t.Fatalf("stats %+v: want no device errors and a cuda backend", v)
			}
			t.Logf("device path: backend %s, sent %d, encode p50 %v", v.Backend, v.Sent, v.EncodeP50)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("device frames not sent within 10 s: %+v", st)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
