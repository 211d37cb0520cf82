//go:build cuda

package gpu

/*
#cgo pkg-config: libavcodec libavutil
#cgo LDFLAGS: -lcuda
#include <stdlib.h>
#include "shim_cuda.h"
*/
import "C"

import (
	"fmt"
	"unsafe"

	"github.com/asticode/go-astiav"
)

// cuErr turns a CUresult into an error naming the operation (nil for
// success). It allocates only on failure.
func cuErr(op string, r C.int) error {
	if r == 0 {
		return nil
	}
	return fmt.Errorf("gpu: %s: %s (CUresult %d)", op, C.GoString(C.fw_cu_error(r)), int(r))
}

// avErr turns an AVERROR into an error naming the operation.
func avErr(op string, r C.int) error {
	if r >= 0 {
		return nil
	}
	return fmt.Errorf("gpu: %s: %w", op, astiav.Error(int(r)))
}

func devptr(p uintptr) C.CUdeviceptr { return C.CUdeviceptr(p) }

// pinnedSlice views n bytes of pinned host memory as a slice.
func pinnedSlice(p unsafe.Pointer, n int) []byte { return unsafe.Slice((*byte)(p), n) }
