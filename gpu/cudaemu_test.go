//go:build cuda

package gpu

// Tests of the test instrument: the emulated driver (gpu/cudaemu) must
// catch what it promises to catch, or the cuda tests that pass under it
// would prove nothing. They run only under the emulator.

import (
	"bytes"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"unsafe"

	"gorgonia.org/cu"
)

func init() { emulatorCase = runEmulatorCase }

// runEmulatorCase misuses the driver as name says; the emulator must abort
// the process. It returns 0 when it did not.
func runEmulatorCase(name string) int {
	d, err := Open(0)
	if err != nil {
		return 3
	}
	switch name {
	case "double-free":
		_ = d.Do(func() error {
			p, _ := cu.MemAlloc(64)
			_ = cu.MemFree(p)
			return cu.MemFree(p)
		})
	case "copy-out-of-range":
		_ = d.Do(func() error {
			p, _ := cu.MemAlloc(64)
			src := make([]byte, 64)
			return cu.MemcpyHtoD(p+32, unsafe.Pointer(&src[0]), 64)
		})
	case "leak":
		_ = d.Do(func() error { _, err := cu.MemAlloc(100); return err })
	}
	_ = d.Close()
	return 0
}

func requireEmulator(t *testing.T) *Device {
	t.Helper()
	d := openDevice(t)
	if !emulated(d) {
		t.Skipf("%s is not the emulated driver", d.Name())
	}
	return d
}

// A double free, a copy past an allocation's end, and device memory still
// allocated when the primary context is released each abort the process
// with the reason.
func TestEmulatorReportsMisuse(t *testing.T) {
	requireEmulator(t)
	for c, want := range map[string]string{
		"double-free":       "double free of device memory",
		"copy-out-of-range": "runs past the end of the 64-byte allocation",
		"leak":              "leak: 100 bytes of device memory",
	} {
		t.Run(c, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "FW_CUDAEMU_CASE="+c)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the child exited cleanly; want the emulator to abort it\n%s", out)
			}
			if !bytes.Contains(out, []byte(want)) {
				t.Fatalf("child output does not say %q:\n%s", want, out)
			}
		})
	}
}

// A thread without a current context gets CUDA_ERROR_INVALID_CONTEXT, as
// from the driver: calls off the device goroutine cannot pass unnoticed.
// (The goroutine clears the context first: an OS thread from Go's pool may
// have run a Device goroutine before, which used to leave its context
// current there; the emulator caught that as a leak.)
func TestEmulatorContextIsPerThread(t *testing.T) {
	requireEmulator(t)
	errc := make(chan error)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cu.SetCurrentContext(cu.CUContext{}); err != nil {
			errc <- err
			return
		}
		_, err := cu.MemAlloc(64)
		errc <- err
	}()
	if err := <-errc; err == nil || !strings.Contains(strings.ToLower(err.Error()), "context") {
		t.Fatalf("cuMemAlloc on a thread without a context: %v, want an invalid-context error", err)
	}
}

// Streams are asynchronous: a result read before synchronising is not
// there yet, and is after the sync, so a missing synchronisation in our
// code shows as wrong pixels under the emulator.
func TestEmulatorStreamsAreAsynchronous(t *testing.T) {
	d := requireEmulator(t)
	const w, h = 64, 32
	src := upload(t, d, testImage(w, h, 3, 3))
	dst, err := d.Alloc(w * h * 3 / 2)
	if err != nil {
		t.Fatal(err)
	}
	pin, err := d.AllocPinned(w * h * 3 / 2)
	if err != nil {
		t.Fatal(err)
	}
	var early, late []byte
	if err := withStream(d, func(s *stream) error {
		f := Frame{Ptr: src.Ptr(), Width: w, Height: h, Format: RGB24}
		if err := d.toNV12(s, f, dst.Ptr(), w, dst.Ptr()+w*h, w, w, h); err != nil {
			return err
		}
		if err := copyToPinned(s, pin, dst); err != nil {
			return err
		}
		early = bytes.Clone(pin.Bytes())
		if err := s.sync(); err != nil {
			return err
		}
		late = bytes.Clone(pin.Bytes())
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	y, uv := refRGBToNV12(testImage(w, h, 3, 3), w*3, 3, w, h, w, h)
	want := append(y, uv...)
	if bytes.Equal(early, want) {
		t.Error("the pinned copy was complete before the stream was synchronised: the emulator's streams are not asynchronous")
	}
	if d, at := maxDiff(late, want); d > 2 {
		t.Errorf("after the sync the picture differs from the reference by %d at %d", d, at)
	}
}

// A decoder's thread has the device's context current (the emulated
// driver refuses an allocation on a thread without one) and stops.
func TestDecoderThreadHasTheContext(t *testing.T) {
	d := openDevice(t)
	th, err := startThread(d.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := th.do(func() error {
		p, err := cu.MemAlloc(256)
		if err != nil {
			return err
		}
		return cu.MemFree(p)
	}); err != nil {
		t.Fatalf("allocate on a decoder thread: %v", err)
	}
	th.stop()
	th.stop()
	if err := th.do(func() error { return nil }); err != ErrClosed {
		t.Errorf("do after stop: %v, want ErrClosed", err)
	}
}
