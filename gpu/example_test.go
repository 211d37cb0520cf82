package gpu_test

import (
	"fmt"

	"github.com/framewire/framewire/gpu"
)

// An inference server hands its own CUDA memory to the encoder as a raw
// pointer: a batch of four 1280x720 RGB24 pictures, written on its stream.
func ExampleFrame() {
	var ptr, stream uintptr = 0x7f3a00000000, 0x5581 // from the server's allocator and stream
	batch := gpu.Frame{Ptr: ptr, Width: 1280, Height: 720, Format: gpu.RGB24, Count: 4, Stream: stream}
	if err := batch.Validate(); err != nil {
		fmt.Println(err)
		return
	}
	third, _ := batch.At(2)
	w, h := third.Size()
	fmt.Println(batch.Frames(), w, h, third.Ptr-batch.Ptr == uintptr(2*1280*3*720))
	// Output: 4 1280 720 true
}
