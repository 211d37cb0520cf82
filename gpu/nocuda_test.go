//go:build !cuda

package gpu

import (
	"errors"
	"strings"
	"testing"
)

// A binary built without the cuda tag says so clearly from every
// constructor and every device-frame operation.
func TestNoCUDABuildReturnsClearError(t *testing.T) {
	if !strings.Contains(ErrNoCUDA.Error(), "built without CUDA") {
		t.Errorf("ErrNoCUDA = %q, want it to say \"built without CUDA\"", ErrNoCUDA)
	}
	d, err := Open(0)
	if !errors.Is(err, ErrNoCUDA) || d != nil {
		t.Fatalf("Open(0) = %v, %v; want nil, ErrNoCUDA", d, err)
	}
	if err := d.Close(); err != nil {
		t.Errorf("Close of a nil Device: %v", err)
	}
	enc, err := NewEncoder(d, EncoderConfig{Width: 1280, Height: 720}, nil)
	if !errors.Is(err, ErrNoCUDA) || enc != nil {
		t.Fatalf("NewEncoder = %v, %v; want nil, ErrNoCUDA", enc, err)
	}
	frame := Frame{Ptr: 0x1000, Width: 1280, Height: 720, Format: RGB24}
	if _, _, err := enc.Encode(frame, 0, make([]byte, 1024)); !errors.Is(err, ErrNoCUDA) {
		t.Errorf("Encode of a device frame: %v, want ErrNoCUDA", err)
	}
	if b := enc.Backend(); b != BackendCPU {
		t.Errorf("Backend() = %q, want %q", b, BackendCPU)
	}
	dec, err := NewDecoder(d)
	if !errors.Is(err, ErrNoCUDA) || dec != nil {
		t.Fatalf("NewDecoder = %v, %v; want nil, ErrNoCUDA", dec, err)
	}
	if _, _, _, err := dec.Latest(make([]byte, 16)); !errors.Is(err, ErrNoCUDA) {
		t.Errorf("Latest: %v, want ErrNoCUDA", err)
	}
	if err := dec.LatestDevice(frame); !errors.Is(err, ErrNoCUDA) {
		t.Errorf("LatestDevice: %v, want ErrNoCUDA", err)
	}
	if _, err := d.Alloc(16); !errors.Is(err, ErrNoCUDA) {
		t.Errorf("Alloc: %v, want ErrNoCUDA", err)
	}
	if _, err := d.AllocPinned(16); !errors.Is(err, ErrNoCUDA) {
		t.Errorf("AllocPinned: %v, want ErrNoCUDA", err)
	}
}

// A bad configuration is reported as such even without CUDA, before the
// missing-CUDA error.
func TestNoCUDAEncoderConfigValidated(t *testing.T) {
	_, err := NewEncoder(nil, EncoderConfig{Width: 0, Height: 720}, nil)
	if !errors.Is(err, ErrBadFrame) {
		t.Errorf("NewEncoder with width 0: %v, want ErrBadFrame", err)
	}
	_, err = NewEncoder(nil, EncoderConfig{Width: 64, Height: 64, Backend: "vaapi"}, nil)
	if err == nil || !strings.Contains(err.Error(), "unknown encoder backend") {
		t.Errorf("NewEncoder with backend vaapi: %v, want an unknown-backend error", err)
	}
}
