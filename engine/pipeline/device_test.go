package pipeline_test

import (
	"context"
	"testing"
	"time"

	"github.com/framewire/framewire/encode"
	"github.com/framewire/framewire/engine/pipeline"
	"github.com/framewire/framewire/gpu"
	"github.com/framewire/framewire/tracks"
)

// lazyDevice stands in for gpu.Encoder: it opens at the first frame (its
// Backend is "" before), and its access units are larger than the
// pipeline's first guess, so the first encode reports gpu.ErrShortBuffer
// with the size it needs.
type lazyDevice struct {
	backend encode.Backend
	need    int
}

func (e *lazyDevice) Encode(f tracks.DeviceFrame, pts int64, out []byte) (int, bool, error) {
	e.backend = gpu.BackendX264
	if len(out) < e.need {
		return e.need, false, gpu.ErrShortBuffer
	}
	return e.need, true, nil
}
func (e *lazyDevice) RequestKeyframe()        {}
func (e *lazyDevice) SetBitrate(int)          {}
func (e *lazyDevice) Backend() encode.Backend { return e.backend }

// The device path speaks the codec vocabulary of the host path: the output
// buffer grows on the GPU encoder's short-buffer error as on encode's
// (defect 7: it checked encode.ErrShortBuffer only and never grew), and
// the backend in stats is what encodes, read after the encoder opened at
// the first frame (defect 6: it was cached before the first encode).
func TestVideoDeviceEncoderVocabulary(t *testing.T) {
	out := videoOut(t, tracks.Rate(100))
	out.SetDeviceSupport(nil)
	sink := newRecordSink(nil)
	enc := &lazyDevice{need: 1 << 20}
	v, err := pipeline.NewVideo(out, sink, pipeline.VideoConfig{Device: enc})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- v.Run(ctx) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(5 * time.Second)
	for v.Stats().Sent < 2 && time.Now().Before(deadline) {
		if err := out.EmitDevice(batchDevice{1}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	st := v.Stats()
	if st.Sent < 2 {
		t.Fatalf("stats %+v: the buffer never grew to the encoder's access unit", st)
	}
	if st.Backend != string(gpu.BackendX264) {
		t.Errorf("stats backend %q, want %q (what encodes, once open)", st.Backend, gpu.BackendX264)
	}
}
