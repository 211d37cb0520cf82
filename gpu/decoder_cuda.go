//go:build cuda

package gpu

// #include "shim_cuda.h"
import "C"

import (
	_ "embed"
	"fmt"
	"sync"
	"sync/atomic"
	"unsafe"

	"gorgonia.org/cu"
)

// Decoder decodes H.264 with NVDEC (FFmpeg's h264 decoder with the nvdec
// hwaccel, on the device's primary context) into CUDA NV12 frames,
// converts each picture to RGB24 with a kernel into a device buffer (the
// device-side latest picture) and copies it asynchronously into a pinned
// host buffer (the host-side latest picture). Readers get copies: Latest
// for host memory, LatestDevice for device memory of the same GPU.
//
// Decode is not safe for concurrent use (one goroutine, the track's
// receiver, owns it); Latest, LatestDevice and Seq are safe to call from
// any goroutine at any time. The caller must call Close (or close the
// Device).
type Decoder struct {
	d    *Device
	th   *thread // runs the decoder's CUDA calls (nil until open)
	c    *C.fw_dec
	st   stream
	hw   *C.AVBufferRef // FFmpeg's CUDA device context on st (fw_hwdevice_on_stream)
	task decTask

	// Decoder thread: the device-side latest picture.
	rgb    cu.DevicePtr
	rgbCap int
	pinCap int
	dw, dh int // size of the picture in rgb

	mu    sync.Mutex // guards pin, front, w, h, seq, have
	pin   [2]unsafe.Pointer
	front int
	w, h  int
	seq   uint64
	have  bool

	use    sync.Mutex // held by Decode, LatestDevice and Close
	closed atomic.Bool
	once   sync.Once
}

// decTask is the decoder's one device task, reused for every access unit.
type decTask struct {
	dec  *Decoder
	au   []byte
	dst  Frame // LatestDevice
	copy bool  // LatestDevice rather than Decode
	n    int
	err  error
	done chan struct{}
}

func (t *decTask) run() {
	if t.copy {
		t.err = t.dec.copyLatest(t.dst)
	} else {
		t.n, t.err = t.dec.decode(t.au)
	}
	if t.err != nil {
		t.dec.d.noteFault(t.err)
	}
	t.done <- struct{}{}
}

// NewDecoder opens an NVDEC H.264 decoder on d. It returns an error
// wrapping ErrUnavailable when FFmpeg cannot create the CUDA device or
// open the decoder, or when NVDEC cannot decode: FFmpeg sets up its NVDEC
// hwaccel only at a stream's first SPS, so the first NewDecoder on a
// Device decodes a small embedded IDR picture through NVDEC and every
// NewDecoder on that Device reports the result (a missing libnvcuvid.so.1,
// a GPU without H.264 decoding). The caller then decodes on the CPU. The
// caller must call Close.
func NewDecoder(d *Device) (*Decoder, error) {
	if d == nil {
		return nil, fmt.Errorf("gpu: NewDecoder on a nil Device")
	}
	if err := d.Fault(); err != nil {
		return nil, err
	}
	dec := &Decoder{d: d}
	dec.task = decTask{dec: dec, done: make(chan struct{}, 1)}
	err := d.Do(func() error {
		if err := dec.st.open(); err != nil {
			return err
		}
		hw, err := d.hwDevice()
		if err != nil {
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		if err := d.probeNVDEC(hw); err != nil {
			return err
		}
		if err := avErr("create FFmpeg's CUDA device on the decoder's stream", C.fw_hwdevice_on_stream(&dec.hw, dec.st.s)); err != nil {
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		if dec.c = C.fw_dec_alloc(); dec.c == nil {
			return fmt.Errorf("gpu: out of memory")
		}
		if r := C.fw_dec_open(dec.c, dec.hw); r < 0 {
			return fmt.Errorf("%w: %w%s", ErrUnavailable, avErr("open h264 decoder with NVDEC", r), libHint(libNVDEC))
		}
		return nil
	})
	if err == nil {
		dec.th, err = startThread(d)
	}
	if err == nil {
		if err = d.adopt(dec); err != nil {
			dec.th.stop()
		}
	}
	if err != nil {
		_ = d.Do(func() error { dec.free(); return nil })
		return nil, err
	}
	return dec, nil
}

// Decode feeds one H.264 access unit (Annex-B) and converts every picture
// it completes; it returns how many. When it returns, the pictures are in
// the latest buffers. au is only read during the call. In steady state
// Decode allocates nothing. NVDEC decoding and the conversion run on the
// decoder's own OS thread (the device's context current), in parallel
// with other decoders and with the Device's goroutine.
func (dec *Decoder) Decode(au []byte) (pictures int, err error) {
	dec.use.Lock()
	defer dec.use.Unlock()
	if dec.closed.Load() {
		return 0, ErrClosed
	}
	if err := dec.d.Fault(); err != nil {
		return 0, err
	}
	if len(au) == 0 {
		return 0, nil
	}
	if len(au) > 1<<30 {
		return 0, fmt.Errorf("gpu: access unit of %d bytes, want < 1 GiB", len(au))
	}
	dec.task.copy, dec.task.au = false, au
	if err := dec.th.submit(&dec.task); err != nil {
		return 0, err
	}
	<-dec.task.done
	dec.task.au = nil
	return dec.task.n, dec.task.err
}

// decode runs on the decoder thread.
func (dec *Decoder) decode(au []byte) (int, error) { return feed(decFeeder{dec, au}) }

// feeder is one access unit's way into a decoder: send it (0 taken, 1 the
// decoder must be drained first, < 0 an AVERROR), send it again, receive
// every picture ready.
type feeder interface {
	send() int
	resend() int
	drain() (int, error)
}

// decFeeder feeds au to dec (a value: no allocation per Decode).
type decFeeder struct {
	dec *Decoder
	au  []byte
}

func (f decFeeder) send() int {
	return int(C.fw_dec_send(f.dec.c, (*C.uint8_t)(unsafe.Pointer(&f.au[0])), C.int(len(f.au))))
}

func (f decFeeder) resend() int { return int(C.fw_dec_resend(f.dec.c)) }

func (f decFeeder) drain() (int, error) { return f.dec.receiveAll() }

// feed sends one access unit and receives every picture it completes.
// When the decoder refuses the unit because it holds output (a previous
// Decode stopped draining at an error), it is drained and the unit sent
// again: dropping it would break every later picture that references it.
func feed(f feeder) (int, error) {
	r := f.send()
	n := 0
	for tries := 0; ; tries++ {
		if r < 0 {
			return n, avErr("NVDEC h264 decode", C.int(r))
		}
		k, err := f.drain()
		n += k
		if err != nil || r == 0 {
			return n, err
		}
		if tries == 2 {
			return n, fmt.Errorf("gpu: NVDEC h264 decode: the decoder refuses input with no output to drain")
		}
		r = f.resend()
	}
}

// receiveAll converts every picture the decoder has ready. Decoder thread.
func (dec *Decoder) receiveAll() (int, error) {
	n := 0
	for {
		r := C.fw_dec_receive(dec.c)
		if r == 1 {
			return n, nil
		}
		if r < 0 {
			return n, avErr("NVDEC h264 receive frame (want CUDA NV12 pictures)", r)
		}
		c := dec.c
		err := dec.convert(uintptr(c.y), int(c.ylin), uintptr(c.uv), int(c.uvlin), int(c.w), int(c.h))
		C.fw_dec_release(dec.c)
		if err != nil {
			return n, err
		}
		n++
	}
}

// convert turns one NV12 picture into the device and pinned latest
// buffers. Decoder thread.
func (dec *Decoder) convert(y uintptr, yl int, uv uintptr, uvl int, w, h int) error {
	need := w * h * 3
	if need > dec.rgbCap {
		if dec.rgb != 0 {
			_ = dec.st.sync()
			_ = cu.MemFree(dec.rgb)
			dec.rgb, dec.rgbCap = 0, 0
		}
		p, err := cu.MemAlloc(int64(need))
		if err != nil {
			return fmt.Errorf("gpu: allocate %d bytes for an RGB picture: %w", need, err)
		}
		dec.rgb, dec.rgbCap = p, need
	}
	if need > dec.pinCap {
		dec.mu.Lock()
		dec.freePinned()
		var err error
		for i := 0; i < 2 && err == nil; i++ {
			err = cuErr("cuMemHostAlloc", C.fw_host_alloc(&dec.pin[i], C.size_t(need)))
		}
		if err == nil {
			dec.pinCap = need
		}
		dec.mu.Unlock()
		if err != nil {
			return err
		}
	}
	dst := Frame{Ptr: uintptr(dec.rgb), Width: w, Height: h, Format: RGB24}
	// NVDEC mapped the picture on dec.st (the stream of the decoder's own
	// FFmpeg device context): the kernel, on the same stream, runs after
	// it, with no wait on the legacy stream, which every other session's
	// and FFmpeg's work also orders with.
	if err := dec.d.toRGB(&dec.st, y, yl, uv, uvl, dst); err != nil {
		return err
	}
	dec.dw, dec.dh = w, h
	back := dec.front ^ 1
	if err := cuErr("cuMemcpyDtoHAsync", C.fw_dtoh_async(dec.pin[back], C.CUdeviceptr(dec.rgb), C.size_t(need), dec.st.s)); err != nil {
		return err
	}
	if err := dec.st.sync(); err != nil {
		return err
	}
	dec.mu.Lock()
	dec.front, dec.w, dec.h, dec.have = back, w, h, true
	dec.seq++
	dec.mu.Unlock()
	return nil
}

// Latest copies the most recent picture (packed RGB24, w*h*3 bytes) into
// dst and returns its size and sequence number (1 for the first picture
// decoded, counting up). It returns ErrNoFrame before the first picture
// and ErrShortBuffer (with the size) when dst is too small. It never
// waits for the device and allocates nothing.
func (dec *Decoder) Latest(dst []byte) (w, h int, seq uint64, err error) {
	dec.mu.Lock()
	defer dec.mu.Unlock()
	if dec.closed.Load() {
		return 0, 0, 0, ErrClosed
	}
	if !dec.have {
		return 0, 0, 0, ErrNoFrame
	}
	n := dec.w * dec.h * 3
	if len(dst) < n {
		return dec.w, dec.h, dec.seq, ErrShortBuffer
	}
	copy(dst, pinnedSlice(dec.pin[dec.front], n))
	return dec.w, dec.h, dec.seq, nil
}

// Seq reports the sequence number of the most recent picture (0 before
// the first).
func (dec *Decoder) Seq() uint64 {
	dec.mu.Lock()
	defer dec.mu.Unlock()
	return dec.seq
}

// LatestDevice copies the most recent picture into dst, device memory of
// the same GPU: an RGB24 Frame of the picture's size (its Pitch may be
// larger than Width*3). The copy is ordered after dst's Event or Stream
// (the consumer's earlier use of dst); when dst.Stream is set, it is made
// to wait for the copy and LatestDevice returns without waiting, else
// LatestDevice returns when the copy is complete. It returns ErrNoFrame
// before the first picture.
func (dec *Decoder) LatestDevice(dst Frame) error {
	if err := dst.Validate(); err != nil {
		return err
	}
	if dst.Format != RGB24 || dst.Frames() != 1 {
		return fmt.Errorf("%w: LatestDevice writes one RGB24 picture, got %d %v", ErrBadFrame, dst.Frames(), dst.Format)
	}
	dec.use.Lock()
	defer dec.use.Unlock()
	if dec.closed.Load() {
		return ErrClosed
	}
	if err := dec.d.Fault(); err != nil {
		return err
	}
	dec.task.copy, dec.task.dst = true, dst
	if err := dec.th.submit(&dec.task); err != nil {
		return err
	}
	<-dec.task.done
	return dec.task.err
}

// copyLatest runs on the decoder thread.
func (dec *Decoder) copyLatest(dst Frame) error {
	if dec.dw == 0 {
		return ErrNoFrame
	}
	if dst.Width != dec.dw || dst.Height != dec.dh {
		return fmt.Errorf("%w: LatestDevice into %dx%d, latest picture is %dx%d", ErrBadFrame, dst.Width, dst.Height, dec.dw, dec.dh)
	}
	if err := dec.d.checkFrame(dst); err != nil {
		return err
	}
	if err := dec.st.waitFor(dst); err != nil {
		return err
	}
	if err := cuErr("cuMemcpy2DAsync", C.fw_dtod_2d_async(devptr(dst.Ptr), C.size_t(dst.RowPitch()), C.CUdeviceptr(dec.rgb), C.size_t(dec.dw*3), C.size_t(dec.dw*3), C.size_t(dec.dh), dec.st.s)); err != nil {
		return err
	}
	if dst.Stream != 0 {
		return cuErr("order the consumer's stream after the copy", C.fw_signal_consumer(dec.st.s, dec.st.ev, C.uintptr_t(dst.Stream)))
	}
	return dec.st.sync()
}

// free releases everything. Decoder thread (or the device goroutine when
// the decoder did not open); idempotent.
func (dec *Decoder) free() {
	_ = dec.st.sync()
	if dec.c != nil {
		C.fw_dec_free(dec.c)
		dec.c = nil
	}
	if dec.hw != nil {
		C.fw_buffer_unref(&dec.hw)
	}
	if dec.rgb != 0 {
		_ = cu.MemFree(dec.rgb)
		dec.rgb, dec.rgbCap = 0, 0
	}
	dec.mu.Lock()
	dec.freePinned()
	dec.mu.Unlock()
	dec.st.close()
}

// freePinned frees the host latest buffers; Latest then reports
// ErrNoFrame. Decoder thread, with mu held.
func (dec *Decoder) freePinned() {
	dec.have = false
	for i := range 2 {
		if dec.pin[i] != nil {
			_ = C.fw_host_free(dec.pin[i])
			dec.pin[i] = nil
		}
	}
	dec.pinCap = 0
}

// Close frees the decoder and its buffers; it waits for a Decode in
// progress and is idempotent.
func (dec *Decoder) Close() error {
	if dec == nil {
		return nil
	}
	var err error
	dec.once.Do(func() {
		dec.use.Lock()
		defer dec.use.Unlock()
		dec.closed.Store(true)
		dec.d.forget(dec)
		if e := dec.th.do(func() error { dec.free(); return nil }); e != nil && e != ErrClosed {
			err = e
		}
		dec.th.stop()
	})
	return err
}

// nvdecProbeIDR is one 64x64 H.264 IDR access unit (SPS, PPS, slice;
// libx264 constrained baseline), decoded once per Device to check that
// NVDEC works before a decoder is handed out.
//
//go:embed nvdec_probe.h264
var nvdecProbeIDR []byte

// probeNVDEC decodes nvdecProbeIDR with NVDEC on hw and returns the
// result, cached for the Device. Device goroutine.
func (d *Device) probeNVDEC(hw *C.AVBufferRef) error {
	if d.nvdecProbed {
		return d.nvdecErr
	}
	d.nvdecProbed = true
	fail := func(what string, r C.int) error {
		d.nvdecErr = fmt.Errorf("%w: NVDEC probe (a 64x64 H.264 IDR): %w%s", ErrUnavailable, avErr(what, r), libHint(libNVDEC))
		return d.nvdecErr
	}
	c := C.fw_dec_alloc()
	if c == nil {
		d.nvdecProbed = false
		return fmt.Errorf("gpu: out of memory")
	}
	defer C.fw_dec_free(c)
	if r := C.fw_dec_open(c, hw); r < 0 {
		return fail("open h264 decoder with NVDEC", r)
	}
	au := nvdecProbeIDR
	if r := C.fw_dec_send(c, (*C.uint8_t)(unsafe.Pointer(&au[0])), C.int(len(au))); r < 0 {
		return fail("decode", r)
	}
	if r := C.fw_dec_drain(c); r < 0 {
		return fail("drain", r)
	}
	if r := C.fw_dec_receive(c); r != 0 {
		if r == 1 {
			r = C.AVERROR_INVALIDDATA
		}
		return fail("receive a CUDA NV12 picture", r)
	}
	C.fw_dec_release(c)
	return nil
}
