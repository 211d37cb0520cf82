package gpu

import (
	"errors"
	"testing"
)

func TestFrameValidate(t *testing.T) {
	good := Frame{Ptr: 0x1000, Width: 64, Height: 48, Format: RGB24}
	if err := good.Validate(); err != nil {
		t.Fatalf("valid frame: %v", err)
	}
	if good.RowPitch() != 192 || good.FrameStride() != 192*48 || good.Frames() != 1 {
		t.Errorf("defaults: pitch %d stride %d frames %d", good.RowPitch(), good.FrameStride(), good.Frames())
	}
	for name, f := range map[string]Frame{
		"nil pointer":   {Width: 64, Height: 48, Format: RGB24},
		"no format":     {Ptr: 1, Width: 64, Height: 48},
		"zero width":    {Ptr: 1, Height: 48, Format: RGBA},
		"huge":          {Ptr: 1, Width: 20000, Height: 48, Format: RGBA},
		"short pitch":   {Ptr: 1, Width: 64, Height: 48, Format: RGBA, Pitch: 200},
		"short stride":  {Ptr: 1, Width: 64, Height: 48, Format: RGB24, Count: 2, Stride: 100},
		"negative size": {Ptr: 1, Width: 64, Height: 48, Format: RGB24, Count: -1},
		// CU_STREAM_PER_THREAD names the per-thread default stream of the
		// thread that uses the handle: waited for on the encoder's thread,
		// it orders nothing the producer's thread wrote.
		"per-thread default stream": {Ptr: 1, Width: 64, Height: 48, Format: RGB24, Stream: StreamPerThread},
	} {
		if err := f.Validate(); !errors.Is(err, ErrBadFrame) {
			t.Errorf("%s: Validate() = %v, want ErrBadFrame", name, err)
		}
	}
}

// The per-thread default stream is accepted with an Event (which orders
// the frame), and the legacy stream handle with or without one.
func TestFrameValidateStreams(t *testing.T) {
	for _, f := range []Frame{
		{Ptr: 1, Width: 64, Height: 48, Format: RGB24, Stream: StreamPerThread, Event: 9},
		{Ptr: 1, Width: 64, Height: 48, Format: RGB24, Stream: StreamLegacy},
	} {
		if err := f.Validate(); err != nil {
			t.Errorf("%+v: %v", f, err)
		}
	}
}

func TestFrameAt(t *testing.T) {
	b := Frame{Ptr: 0x10000, Width: 64, Height: 48, Format: RGBA, Pitch: 512, Count: 3, Stride: 512 * 64, Event: 7}
	f, err := b.At(2)
	if err != nil {
		t.Fatal(err)
	}
	if f.Ptr != 0x10000+2*512*64 || f.Frames() != 1 || f.Pitch != 512 || f.Event != 7 {
		t.Errorf("At(2) = %+v", f)
	}
	if _, err := b.At(3); !errors.Is(err, ErrBadFrame) {
		t.Errorf("At(3) of 3: %v, want ErrBadFrame", err)
	}
	if _, err := frameOf(nil, 0); !errors.Is(err, ErrBadFrame) {
		t.Errorf("frameOf(nil): %v", err)
	}
	if _, err := frameOf(fakeFrame{}, 0); !errors.Is(err, ErrBadFrame) {
		t.Errorf("frameOf(foreign type): %v", err)
	}
	if g, err := frameOf(&b, 1); err != nil || g.Ptr != 0x10000+512*64 {
		t.Errorf("frameOf(*Frame, 1) = %+v, %v", g, err)
	}
}

type fakeFrame struct{}

func (fakeFrame) Size() (int, int) { return 1, 1 }
func (fakeFrame) Frames() int      { return 1 }

// pooled is a producer's frame type: it embeds a Frame and implements
// tracks.Releaser to learn when the engine is done with the memory.
type pooled struct {
	Frame
	released *int
}

func (p pooled) Release() { *p.released++ }

// Encoders accept a type that embeds Frame (defect 5: frameOf accepted only
// Frame and *Frame, so a Releaser wrapper had every frame dropped).
func TestFrameOfAcceptsEmbeddingTypes(t *testing.T) {
	n := 0
	base := Frame{Ptr: 0x1000, Width: 64, Height: 48, Format: RGB24, Count: 2}
	for name, df := range map[string]DeviceFrame{"Frame": base, "*Frame": &base, "embedding": pooled{Frame: base, released: &n}, "*embedding": &pooled{Frame: base, released: &n}} {
		f, err := frameOf(df, 1)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if f.Ptr != base.Ptr+uintptr(64*3*48) || f.Width != 64 {
			t.Errorf("%s: picture 1 = %+v", name, f)
		}
	}
	if _, err := frameOf(struct{ DeviceFrame }{base}, 0); !errors.Is(err, ErrBadFrame) {
		t.Errorf("a type with no GPUFrame method: %v, want ErrBadFrame", err)
	}
	var df DeviceFrame = pooled{Frame: base, released: &n}
	if a := testing.AllocsPerRun(100, func() { _, _ = frameOf(df, 0) }); a != 0 {
		t.Errorf("frameOf of an embedding type allocates %.1f times", a)
	}
}
