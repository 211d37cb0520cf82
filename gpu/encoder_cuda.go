//go:build cuda

package gpu

// #include <stdlib.h>
// #include "shim_cuda.h"
import "C"

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/framewire/framewire/encode"
	"gorgonia.org/cu"
)

// Encoder encodes device frames to H.264 (constrained baseline, Annex-B,
// parameter sets on every keyframe). Which backend it runs is chosen when
// it opens, by probing: BackendNVENC where h264_nvenc opens on a CUDA
// frames context of the device, else BackendX264 (the colour conversion
// stays on the GPU; libx264 encodes on the CPU). The choice is logged once
// and reported by Backend. When neither opens, NewEncoder fails and the
// caller encodes on the CPU (BackendCPU).
//
// Encode is not safe for concurrent use: one goroutine (the track's
// pipeline) owns the encoder. RequestKeyframe and SetBitrate may be called
// from any goroutine and take effect on the next Encode. The caller must
// call Close (or close the Device).
type Encoder struct {
	d       *Device
	cfg     EncoderConfig
	log     *slog.Logger
	backend encode.Backend
	ow, oh  int // coded size (even)

	// Opened and freed on the device goroutine, used per frame on the
	// encoder's own thread (th), never both at once (mu); the C structs
	// are also used by the owning goroutine between device tasks.
	th     *thread
	c      *C.fw_enc
	st     stream
	kev    [2]C.CUevent // libx264: kernel of the slot done
	dev    [2]cu.DevicePtr
	pin    [2]unsafe.Pointer
	pitch  int // NV12 row pitch of dev and pin (libx264)
	slot   int
	staged int // pipelined: slot waiting to be encoded, -1 when none
	spts   [2]int64
	// nvencHeld: this Encoder's h264_nvenc session counts in d.nvencOpen.
	nvencHeld bool

	// Host RGB staging (EncodeRGB): pinned memory and a device picture,
	// uploaded on a stream of its own (never the legacy stream, which
	// would order it with every other session's and FFmpeg's work).
	hst  stream
	hpin unsafe.Pointer
	hdev cu.DevicePtr
	hcap int
	hev  C.CUevent // recorded after the upload

	mu      sync.Mutex // held by Encode, Flush and Close
	task    encTask
	pts     int64
	key     atomic.Bool
	rate    atomic.Int64
	closed  atomic.Bool
	once    sync.Once
	lastErr error
	broken  error // a failed reopen left no codec
}

// encTask is the encoder's one device task, reused for every frame.
type encTask struct {
	e    *Encoder
	f    Frame
	err  error
	done chan struct{}
}

func (t *encTask) run() {
	t.err = t.e.deviceStep(t.f)
	if t.err != nil {
		t.e.d.noteFault(t.err)
	}
	t.done <- struct{}{}
}

// NewEncoder opens an encoder of cfg.Width x cfg.Height frames on d. It
// returns an error wrapping ErrUnavailable when no backend opens (or the
// forced one does not). With cfg.Width and cfg.Height zero it returns at
// once and opens at the first frame's size (Encode then returns that
// error): the form the engine's pipeline uses, where an Encoder is the
// track's device encoder (it has the methods of pipeline.DeviceEncoder and
// DeviceBatchEncoder). log may be nil. The caller must call Close.
func NewEncoder(d *Device, cfg EncoderConfig, log *slog.Logger) (*Encoder, error) {
	if d == nil {
		return nil, fmt.Errorf("gpu: NewEncoder on a nil Device")
	}
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	if err := d.Fault(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	e := &Encoder{d: d, cfg: cfg, log: log, staged: -1}
	e.task = encTask{e: e, done: make(chan struct{}, 1)}
	if cfg.Width != 0 {
		if err := e.openAt(cfg.Width, cfg.Height); err != nil {
			return nil, err
		}
	}
	th, err := startThread(d)
	if err == nil {
		e.th = th
		if err = d.adopt(e); err != nil {
			th.stop()
		}
	}
	if err != nil {
		_ = d.Do(func() error { e.free(); return nil })
		return nil, err
	}
	return e, nil
}

// openAt opens a backend for w x h (on the device goroutine) and logs the
// choice; on failure nothing stays allocated.
func (e *Encoder) openAt(w, h int) error {
	if err := e.d.Do(func() error {
		if err := e.open(w, h); err != nil {
			e.free()
			e.ow, e.oh = 0, 0
			return err
		}
		return nil
	}); err != nil {
		return err
	}
	e.log.Info("gpu encoder opened", "backend", e.backend, "device", e.d.name, "size", fmt.Sprintf("%dx%d", e.ow, e.oh))
	return nil
}

// open probes and opens a backend for w x h. Device goroutine.
func (e *Encoder) open(w, h int) error {
	e.ow, e.oh = even(w), even(h)
	if err := e.st.open(); err != nil {
		return err
	}
	var nvErr error
	if e.cfg.Backend == "" || e.cfg.Backend == BackendNVENC {
		if nvErr = e.openNVENC(); nvErr == nil {
			e.backend = BackendNVENC
			return nil
		}
		e.freeCodec()
		if e.cfg.Backend == BackendNVENC {
			return nvErr
		}
		e.logNVENCRefusal(nvErr)
	}
	if err := e.openX264(); err != nil {
		if nvErr != nil {
			return fmt.Errorf("%w; and %w", nvErr, err)
		}
		return err
	}
	e.backend = BackendX264
	return nil
}

// logNVENCRefusal says why h264_nvenc did not open: the device's verdict
// once per Device at INFO (a GPU without NVENC is a normal host, and
// FFmpeg's own ERROR line was captured into err), any other failure (a
// session refused while NVENC works here, such as a session limit) at
// WARN each time. Device goroutine.
func (e *Encoder) logNVENCRefusal(err error) {
	if err != e.d.nvencErr {
		e.log.Warn("h264_nvenc did not open this time; using GPU conversion + libx264", "device", e.d.name, "reason", err)
		return
	}
	if e.d.nvencLogged {
		return
	}
	e.d.nvencLogged = true
	e.log.Info("h264_nvenc does not open on a CUDA frames context; using GPU conversion + libx264 for every track of this device", "device", e.d.name, "reason", err)
}

// openNVENC opens h264_nvenc on a CUDA frames context. The device's
// verdict is cached in d.nvencErr: no FFmpeg CUDA device, no
// libnvidia-encode.so.1, or a session refused while none of ours is open
// on the device (an H100, H200 or A100: the driver library is present,
// FFmpeg gets as far as nvEncOpenEncodeSessionEx and the driver answers
// "unsupported device"). Later tracks and reopens then go straight to
// libx264 instead of trying NVENC again on the device goroutine. FFmpeg's
// log lines of the attempt are captured into the error, not logged.
// Device goroutine.
func (e *Encoder) openNVENC() error {
	d := e.d
	if d.nvencErr != nil {
		return d.nvencErr
	}
	hw, err := d.hwDevice()
	if err != nil {
		d.nvencErr = fmt.Errorf("%w: %w", ErrUnavailable, err)
		return d.nvencErr
	}
	if !libPresent(libNVENC) {
		d.nvencErr = fmt.Errorf("%w: h264_nvenc cannot load%s", ErrUnavailable, libHint(libNVENC))
		return d.nvencErr
	}
	e.c = C.fw_enc_alloc()
	if e.c == nil {
		return errors.New("gpu: out of memory")
	}
	opts := codecOptions(encode.BackendNVENC, 0)
	defer C.free(unsafe.Pointer(opts))
	var r C.int
	said := encode.CaptureFFmpegLog(func() {
		r = C.fw_nvenc_open(e.c, hw, C.int(e.ow), C.int(e.oh), C.int(e.cfg.FPS), C.longlong(e.cfg.Bitrate), opts)
	})
	if r >= 0 {
		e.nvencHeld = true
		d.nvencOpen++
		return nil
	}
	err = fmt.Errorf("%w: %w", ErrUnavailable, avErr(fmt.Sprintf("open h264_nvenc %dx%d on a CUDA frames context", e.ow, e.oh), r))
	if said != "" {
		err = fmt.Errorf("%w (FFmpeg: %s)", err, said)
	}
	if d.nvencOpen == 0 {
		d.nvencErr = err // refused with no session of ours open: the device has no NVENC
	}
	return err
}

func (e *Encoder) openX264() error {
	e.pitch = align(e.ow, 64)
	n := e.pitch * e.oh * 3 / 2
	for i := range 2 {
		p, err := cu.MemAlloc(int64(n))
		if err != nil {
			return fmt.Errorf("gpu: allocate %d bytes for an NV12 picture: %w", n, err)
		}
		e.dev[i] = p
		if err := cuErr("cuMemHostAlloc", C.fw_host_alloc(&e.pin[i], C.size_t(n))); err != nil {
			return err
		}
		if err := cuErr("cuEventCreate", C.fw_event_create(&e.kev[i])); err != nil {
			return err
		}
	}
	e.c = C.fw_enc_alloc()
	if e.c == nil {
		return errors.New("gpu: out of memory")
	}
	opts := codecOptions(encode.BackendX264, e.cfg.Threads)
	defer C.free(unsafe.Pointer(opts))
	if r := C.fw_x264_open(e.c, C.int(e.ow), C.int(e.oh), C.int(e.cfg.FPS), C.longlong(e.cfg.Bitrate), C.int(e.cfg.Threads), e.pin[0], e.pin[1], C.int(e.pitch), opts); r < 0 {
		return fmt.Errorf("%w: %w", ErrUnavailable, avErr(fmt.Sprintf("open libx264 %dx%d NV12", e.ow, e.oh), r))
	}
	e.slot, e.staged = 0, -1
	return nil
}

func (e *Encoder) freeCodec() {
	if e.nvencHeld {
		e.nvencHeld = false
		e.d.nvencOpen--
	}
	if e.c != nil {
		C.fw_enc_free(e.c)
		e.c = nil
	}
}

// free releases everything open allocated. Device goroutine; idempotent.
func (e *Encoder) free() {
	e.freeCodec()
	for i := range 2 {
		if e.dev[i] != 0 {
			_ = cu.MemFree(e.dev[i])
			e.dev[i] = 0
		}
		if e.pin[i] != nil {
			_ = C.fw_host_free(e.pin[i])
			e.pin[i] = nil
		}
		if e.kev[i] != nil {
			_ = C.fw_event_destroy(e.kev[i])
			e.kev[i] = nil
		}
	}
	e.st.close()
}

// Backend reports BackendNVENC or BackendX264 ("" before an Encoder
// created without a size has opened).
func (e *Encoder) Backend() encode.Backend { return e.backend }

// Size reports the coded size (the configured or first frame's size padded
// to even; 0, 0 before it opened).
func (e *Encoder) Size() (w, h int) { return e.ow, e.oh }

// RequestKeyframe makes the next encoded frame an IDR frame.
func (e *Encoder) RequestKeyframe() { e.key.Store(true) }

// SetBitrate changes the target bitrate (bit/s) from the next frame on.
// FFmpeg's h264_nvenc reconfigures with forceIDR set, so on BackendNVENC a
// change costs a keyframe and only changes of at least a fifth of the
// current rate are taken (as package encode does for NVENC and VP8);
// libx264 takes every change without a keyframe.
func (e *Encoder) SetBitrate(bps int) {
	if bps > 0 {
		e.rate.Store(int64(bps))
	}
}

// Encode encodes f (a single picture; see EncodeBatch for batches) with
// presentation time pts (90 kHz units) and copies the resulting access
// unit into out. It returns the bytes written (0 when no packet came out:
// the first call of a pipelined encoder) and whether it is a keyframe;
// with ErrShortBuffer n is the size needed, that access unit is lost and
// the next one is made a keyframe so the stream stays decodable.
//
// Encode returns only after the conversion kernel that reads f has
// completed (ordered after f's Event or Stream, see Frame): the caller may
// write f's memory again as soon as Encode returns. Nothing of f is
// retained. A frame whose size differs from the encoder's reopens it (the
// next packet is a keyframe). In steady state Encode allocates nothing.
func (e *Encoder) Encode(f DeviceFrame, pts int64, out []byte) (n int, key bool, err error) {
	return e.EncodeBatch(f, 0, pts, out)
}

// EncodeBatch is Encode of picture index of a batch frame.
func (e *Encoder) EncodeBatch(f DeviceFrame, index int, pts int64, out []byte) (n int, key bool, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.encodeLocked(f, index, pts, out)
}

// encodeLocked is EncodeBatch with e.mu held.
func (e *Encoder) encodeLocked(f DeviceFrame, index int, pts int64, out []byte) (n int, key bool, err error) {
	if e.closed.Load() {
		return 0, false, ErrClosed
	}
	if err := e.d.Fault(); err != nil {
		return 0, false, err
	}
	fr, err := frameOf(f, index)
	if err != nil {
		return 0, false, err
	}
	if e.broken != nil {
		return 0, false, e.broken
	}
	if e.ow == 0 { // created without a size: open at the first frame's
		if bps := e.rate.Swap(0); bps != 0 {
			e.cfg.Bitrate = int(bps)
		}
		if err := e.openAt(fr.Width, fr.Height); err != nil {
			e.broken = fmt.Errorf("gpu: encoder could not open at %dx%d: %w", fr.Width, fr.Height, err)
			return 0, false, e.broken
		}
	}
	if even(fr.Width) != e.ow || even(fr.Height) != e.oh {
		if err := e.reopen(fr.Width, fr.Height); err != nil {
			e.broken = fmt.Errorf("gpu: encoder could not reopen at %dx%d; close it and open a new one: %w", fr.Width, fr.Height, err)
			return 0, false, err
		}
	}
	if bps := e.rate.Swap(0); bps != 0 && worthChange(e.backend, e.cfg.Bitrate, int(bps)) {
		e.cfg.Bitrate = int(bps)
		C.fw_enc_set_bitrate(e.c, C.longlong(bps))
	}
	if pts <= e.pts && e.pts != 0 {
		pts = e.pts + 1 // encoders need strictly increasing pts
	}
	e.pts = pts
	e.task.f = fr
	if err := e.th.submit(&e.task); err != nil {
		return 0, false, err
	}
	<-e.task.done
	if e.task.err != nil {
		return 0, false, e.task.err
	}
	which := -1 // NVENC: the pool frame the kernel filled
	if e.backend == BackendX264 {
		s := e.slot
		e.slot ^= 1
		if e.cfg.Pipelined {
			prev := e.staged
			e.staged, e.spts[s] = s, pts
			if prev < 0 {
				return 0, false, nil
			}
			which, pts = prev, e.spts[prev]
		} else {
			which = s
		}
	}
	return e.encodeC(which, pts, out)
}

// deviceStep runs on the encoder's thread: check f's memory with the
// driver, order after the producer, run the kernel into the backend's NV12
// planes and, for libx264, start the copy to pinned memory; wait until the
// source has been read.
func (e *Encoder) deviceStep(f Frame) error {
	if err := e.d.checkFrame(f); err != nil {
		return err
	}
	if err := e.st.waitFor(f); err != nil {
		return err
	}
	if e.backend == BackendNVENC {
		if r := C.fw_nvenc_frame(e.c); r < 0 {
			return avErr("get a CUDA frame from FFmpeg's pool", r)
		}
		c := e.c
		if err := e.d.toNV12(&e.st, f, uintptr(c.y), int(c.ylin), uintptr(c.uv), int(c.uvlin), e.ow, e.oh); err != nil {
			return err
		}
		return e.st.sync() // NVENC reads the frame after this; f is free
	}
	s := e.slot
	y := uintptr(e.dev[s])
	if err := e.d.toNV12(&e.st, f, y, e.pitch, y+uintptr(e.pitch*e.oh), e.pitch, e.ow, e.oh); err != nil {
		return err
	}
	if err := cuErr("cuEventRecord", C.fw_event_record(e.kev[s], e.st.s)); err != nil {
		return err
	}
	if err := cuErr("cuMemcpyDtoHAsync", C.fw_dtoh_async(e.pin[s], C.CUdeviceptr(e.dev[s]), C.size_t(e.pitch*e.oh*3/2), e.st.s)); err != nil {
		return err
	}
	if !e.cfg.Pipelined {
		return e.st.sync()
	}
	// Pipelined: wait for the kernel only (f is free). The copy of the
	// previous slot was issued before this kernel on the same stream, so
	// it is complete too; this slot's copy overlaps the libx264 encode of
	// the previous slot.
	return cuErr("cuEventSynchronize", C.fw_event_sync(e.kev[s]))
}

// encodeC sends frame which (see fw_enc_encode) and drains the packets.
func (e *Encoder) encodeC(which int, pts int64, out []byte) (int, bool, error) {
	var dst *C.uint8_t
	if len(out) > 0 {
		dst = (*C.uint8_t)(unsafe.Pointer(&out[0]))
	}
	key := C.int(0)
	if e.key.Swap(false) {
		key = 1
	}
	r := C.fw_enc_encode(e.c, C.int(which), C.longlong(pts), key, dst, C.int(len(out)))
	n, k := e.c.n, e.c.key
	if r < 0 {
		if key != 0 {
			e.key.Store(true)
		}
		return 0, false, avErr(string(e.backend)+" encode", r)
	}
	if r == 1 {
		// The access unit is lost: without a keyframe next, every later
		// picture would reference one the receiver never got.
		e.key.Store(true)
		return int(n), k != 0, fmt.Errorf("%w: access unit of %d bytes, buffer holds %d", ErrShortBuffer, int(n), len(out))
	}
	return int(n), k != 0, nil
}

// Flush encodes the frame a pipelined encoder still holds (n is 0 when
// none). Without Pipelined it returns 0.
func (e *Encoder) Flush(out []byte) (n int, key bool, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed.Load() {
		return 0, false, ErrClosed
	}
	if e.staged < 0 || e.broken != nil {
		return 0, false, nil
	}
	s := e.staged
	e.staged = -1
	if err := e.th.do(e.st.sync); err != nil {
		return 0, false, err
	}
	return e.encodeC(s, e.spts[s], out)
}

func (e *Encoder) reopen(w, h int) error {
	if w > 16384 || h > 16384 {
		return fmt.Errorf("%w: size %dx%d", ErrBadFrame, w, h)
	}
	e.log.Info("frame size changed; reopening gpu encoder", "backend", e.backend, "from", fmt.Sprintf("%dx%d", e.ow, e.oh), "to", fmt.Sprintf("%dx%d", w, h))
	forced := e.cfg.Backend
	e.cfg.Backend = e.backend // keep the probed backend
	defer func() { e.cfg.Backend = forced }()
	e.key.Store(true)
	return e.d.Do(func() error {
		e.free()
		return e.open(w, h)
	})
}

// Close frees the codec, frames, device and pinned buffers. It is
// idempotent and waits for an Encode in progress.
func (e *Encoder) Close() error {
	if e == nil {
		return nil
	}
	e.once.Do(func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		e.closed.Store(true)
		e.d.forget(e)
		err := e.d.Do(func() error {
			e.free()
			e.freeStaging()
			e.freeStagingEvent()
			return nil
		})
		if err != nil && err != ErrClosed {
			e.lastErr = err
		}
		e.th.stop()
	})
	return e.lastErr
}

// codecOptions flattens encode's options of b for fw_opts (a C string the
// caller frees): the private options are written once, in package encode.
func codecOptions(b encode.Backend, threads int) *C.char {
	var sb strings.Builder
	for i, o := range encode.CodecOptions(b, threads) {
		if i > 0 {
			sb.WriteByte(0x1e)
		}
		sb.WriteString(o.Key)
		sb.WriteByte(0x1f)
		sb.WriteString(o.Value)
	}
	return C.CString(sb.String())
}

// worthChange reports whether backend should move from bitrate cur to
// next (see SetBitrate).
func worthChange(backend encode.Backend, cur, next int) bool {
	if backend != BackendNVENC {
		return true
	}
	d := next - cur
	if d < 0 {
		d = -d
	}
	return d*5 >= cur
}

// EncodesHostFrames reports whether host frames should go through this
// Encoder (EncodeRGB) rather than a host encoder: where h264_nvenc opens on
// the device (probed once per Device), upload + kernel → NV12 CUDA frame
// → h264_nvenc spares the CPU conversion and FFmpeg's own upload. On a GPU
// without NVENC, swscale + libx264 on the CPU is the better path.
func (e *Encoder) EncodesHostFrames() bool { return e.d.hasNVENC() }

// EncodeRGB encodes a host picture of packed RGB24 (w x h, stride bytes
// per row, 0 for w*3; the last row may end after its w*3 bytes): it is
// copied into pinned memory, uploaded asynchronously on the encoder's
// stream, converted by the kernel and encoded as Encode does (the same
// backend, size and keyframe rules). pix is not retained.
//
// Staging runs under the encoder's lock, as Encode does: a concurrent
// Close either frees the staging buffers after it or finds them unused.
func (e *Encoder) EncodeRGB(pix []byte, w, h, stride int, pts int64, out []byte) (n int, key bool, err error) {
	if stride == 0 {
		stride = w * 3
	}
	if w <= 0 || h <= 0 || stride < w*3 || len(pix) < stride*(h-1)+w*3 {
		return 0, false, fmt.Errorf("%w: host picture %dx%d, stride %d, %d bytes", ErrBadFrame, w, h, stride, len(pix))
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed.Load() {
		return 0, false, ErrClosed
	}
	if err := e.d.Fault(); err != nil {
		return 0, false, err
	}
	if testHookBeforeStage != nil {
		testHookBeforeStage()
	}
	used := stride*(h-1) + w*3 // the bytes a picture with a short last row has
	if err := e.th.do(func() error { return e.stage(pix[:used], stride*h) }); err != nil {
		return 0, false, err
	}
	// The conversion is ordered after the upload by the upload's event.
	return e.encodeLocked(Frame{Ptr: uintptr(e.hdev), Pitch: stride, Width: w, Height: h, Format: RGB24, Event: uintptr(unsafe.Pointer(e.hev))}, 0, pts, out)
}

// testHookBeforeStage, set by a test, runs in EncodeRGB just before it
// stages (nil otherwise).
var testHookBeforeStage func()

// stage copies pix into the pinned buffer and queues its upload to the
// device picture (size bytes: a full stride*h picture), growing both
// buffers when needed, then records hev after the upload. Encoder thread.
func (e *Encoder) stage(pix []byte, size int) error {
	if e.hst.s == nil {
		if err := e.hst.open(); err != nil {
			return err
		}
	}
	if e.hev == nil {
		if err := cuErr("cuEventCreate", C.fw_event_create(&e.hev)); err != nil {
			return err
		}
	} else if err := cuErr("cuEventSynchronize", C.fw_event_sync(e.hev)); err != nil {
		return err // the previous upload still reads the pinned buffer otherwise
	}
	if size > e.hcap {
		e.freeStaging()
		p, err := cu.MemAlloc(int64(size))
		if err != nil {
			return fmt.Errorf("gpu: allocate %d bytes for a host picture: %w", size, err)
		}
		e.hdev = p
		if err := cuErr("cuMemHostAlloc", C.fw_host_alloc(&e.hpin, C.size_t(size))); err != nil {
			return err
		}
		e.hcap = size
	}
	n := len(pix)
	copy(pinnedSlice(e.hpin, n), pix)
	if err := cuErr("cuMemcpyHtoDAsync", C.fw_htod_async(C.CUdeviceptr(e.hdev), e.hpin, C.size_t(n), e.hst.s)); err != nil {
		return err
	}
	return cuErr("cuEventRecord", C.fw_event_record(e.hev, e.hst.s))
}

// freeStaging frees EncodeRGB's buffers. Device goroutine; idempotent.
func (e *Encoder) freeStaging() {
	if e.hdev != 0 {
		_ = cu.MemFree(e.hdev)
		e.hdev = 0
	}
	if e.hpin != nil {
		_ = C.fw_host_free(e.hpin)
		e.hpin = nil
	}
	e.hcap = 0
}

// freeStagingEvent frees EncodeRGB's event and stream. Device goroutine;
// idempotent.
func (e *Encoder) freeStagingEvent() {
	if e.hev != nil {
		_ = C.fw_event_destroy(e.hev)
		e.hev = nil
	}
	e.hst.close()
}

// hasNVENC reports whether h264_nvenc opens on a CUDA frames context of
// d, probing once (a 256x256 encoder, closed at once).
func (d *Device) hasNVENC() bool {
	have := false
	_ = d.Do(func() error {
		if !d.nvencProbed {
			d.nvencProbed = true
			p := &Encoder{d: d, cfg: EncoderConfig{Width: 256, Height: 256, FPS: 30, Bitrate: 1_000_000}}
			p.ow, p.oh = 256, 256
			d.nvencHave = p.openNVENC() == nil
			p.freeCodec()
		}
		have = d.nvencHave
		return nil
	})
	return have
}
