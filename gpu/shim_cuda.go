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
	"strings"
	"time"
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

// Driver libraries FFmpeg loads at run time for NVENC and NVDEC.
const (
	libNVENC = "libnvidia-encode.so.1"
	libNVDEC = "libnvcuvid.so.1"
)

// libPresent reports whether the dynamic library name loads here.
func libPresent(name string) bool {
	cs := C.CString(name)
	defer C.free(unsafe.Pointer(cs))
	return C.fw_lib_present(cs) != 0
}

// libHint explains a failure whose likely cause is that the driver
// library name is missing ("" when it loads).
func libHint(name string) string {
	if libPresent(name) {
		return ""
	}
	return " (" + name + " is not installed: the NVIDIA driver's video libraries are missing, or the container was started without the video driver capability)"
}

// pinnedSlice views n bytes of pinned host memory as a slice.
func pinnedSlice(p unsafe.Pointer, n int) []byte { return unsafe.Slice((*byte)(p), n) }

// threadCPU reports the CPU time the calling OS thread has used (lock the
// goroutine to its thread around a measurement).
func threadCPU() time.Duration { return time.Duration(C.fw_thread_cpu_ns()) }

// EmulatorStat reads a counter of the emulated driver of gpu/cudaemu, for
// tests that must see what the driver was asked: "nvenc.NAME" from its
// libnvidia-encode.so.1 (sessions_refused, instances, bad_calls), any
// other name from its libcuda.so.1 (see cudaemu_stat in gpu/cudaemu). It
// returns -1 under a real driver, and for a name the emulator does not
// count.
func EmulatorStat(name string) int64 {
	var cl *C.char
	if n, ok := strings.CutPrefix(name, "nvenc."); ok {
		cl = C.CString(libNVENC)
		defer C.free(unsafe.Pointer(cl))
		name = n
	}
	cn := C.CString(name)
	defer C.free(unsafe.Pointer(cn))
	return int64(C.fw_emu_stat(cl, cn))
}

// EmulatorInjectFault makes the emulated driver's next kernel launch fault
// when it runs (a sticky illegal address, as a model's faulting kernel
// would raise in the shared context), for tests of what follows a fault
// no check could prevent. It reports false, and does nothing, under a real
// driver.
func EmulatorInjectFault() bool { return C.fw_emu_inject_fault() != 0 }
