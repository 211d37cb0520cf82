//go:build cuda

package pipeline_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/framewire/framewire/engine/pipeline"
	"github.com/framewire/framewire/gpu"
	"github.com/framewire/framewire/tracks"
)

// releasing is a producer's frame type: it embeds gpu.Frame and learns
// when the track is done with each frame (tracks.Releaser).
type releasing struct {
	gpu.Frame
	released *atomic.Int64
}

func (r releasing) Release() { r.released.Add(1) }

// A real gpu.Encoder (no adapter, opening at the first frame) is a
// pipeline's device encoder: device frames of a producer type that embeds
// gpu.Frame are encoded and sent (defect 5: they were all dropped), each
// is released once, and stats name the backend that encoded. Under the
// emulated driver that is cuda+libx264.
func TestVideoGPUEncoderWithReleasingFrames(t *testing.T) {
	d, err := gpu.Open(0)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := d.Close(); err != nil {
			t.Errorf("close device: %v", err)
		}
	}()
	const w, h = 160, 120
	buf, err := d.Alloc(w * h * 3)
	if err != nil {
		t.Fatal(err)
	}
	pix := make([]byte, w*h*3)
	for i := range pix {
		pix[i] = byte(i % 253)
	}
	if err := buf.Upload(pix); err != nil {
		t.Fatal(err)
	}
	enc, err := gpu.EncoderFactory(d, nil)("main_video")
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	out := videoOut(t, tracks.Rate(100))
	out.SetDeviceSupport(nil)
	sink := newRecordSink(nil)
	v, err := pipeline.NewVideo(out, sink, pipeline.VideoConfig{Device: enc})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- v.Run(ctx) }()
	var released atomic.Int64
	const n = 5
	for range n {
		if err := out.EmitDevice(releasing{gpu.Frame{Ptr: buf.Ptr(), Width: w, Height: h, Format: gpu.RGB24}, &released}); err != nil {
			t.Fatal(err)
		}
		select {
		case <-sink.got:
		case <-time.After(10 * time.Second):
			t.Fatalf("frame not sent: %+v", v.Stats())
		}
	}
	cancel()
	<-done
	st := v.Stats()
	if st.Sent != n || st.DeviceErrors != 0 {
		t.Errorf("stats %+v: want %d sent, no device errors", st, n)
	}
	if got := released.Load(); got != n {
		t.Errorf("%d frames released, want %d", got, n)
	}
	if st.Backend != string(enc.Backend()) || enc.Backend() == "" {
		t.Errorf("stats backend %q, encoder reports %q", st.Backend, enc.Backend())
	}
	t.Logf("backend %s (emulated driver: a plumbing check, not a GPU figure)", st.Backend)
}
