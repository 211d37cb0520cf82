//go:build cuda

package gpu

// #include <stdlib.h>
// #include "shim_cuda.h"
import "C"

import (
	_ "embed"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"unsafe"

	"gorgonia.org/cu"
)

//go:embed kernels/kernels.ptx
var kernelsPTX string

// task is one unit of work for a device's owner goroutine. Hot paths keep
// one preallocated task per encoder or decoder, so submitting allocates
// nothing.
type task interface{ run() }

type funcTask struct {
	d    *Device // checked for a sticky fault when f fails (nil: not)
	f    func() error
	errc chan error
}

func (t *funcTask) run() {
	err := t.f()
	if err != nil && t.d != nil {
		t.d.noteFault(err)
	}
	t.errc <- err
}

// closer is something a Device closes when it is closed first.
type closer interface{ Close() error }

// Device owns one CUDA device's primary context. One goroutine, locked to
// its OS thread with the context current, makes the CUDA calls that set
// things up: allocations, the kernels' module, FFmpeg's CUDA device
// context, opening and closing encoders and decoders, the NVENC and NVDEC
// probes. Per-frame work never runs there, so no session's frames wait
// behind another's: each Encoder (frame check, wait for the producer,
// kernel, copy to pinned memory, blocking synchronisation) and each
// Decoder (NVDEC, kernel, copies) works on an OS thread of its own with
// the same context current and on a stream of its own; h264_nvenc's and
// libx264's encode calls run on the Encoder's caller's goroutine (FFmpeg
// pushes the context around its CUDA calls). FFmpeg's CUDA device context
// (created on first use by an Encoder or Decoder) uses the same primary
// context, taken as the device thread's current context
// (AV_CUDA_USE_CURRENT_CONTEXT).
//
// Methods are safe for concurrent use. The caller must call Close; Close
// closes every Buffer, Pinned, Encoder and Decoder still open on the
// device, waits for the work in progress, releases the primary context and
// is idempotent.
type Device struct {
	ordinal int
	name    string
	work    chan task
	quit    chan struct{}
	done    chan struct{}

	mu       sync.Mutex
	children []closer
	closed   bool

	closeOnce sync.Once
	closeErr  error

	ctx  cu.CUContext // the primary context, current on the device goroutine
	cctx C.CUcontext  // the same, for the C shim (pointer checks)
	// The sticky fault that poisoned the context (see Fault), nil until one.
	fault atomic.Pointer[error]
	// The primary context's flags when Open retained it (see BlockingSync).
	schedFlags uint

	// Owned by the device goroutine.
	module   C.CUmodule
	fnToNV12 C.CUfunction
	fnToRGB  C.CUfunction
	hwdev    *C.AVBufferRef
	// NVDEC probe result (see NewDecoder), once per Device.
	nvdecProbed bool
	nvdecErr    error
	// Why h264_nvenc cannot open on this Device (no CUDA device for
	// FFmpeg, no libnvidia-encode.so.1, sessions refused: a GPU without
	// NVENC), with FFmpeg's reason: found once, not per track; logged once
	// (nvencLogged). nvencOpen counts our open h264_nvenc sessions.
	nvencErr    error
	nvencLogged bool
	nvencOpen   int
	// Whether h264_nvenc opens here (hasNVENC), probed once.
	nvencProbed, nvencHave bool
}

// Open retains device ordinal's primary context, loads the kernels and
// starts the device's owner goroutine. The caller must call Close.
func Open(ordinal int) (*Device, error) {
	n, err := cu.NumDevices()
	if err != nil {
		return nil, fmt.Errorf("gpu: count devices: %w", err)
	}
	if ordinal < 0 || ordinal >= n {
		return nil, fmt.Errorf("gpu: device %d does not exist (%d devices)", ordinal, n)
	}
	d := &Device{ordinal: ordinal, work: make(chan task), quit: make(chan struct{}), done: make(chan struct{})}
	ready := make(chan error, 1)
	go d.run(ready)
	if err := <-ready; err != nil {
		<-d.done
		return nil, err
	}
	return d, nil
}

func (d *Device) run(ready chan<- error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer close(d.done)
	dev := cu.Device(d.ordinal)
	if err := d.setBlockingSync(); err != nil {
		ready <- err
		return
	}
	ctx, err := dev.RetainPrimaryCtx()
	if err != nil {
		ready <- fmt.Errorf("gpu: retain primary context of device %d: %w", d.ordinal, err)
		return
	}
	defer func() {
		if err := dev.ReleasePrimaryCtx(); err != nil && d.closeErr == nil {
			d.closeErr = fmt.Errorf("gpu: release primary context: %w", err)
		}
	}()
	if err := cu.SetCurrentContext(ctx); err != nil {
		ready <- fmt.Errorf("gpu: make context current: %w", err)
		return
	}
	// The OS thread goes back to Go's pool without our context current:
	// left current, the next goroutine to lock that thread would make its
	// CUDA calls in our context (in a primary context retained again, they
	// succeed and allocate there).
	defer func() { _ = cu.SetCurrentContext(cu.CUContext{}) }()
	d.ctx = ctx
	if err := cuErr("cuCtxGetCurrent", C.fw_ctx_current(&d.cctx)); err != nil {
		ready <- err
		return
	}
	if d.name, err = dev.Name(); err != nil {
		ready <- fmt.Errorf("gpu: device name: %w", err)
		return
	}
	// Registered before loading: a kernel that is missing from the module
	// must not leave the module loaded on the primary context.
	defer d.unload()
	if err := d.loadKernels(); err != nil {
		ready <- err
		return
	}
	ready <- nil
	for {
		select {
		case t := <-d.work:
			t.run()
		case <-d.quit:
			return
		}
	}
}

// setBlockingSync asks for blocking-sync waits on the primary context
// before Open's retain (fw_sched_blocking_sync): with flags 0 (AUTO) and one
// context the driver spins a core in every synchronize, on the device
// goroutine and each decoder thread, taking the cores libx264 needs on a
// GPU without NVENC. d.schedFlags records the flags in force.
// applied is 0 when a model's runtime had made the context active first.
func (d *Device) setBlockingSync() error {
	var flags C.uint
	var applied C.int // fw_sched_blocking_sync's report; the flags say it all
	if err := cuErr("set the primary context's flags (cuDevicePrimaryCtxSetFlags)", C.fw_sched_blocking_sync(C.int(d.ordinal), &flags, &applied)); err != nil {
		return fmt.Errorf("gpu: device %d: %w", d.ordinal, err)
	}
	d.schedFlags = uint(flags)
	return nil
}

// BlockingSync reports whether every wait in the primary context blocks
// instead of spinning (CU_CTX_SCHED_BLOCKING_SYNC was in force when Open
// retained it). It is false when a model's CUDA runtime had made the
// context active first with other flags: then only this package's own
// waits block (blocking-sync events), FFmpeg's and the model's follow the
// model's flags.
func (d *Device) BlockingSync() bool {
	return d.schedFlags&C.CU_CTX_SCHED_MASK == C.CU_CTX_SCHED_BLOCKING_SYNC
}

func (d *Device) loadKernels() error {
	ptx := C.CString(kernelsPTX)
	defer C.free(unsafe.Pointer(ptx))
	if err := cuErr("load kernels (cuModuleLoadData)", C.fw_module_load(&d.module, ptx)); err != nil {
		return err
	}
	for _, k := range []struct {
		name string
		fn   *C.CUfunction
	}{{kernelRGBToNV12, &d.fnToNV12}, {kernelNV12ToRGB, &d.fnToRGB}} {
		// The out-parameter is a local: cgo checks the whole object a
		// pointer points into unless the argument is written literally
		// &x.f, and k.fn points into the Device, which holds Go
		// pointers ("Go pointer to unpinned Go pointer" panic).
		var fn C.CUfunction
		name := C.CString(k.name)
		r := C.fw_module_function(&fn, d.module, name)
		C.free(unsafe.Pointer(name))
		if err := cuErr("find kernel "+k.name, r); err != nil {
			return err
		}
		*k.fn = fn
	}
	return nil
}

func (d *Device) unload() {
	if d.hwdev != nil {
		C.fw_buffer_unref(&d.hwdev)
	}
	if d.module != nil {
		_ = C.fw_module_unload(d.module)
		d.module = nil
	}
}

// hwDevice returns FFmpeg's CUDA device context on the primary context
// (made current on this thread: AV_CUDA_USE_CURRENT_CONTEXT), creating it
// on first use. Device goroutine only.
func (d *Device) hwDevice() (*C.AVBufferRef, error) {
	if d.hwdev != nil {
		return d.hwdev, nil
	}
	ord := C.CString(strconv.Itoa(d.ordinal))
	defer C.free(unsafe.Pointer(ord))
	if err := avErr("create FFmpeg CUDA device on the current (primary) context", C.fw_hwdevice_create(&d.hwdev, ord)); err != nil {
		d.hwdev = nil
		return nil, err
	}
	return d.hwdev, nil
}

// submit hands t to the owner goroutine; t reports its own completion.
// It returns ErrClosed when the device is closed.
func (d *Device) submit(t task) error {
	select {
	case d.work <- t:
		return nil
	case <-d.done:
		return ErrClosed
	}
}

// Do runs f on the device's owner thread with its context current and
// returns f's error. It blocks until f has run, and returns ErrClosed
// without running f once the device is closed. f must not call Do.
func (d *Device) Do(f func() error) error {
	t := &funcTask{d: d, f: f, errc: make(chan error, 1)}
	if err := d.submit(t); err != nil {
		return err
	}
	return <-t.errc
}

// Name reports the device's name.
func (d *Device) Name() string { return d.name }

// Ordinal reports the device's index.
func (d *Device) Ordinal() int { return d.ordinal }

// MemInfo reports the device's free and total memory in bytes
// (cuMemGetInfo).
func (d *Device) MemInfo() (free, total int64, err error) {
	err = d.Do(func() error {
		var e error
		free, total, e = cu.MemInfo()
		return e
	})
	return free, total, err
}

// adopt records c so that Close closes it; it fails once the device is
// closing.
func (d *Device) adopt(c closer) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return ErrClosed
	}
	d.children = append(d.children, c)
	return nil
}

// forget removes c from the children Close would close.
func (d *Device) forget(c closer) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i, x := range d.children {
		if x == c {
			d.children = append(d.children[:i], d.children[i+1:]...)
			return
		}
	}
}

// Close closes every Buffer, Pinned, Encoder and Decoder still open on the
// device (newest first), waits for the work in progress, unloads the
// kernels, frees FFmpeg's device context, releases the primary context and
// stops the owner goroutine. Calls racing with Close either run or return
// ErrClosed. It is idempotent and safe on a nil Device.
func (d *Device) Close() error {
	if d == nil {
		return nil
	}
	d.closeOnce.Do(func() {
		d.mu.Lock()
		d.closed = true
		kids := d.children
		d.children = nil
		d.mu.Unlock()
		for i := len(kids) - 1; i >= 0; i-- {
			_ = kids[i].Close()
		}
		close(d.quit)
		<-d.done
	})
	return d.closeErr
}
