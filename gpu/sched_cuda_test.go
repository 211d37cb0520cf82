//go:build cuda

package gpu

import (
	"testing"
	"time"
)

// cuCtxFlagsSchedMask and cuCtxSchedBlockingSync are cuda.h's
// CU_CTX_SCHED_MASK and CU_CTX_SCHED_BLOCKING_SYNC.
const (
	cuCtxFlagsSchedMask    = 0x07
	cuCtxSchedBlockingSync = 0x04
)

// No wait of ours spins a core: the primary context becomes active with
// CU_CTX_SCHED_BLOCKING_SYNC (set before Open's retain), so synchronous
// copies and every stream/event synchronize block the thread. Under the
// emulated driver, which waits as the flags say and counts how, encoding
// device frames (kernel, copy to pinned, stream sync) and uploading waits
// blocking, never spinning. With flags 0 (AUTO: spin while contexts <=
// cores) every one of those waits spun.
func TestWaitsBlockInsteadOfSpinning(t *testing.T) {
	d := openDevice(t)
	if EmulatorStat("waits_spin") < 0 {
		t.Skip("needs the emulated driver (it counts how waits wait)")
	}
	if f := EmulatorStat("primary_flags_at_retain"); f&cuCtxFlagsSchedMask != cuCtxSchedBlockingSync {
		t.Errorf("primary context became active with flags %#x, want CU_CTX_SCHED_BLOCKING_SYNC", f)
	}
	if !d.BlockingSync() {
		t.Error("BlockingSync() = false")
	}
	spin, blocking := EmulatorStat("waits_spin"), EmulatorStat("waits_blocking")
	const w, h = 320, 240
	src := upload(t, d, testImage(w, h, 3, 2))
	enc, err := NewEncoder(d, EncoderConfig{Width: w, Height: h, Backend: BackendX264}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	out := make([]byte, 1<<20)
	for i := range 5 {
		if _, _, err := enc.Encode(Frame{Ptr: src.Ptr(), Width: w, Height: h, Format: RGB24}, int64(i+1)*3000, out); err != nil {
			t.Fatal(err)
		}
	}
	if n := EmulatorStat("waits_spin") - spin; n != 0 {
		t.Errorf("%d waits spun (%d µs spinning in all), want 0", n, EmulatorStat("spin_us"))
	}
	if n := EmulatorStat("waits_blocking") - blocking; n < 5 {
		t.Errorf("%d blocking waits for an upload and five encodes, want at least 5", n)
	}
}

// The CPU-spin measurement (also run by gpu-check on a real GPU): the CPU
// time the device goroutine's thread uses while it waits for device work
// (on a GPU 200 kernels of 4K pictures queued, then one synchronisation;
// under the emulator a few small ones) is a small
// fraction of the time it waits. A spinning wait burns a whole core: its
// CPU time equals its wall time.
func TestWaitingCostsNoCPU(t *testing.T) {
	d := openDevice(t)
	w, h, launches := 3840, 2160, 200
	if underEmulator() {
		w, h, launches = 640, 360, 4 // the emulator runs a kernel on one CPU thread
	}
	src := upload(t, d, testImage(w, h, 3, 5))
	dst, err := d.Alloc(w * h * 3 / 2)
	if err != nil {
		t.Fatal(err)
	}
	var wall, cpu time.Duration
	f := Frame{Ptr: src.Ptr(), Width: w, Height: h, Format: RGB24}
	for range 5 {
		if err := withStream(d, func(s *stream) error {
			for range launches {
				if err := d.toNV12(s, f, dst.Ptr(), w, dst.Ptr()+uintptr(w*h), w, w, h); err != nil {
					return err
				}
			}
			c0, t0 := threadCPU(), time.Now()
			err := s.sync()
			cpu += threadCPU() - c0
			wall += time.Since(t0)
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("spin measurement on %s: the waiting thread used %v of CPU over %v of waiting (%.1f%%)", d.Name(), cpu, wall, 100*float64(cpu)/float64(wall))
	if wall < 5*time.Millisecond {
		t.Skipf("waited only %v: too short to measure", wall)
	}
	if cpu*4 > wall {
		t.Errorf("the waiting thread used %v of CPU over %v of waiting: it spins", cpu, wall)
	}
}
