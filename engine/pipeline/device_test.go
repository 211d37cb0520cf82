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

// hostDevice is a device encoder that also takes host frames (gpu.Encoder
// on an NVENC GPU) when wants is set.
type hostDevice struct {
	lazyDevice
	wants     bool
	asked     int
	hostCalls int
}

func (e *hostDevice) EncodesHostFrames() bool { e.asked++; return e.wants }
func (e *hostDevice) EncodeRGB(pix []byte, w, h, stride int, pts int64, out []byte) (int, bool, error) {
	e.hostCalls++
	e.backend = gpu.BackendNVENC
	out[0] = 1
	return 1, true, nil
}

// Host frames go to the device encoder when it says so (upload + kernel →
// h264_nvenc, as design.md's backend table has it for the cuda build on an
// NVENC GPU), asked once; otherwise they keep the host encoder.
func TestVideoHostFramesOnDevice(t *testing.T) {
	for _, wants := range []bool{true, false} {
		out := videoOut(t, tracks.Rate(100))
		sink := newRecordSink(nil)
		enc := &hostDevice{wants: wants}
		v, err := pipeline.NewVideo(out, sink, pipeline.VideoConfig{Device: enc})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- v.Run(ctx) }()
		pix := make([]byte, 64*48*3)
		for range 3 {
			if err := out.Emit(pix, 48, 64, 3); err != nil {
				t.Fatal(err)
			}
			select {
			case <-sink.got:
			case <-time.After(5 * time.Second):
				t.Fatalf("wants=%v: frame not sent: %+v", wants, v.Stats())
			}
		}
		cancel()
		<-done
		st := v.Stats()
		if wants && (enc.hostCalls != 3 || st.Backend != string(gpu.BackendNVENC)) {
			t.Errorf("device takes host frames: %d EncodeRGB calls, backend %q; want 3 and %q", enc.hostCalls, st.Backend, gpu.BackendNVENC)
		}
		if !wants && (enc.hostCalls != 0 || st.Backend != string(encode.BackendX264)) {
			t.Errorf("device declines host frames: %d EncodeRGB calls, backend %q; want 0 and %q", enc.hostCalls, st.Backend, encode.BackendX264)
		}
		if enc.asked != 1 {
			t.Errorf("wants=%v: EncodesHostFrames asked %d times, want once", wants, enc.asked)
		}
	}
}
