//go:build cuda

package gpu

// #include "shim_cuda.h"
import "C"

import (
	"fmt"
	"unsafe"
)

// checkFrame asks the driver (cuPointerGetAttributes) whether every byte
// the conversion kernel will read of f (one picture, see Frame.At) lies in
// one allocation of this device's primary context, before the launch: a
// wrong pointer faults on the device, and the fault is sticky: it poisons
// the context every session and the model's own CUDA work share. Memory
// of another context, host memory the driver does not know, or a picture
// that runs past its allocation is refused here with ErrBadFrame, and
// only that frame's session sees the error. It allocates nothing when f
// passes. Any thread with the context current.
func (d *Device) checkFrame(f Frame) error {
	n := f.RowPitch()*(f.Height-1) + f.Width*f.Format.BytesPerPixel()
	r := C.fw_pointer_check(devptr(f.Ptr), C.size_t(n), d.cctx, C.int(d.ordinal))
	if r == 0 {
		return nil
	}
	if r < 0 {
		return cuErr("cuPointerGetAttributes", -r)
	}
	pi := (*C.fw_ptr_info)(C.malloc(C.sizeof_fw_ptr_info))
	defer C.free(unsafe.Pointer(pi))
	_ = C.fw_pointer_range(devptr(f.Ptr), pi)
	switch r {
	case C.FW_PTR_UNKNOWN:
		return fmt.Errorf("%w: pointer %#x is not CUDA memory (no allocation of any context holds it)", ErrBadFrame, f.Ptr)
	case C.FW_PTR_OTHER_CTX:
		return fmt.Errorf("%w: pointer %#x is memory of another CUDA context than device %d's primary context (use the primary context: the CUDA runtime and PyTorch do)", ErrBadFrame, f.Ptr, d.ordinal)
	}
	return fmt.Errorf("%w: a %dx%d %v picture at %#x with pitch %d needs %d bytes; its allocation [%#x, +%d) holds %d from there",
		ErrBadFrame, f.Width, f.Height, f.Format, f.Ptr, f.RowPitch(), n, uintptr(pi.start), int(pi.size), int(uintptr(pi.start)+uintptr(pi.size)-f.Ptr))
}

// noteFault, called with an error of device work on a thread with the
// context current, asks whether the context now holds a sticky error (an
// illegal address: a bad pointer that checkFrame could not catch, such as
// memory freed after the check, or a fault of the model's own kernels in
// the shared context). If so the device is poisoned for good: Fault
// reports why, and encoders, decoders and allocations refuse with it.
func (d *Device) noteFault(cause error) {
	if cause == nil || d.fault.Load() != nil {
		return
	}
	if r := C.fw_sticky(); r != 0 {
		err := fmt.Errorf("%w: %w (seen as: %v); the context cannot recover while it is held: restart the process", ErrDeviceFault, cuErr("sticky CUDA error", r), cause)
		d.fault.CompareAndSwap(nil, &err)
	}
}

// Fault reports why the device's CUDA context is poisoned (an error
// wrapping ErrDeviceFault), or nil while it is usable. A poisoned device
// refuses device frames, new encoders and decoders with this reason; a
// server should report itself not ready so it is drained and replaced.
// Safe for concurrent use.
func (d *Device) Fault() error {
	if p := d.fault.Load(); p != nil {
		return *p
	}
	return nil
}
