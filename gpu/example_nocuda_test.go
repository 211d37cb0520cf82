//go:build !cuda

package gpu_test

import (
	"errors"
	"fmt"

	"github.com/framewire/framewire/gpu"
)

// Without the cuda build tag the engine falls back to the CPU.
func ExampleOpen() {
	d, err := gpu.Open(0)
	if errors.Is(err, gpu.ErrNoCUDA) {
		fmt.Println("device frames need a cuda build; encoding on the", gpu.BackendCPU)
		return
	}
	defer d.Close()
	// Output: device frames need a cuda build; encoding on the cpu
}
