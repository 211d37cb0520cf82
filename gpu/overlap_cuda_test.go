//go:build cuda

package gpu

import (
	"sync"
	"testing"
)

// Four sessions' device work overlaps in time: each Encoder makes its
// CUDA calls (the frame check, the wait for the producer, the kernel, the
// copy, the blocking synchronisation) on an OS thread of its own, on its
// own stream, so one session's kernel runs while another's does instead of
// queueing behind it on the Device's goroutine (where each frame's
// synchronisation held every other session's launch back). The emulator
// runs each stream's work on a thread of its own and counts the most
// kernels running at once.
func TestFourSessionsDeviceWorkOverlaps(t *testing.T) {
	d := openDevice(t)
	if EmulatorStat("max_concurrent_kernels") < 0 {
		t.Skip("needs the emulated driver (it counts kernels running at once)")
	}
	const w, h, sessions, frames = 640, 360, 4, 8
	src := upload(t, d, testImage(w, h, 3, 8))
	var encs []*Encoder
	for range sessions {
		enc, err := NewEncoder(d, EncoderConfig{Width: w, Height: h, Backend: BackendX264}, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer enc.Close()
		encs = append(encs, enc)
	}
	EmulatorStat("max_concurrent_kernels") // restart the count
	var wg sync.WaitGroup
	for i, enc := range encs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out := make([]byte, 1<<20)
			for k := range frames {
				if _, _, err := enc.Encode(Frame{Ptr: src.Ptr(), Width: w, Height: h, Format: RGB24}, int64(k+1)*3000, out); err != nil {
					t.Errorf("session %d frame %d: %v", i, k, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if n := EmulatorStat("max_concurrent_kernels"); n < 2 {
		t.Errorf("at most %d kernel running at once over %d sessions: their device work was serialised", n, sessions)
	}
}
