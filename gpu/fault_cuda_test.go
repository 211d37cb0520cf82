//go:build cuda

package gpu

import (
	"errors"
	"runtime"
	"strings"
	"testing"

	"gorgonia.org/cu"
)

// otherContextBuffer allocates n bytes in a context of its own (not the
// primary context) on a locked thread, as a producer with its own
// cuCtxCreate would; the returned function frees it and destroys the
// context there.
func otherContextBuffer(t *testing.T, n int) (uintptr, func()) {
	t.Helper()
	work := make(chan func(), 1)
	ptr := make(chan uintptr, 1)
	done := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		defer close(done)
		ctx, err := cu.Device(0).MakeContext(cu.SchedAuto)
		if err != nil {
			t.Error(err)
			ptr <- 0
			return
		}
		p, err := cu.MemAlloc(int64(n))
		if err != nil {
			t.Error(err)
		}
		ptr <- uintptr(p)
		(<-work)()
		_ = cu.MemFree(p)
		_ = ctx.Destroy()
	}()
	p := <-ptr
	return p, func() { work <- func() {}; <-done }
}

// A device frame whose memory the conversion may not read is refused
// before the launch with ErrBadFrame naming why, by asking the driver
// (cuPointerGetAttributes), not by faulting on the device: memory no
// allocation holds, memory of another context, a picture that runs past
// its allocation. The device stays usable: no sticky fault, and another
// session's encoder goes on. Before the check each of these launched and
// the fault poisoned the context every session shares.
func TestBadFramePointerRefusedBeforeLaunch(t *testing.T) {
	d := openDevice(t)
	const w, h = 64, 64
	short, err := d.Alloc(w*h*3 - 100)
	if err != nil {
		t.Fatal(err)
	}
	other, release := otherContextBuffer(t, w*h*3)
	defer release()
	good := upload(t, d, testImage(w, h, 3, 1))
	healthy, err := NewEncoder(d, EncoderConfig{Width: w, Height: h, Backend: BackendX264}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer healthy.Close()
	faults := EmulatorStat("primary_faults")
	out := make([]byte, 1<<20)
	for name, tc := range map[string]struct {
		ptr  uintptr
		want string
	}{
		"unknown":       {0x10000, "is not CUDA memory"},
		"other context": {other, "memory of another CUDA context"},
		"past the end":  {short.Ptr(), "holds 12188 from there"},
	} {
		enc, err := NewEncoder(d, EncoderConfig{Width: w, Height: h, Backend: BackendX264}, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = enc.Encode(Frame{Ptr: tc.ptr, Width: w, Height: h, Format: RGB24}, 3000, out)
		if !errors.Is(err, ErrBadFrame) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want ErrBadFrame saying %q", name, err, tc.want)
		}
		enc.Close()
		if err := d.Fault(); err != nil {
			t.Fatalf("%s: the device is poisoned: %v", name, err)
		}
		if _, _, err := healthy.Encode(Frame{Ptr: good.Ptr(), Width: w, Height: h, Format: RGB24}, 3000, out); err != nil {
			t.Fatalf("%s: another session's encode: %v", name, err)
		}
	}
	if n := EmulatorStat("primary_faults"); n != faults {
		t.Errorf("%d sticky faults, want none", n-faults)
	}
}

// A sticky fault the frame check cannot prevent (here a kernel of "the
// model" with a wrong pointer, in the context every session shares)
// poisons the device: Fault reports it wrapping ErrDeviceFault, and every
// session's next device frame, a new encoder and an allocation are refused
// with that reason instead of failing with a bare CUDA error; everything
// still closes without a crash or a leak report.
func TestStickyFaultPoisonsDevice(t *testing.T) {
	d := openDevice(t)
	if EmulatorStat("primary_faults") < 0 {
		t.Skip("needs the emulated driver to raise a sticky fault on purpose")
	}
	const w, h = 64, 64
	src := upload(t, d, testImage(w, h, 3, 3))
	enc, err := NewEncoder(d, EncoderConfig{Width: w, Height: h, Backend: BackendX264}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	out := make([]byte, 1<<20)
	f := Frame{Ptr: src.Ptr(), Width: w, Height: h, Format: RGB24}
	if _, _, err := enc.Encode(f, 3000, out); err != nil {
		t.Fatal(err)
	}
	err = d.Do(func() error { // the model's kernel faults
		var s stream
		if err := s.open(); err != nil {
			return err
		}
		defer s.close()
		bad := Frame{Ptr: 0x10000, Width: w, Height: h, Format: RGB24}
		if err := d.toNV12(&s, bad, src.Ptr(), w, src.Ptr()+w*h, w, w, h); err != nil {
			return err
		}
		return s.sync()
	})
	if err == nil {
		t.Fatal("the faulting kernel reported no error")
	}
	fault := d.Fault()
	if !errors.Is(fault, ErrDeviceFault) || !strings.Contains(fault.Error(), "illegal memory access") {
		t.Fatalf("Fault() = %v, want ErrDeviceFault naming the illegal address", fault)
	}
	if _, _, err := enc.Encode(f, 6000, out); !errors.Is(err, ErrDeviceFault) {
		t.Errorf("Encode on a poisoned device: %v, want ErrDeviceFault", err)
	}
	if _, err := NewEncoder(d, EncoderConfig{}, nil); !errors.Is(err, ErrDeviceFault) {
		t.Errorf("NewEncoder on a poisoned device: %v, want ErrDeviceFault", err)
	}
	if _, err := d.Alloc(64); !errors.Is(err, ErrDeviceFault) {
		t.Errorf("Alloc on a poisoned device: %v, want ErrDeviceFault", err)
	}
}
