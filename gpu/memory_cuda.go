//go:build cuda

package gpu

// #include "shim_cuda.h"
import "C"

import (
	"fmt"
	"sync"
	"unsafe"

	"gorgonia.org/cu"
)

// Buffer is device memory allocated by this package (cuMemAlloc) on a
// Device's primary context. The caller must call Close (or close the
// Device); Close is idempotent. Methods are safe for concurrent use; the
// memory's contents are not synchronised between users.
type Buffer struct {
	d    *Device
	ptr  cu.DevicePtr
	n    int
	once sync.Once
}

// Alloc allocates n bytes of device memory.
func (d *Device) Alloc(n int) (*Buffer, error) {
	if n <= 0 {
		return nil, fmt.Errorf("gpu: allocate %d bytes of device memory, want > 0", n)
	}
	if err := d.Fault(); err != nil {
		return nil, err
	}
	b := &Buffer{d: d, n: n}
	if err := d.Do(func() error {
		p, err := cu.MemAlloc(int64(n))
		if err != nil {
			return fmt.Errorf("gpu: allocate %d bytes on device %d: %w", n, d.ordinal, err)
		}
		b.ptr = p
		return nil
	}); err != nil {
		return nil, err
	}
	if err := d.adopt(b); err != nil {
		_ = d.Do(func() error { return cu.MemFree(b.ptr) })
		return nil, err
	}
	return b, nil
}

// Ptr reports the buffer's device address (a CUdeviceptr), for Frame.Ptr
// or for CUDA code of the caller's own.
func (b *Buffer) Ptr() uintptr { return uintptr(b.ptr) }

// Len reports the buffer's size in bytes.
func (b *Buffer) Len() int { return b.n }

// Upload copies src to the start of the buffer and returns when the copy
// is complete (synchronous, after all prior work on the legacy stream).
func (b *Buffer) Upload(src []byte) error {
	if len(src) > b.n {
		return fmt.Errorf("%w: upload of %d bytes into a %d-byte device buffer", ErrShortBuffer, len(src), b.n)
	}
	if len(src) == 0 {
		return nil
	}
	return b.d.Do(func() error { return cu.MemcpyHtoD(b.ptr, unsafe.Pointer(&src[0]), int64(len(src))) })
}

// Download copies the start of the buffer into dst and returns when the
// copy is complete.
func (b *Buffer) Download(dst []byte) error {
	if len(dst) > b.n {
		return fmt.Errorf("%w: download of %d bytes from a %d-byte device buffer", ErrShortBuffer, len(dst), b.n)
	}
	if len(dst) == 0 {
		return nil
	}
	return b.d.Do(func() error { return cu.MemcpyDtoH(unsafe.Pointer(&dst[0]), b.ptr, int64(len(dst))) })
}

// Close frees the memory. It is idempotent.
func (b *Buffer) Close() error {
	if b == nil {
		return nil
	}
	var err error
	b.once.Do(func() {
		b.d.forget(b)
		err = b.d.Do(func() error { return cu.MemFree(b.ptr) })
		if err == ErrClosed {
			err = nil // the device released its context, and the memory with it
		}
	})
	return err
}

// Pinned is page-locked host memory (cuMemHostAlloc), which device copies
// reach asynchronously. The caller must call Close (or close the Device);
// Close is idempotent, and Bytes must not be used after it.
type Pinned struct {
	d    *Device
	p    unsafe.Pointer
	n    int
	once sync.Once
}

// AllocPinned allocates n bytes of pinned host memory.
func (d *Device) AllocPinned(n int) (*Pinned, error) {
	if n <= 0 {
		return nil, fmt.Errorf("gpu: allocate %d bytes of pinned memory, want > 0", n)
	}
	if err := d.Fault(); err != nil {
		return nil, err
	}
	pm := &Pinned{d: d, n: n}
	if err := d.Do(func() error { return cuErr("cuMemHostAlloc", C.fw_host_alloc(&pm.p, C.size_t(n))) }); err != nil {
		return nil, err
	}
	if err := d.adopt(pm); err != nil {
		_ = d.Do(func() error { return cuErr("cuMemFreeHost", C.fw_host_free(pm.p)) })
		return nil, err
	}
	return pm, nil
}

// Bytes views the pinned memory. The slice is invalid after Close.
func (pm *Pinned) Bytes() []byte { return pinnedSlice(pm.p, pm.n) }

// Close frees the memory. It is idempotent.
func (pm *Pinned) Close() error {
	if pm == nil {
		return nil
	}
	var err error
	pm.once.Do(func() {
		pm.d.forget(pm)
		err = pm.d.Do(func() error { return cuErr("cuMemFreeHost", C.fw_host_free(pm.p)) })
		if err == ErrClosed {
			err = nil
		}
	})
	return err
}

// stream is a CUDA stream plus one scratch event for cross-stream
// ordering. Device goroutine only.
type stream struct {
	s  C.CUstream
	ev C.CUevent
}

func (s *stream) open() error {
	if err := cuErr("cuStreamCreate", C.fw_stream_create(&s.s)); err != nil {
		return err
	}
	if err := cuErr("cuEventCreate", C.fw_event_create(&s.ev)); err != nil {
		s.close()
		return err
	}
	return nil
}

func (s *stream) close() {
	if s.ev != nil {
		_ = C.fw_event_destroy(s.ev)
		s.ev = nil
	}
	if s.s != nil {
		_ = C.fw_stream_destroy(s.s)
		s.s = nil
	}
}

// waitFor orders the stream after f's producer (see Frame).
func (s *stream) waitFor(f Frame) error {
	return cuErr("wait for the producer's stream/event", C.fw_wait_producer(s.s, s.ev, C.uintptr_t(f.Event), C.uintptr_t(f.Stream)))
}

// sync waits for the stream's work through its blocking-sync event (the
// thread sleeps; see fw_stream_sync). A stream that is not open has
// nothing to wait for.
func (s *stream) sync() error {
	if s.s == nil || s.ev == nil {
		return nil
	}
	return cuErr("synchronize a stream", C.fw_stream_sync(s.s, s.ev))
}

// toNV12 launches the RGB→NV12 kernel: src (one picture) into the NV12
// planes y and uv of ow x oh.
func (d *Device) toNV12(s *stream, src Frame, y uintptr, yPitch int, uv uintptr, uvPitch, ow, oh int) error {
	return cuErr("launch "+kernelRGBToNV12, C.fw_launch_rgb_to_nv12(d.fnToNV12, s.s,
		devptr(src.Ptr), C.longlong(src.RowPitch()), C.longlong(src.Format.BytesPerPixel()),
		C.longlong(src.Width), C.longlong(src.Height),
		devptr(y), C.longlong(yPitch), devptr(uv), C.longlong(uvPitch), C.longlong(ow), C.longlong(oh)))
}

// toRGB launches the NV12→RGB kernel into dst (one picture, same size).
func (d *Device) toRGB(s *stream, y uintptr, yPitch int, uv uintptr, uvPitch int, dst Frame) error {
	return cuErr("launch "+kernelNV12ToRGB, C.fw_launch_nv12_to_rgb(d.fnToRGB, s.s,
		devptr(y), C.longlong(yPitch), devptr(uv), C.longlong(uvPitch),
		C.longlong(dst.Width), C.longlong(dst.Height),
		devptr(dst.Ptr), C.longlong(dst.RowPitch()), C.longlong(dst.Format.BytesPerPixel())))
}

func even(n int) int { return (n + 1) &^ 1 }

func align(n, a int) int { return (n + a - 1) / a * a }

// copyToPinned starts an async copy of the start of src into pin on s.
// Device goroutine.
func copyToPinned(s *stream, pin *Pinned, src *Buffer) error {
	return cuErr("cuMemcpyDtoHAsync", C.fw_dtoh_async(pin.p, C.CUdeviceptr(src.ptr), C.size_t(min(pin.n, src.n)), s.s))
}
