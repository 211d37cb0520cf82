//go:build cuda

package gpu

// Tests of the test instrument: the emulated driver (gpu/cudaemu) must
// catch what it promises to catch, or the cuda tests that pass under it
// would prove nothing. They run only under the emulator.

import (
	"bytes"
	"fmt"
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
	case "kernel-bad-pointer", "kernel-past-end":
		err := d.Do(func() error {
			var s stream
			if err := s.open(); err != nil {
				return err
			}
			defer s.close()
			buf, _ := cu.MemAlloc(64 * 64 * 3 / 2)
			defer cu.MemFree(buf)
			f := Frame{Ptr: 0x10000, Width: 64, Height: 64, Format: RGB24}
			if name == "kernel-past-end" {
				f.Ptr = uintptr(buf) // 6 KiB: the 64x64 RGB24 picture needs 12 KiB
			}
			if err := d.toNV12(&s, f, uintptr(buf), 64, uintptr(buf)+64*64, 64, 64, 64); err != nil {
				return fmt.Errorf("launch: %w", err)
			}
			return s.sync()
		})
		fmt.Println("kernel fault returned:", err)
	case "unimplemented":
		err := d.Do(func() error { _, err := cu.MemAllocManaged(64, cu.AttachGlobal); return err })
		fmt.Println("unimplemented entry point returned:", err)
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
// with the reason. A kernel whose pointer parameters do not cover what it
// touches (outside device memory, or a picture larger than its
// allocation) launches, then faults as on a GPU: the next synchronisation
// returns CUDA_ERROR_ILLEGAL_ADDRESS, the emulator logs why, and the
// poisoned context's memory goes with it (no leak reported). An entry
// point the emulator does not implement returns an error and logs its
// name.
func TestEmulatorReportsMisuse(t *testing.T) {
	requireEmulator(t)
	for c, want := range map[string]string{
		"double-free":        "double free of device memory",
		"copy-out-of-range":  "runs past the end of the 64-byte allocation",
		"leak":               "leak: 100 bytes of device memory",
		"kernel-bad-pointer": "kernel fw_rgb_to_nv12, pointer parameter 0: 0x10000 (12288 bytes) is not in any live device or pinned allocation",
		"kernel-past-end":    "kernel fw_rgb_to_nv12, pointer parameter 0: [0x",
		"unimplemented":      "cuMemAllocManaged is not emulated",
	} {
		t.Run(c, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "FW_CUDAEMU_CASE="+c)
			out, err := cmd.CombinedOutput()
			aborts := c != "unimplemented" && !strings.HasPrefix(c, "kernel-")
			if aborts != (err != nil) {
				t.Fatalf("child exit %v, want an abort: %v\n%s", err, aborts, out)
			}
			if !bytes.Contains(out, []byte(want)) {
				t.Fatalf("child output does not say %q:\n%s", want, out)
			}
			if c == "unimplemented" && (!bytes.Contains(out, []byte("returned: ")) || bytes.Contains(out, []byte("returned: <nil>"))) {
				t.Fatalf("no error returned:\n%s", out)
			}
			if strings.HasPrefix(c, "kernel-") && !bytes.Contains(out, []byte("kernel fault returned: gpu: synchronize a stream: an illegal memory access was encountered (CUresult 700)")) {
				t.Fatalf("the fault did not surface at the next synchronisation:\n%s", out)
			}
		})
	}
}

// cuModuleLoadData checks the PTX's entry points against the kernels the
// emulator runs (kernels.cu compiled for the host): an entry with a
// parameter missing, or one kernels.cu does not have, does not load.
func TestEmulatorChecksPTXSignatures(t *testing.T) {
	d := requireEmulator(t)
	for name, ptx := range map[string]string{
		"parameter missing": strings.Replace(kernelsPTX, ",\n\t.param .u64 fw_rgb_to_nv12_param_10\n", "\n", 1),
		"parameter size":    strings.Replace(kernelsPTX, ".param .u64 fw_nv12_to_rgb_param_8", ".param .u32 fw_nv12_to_rgb_param_8", 1),
		"unknown entry":     strings.Replace(kernelsPTX, ".entry fw_nv12_to_rgb(", ".entry fw_nv12_to_bgr(", 1),
	} {
		if ptx == kernelsPTX {
			t.Fatalf("%s: the PTX edit did not apply", name)
		}
		err := d.Do(func() error {
			m, err := cu.LoadData(ptx)
			if err == nil {
				_ = m.Unload()
			}
			return err
		})
		if err == nil {
			t.Errorf("%s: the module loaded", name)
		}
	}
	if err := d.Do(func() error {
		m, err := cu.LoadData(kernelsPTX)
		if err == nil {
			err = m.Unload()
		}
		return err
	}); err != nil {
		t.Errorf("the project's PTX: %v", err)
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
	th, err := startThread(d)
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
