package gpu

import (
	"errors"
	"fmt"

	"github.com/framewire/framewire/encode"
	"github.com/framewire/framewire/tracks"
)

// ErrBadFrame is returned for a Frame whose pointer, size, pitch, stride,
// format or batch index does not describe valid pictures.
var ErrBadFrame = errors.New("gpu: bad device frame")

// PixelFormat is the layout of a packed 8-bit device picture.
type PixelFormat int

// Special CUstream handles a producer may put in Frame.Stream (cuda.h's
// CU_STREAM_LEGACY and CU_STREAM_PER_THREAD).
const (
	// StreamLegacy is the legacy default stream: the same as Stream 0.
	StreamLegacy uintptr = 0x1
	// StreamPerThread is the calling thread's per-thread default stream.
	// It names a different stream on every thread, so it cannot tell the
	// encoder's thread which stream the producer wrote on: Validate
	// refuses it unless Event is set (record an event on it after the
	// writes and pass that).
	StreamPerThread uintptr = 0x2
)

// The packed formats device frames may have.
const (
	RGB24 PixelFormat = iota + 1 // 3 bytes per pixel: R, G, B.
	RGBA                         // 4 bytes per pixel: R, G, B, A (alpha is ignored by the encoder).
)

// BytesPerPixel reports 3 for RGB24, 4 for RGBA and 0 for anything else.
func (p PixelFormat) BytesPerPixel() int {
	switch p {
	case RGB24:
		return 3
	case RGBA:
		return 4
	}
	return 0
}

func (p PixelFormat) String() string {
	switch p {
	case RGB24:
		return "rgb24"
	case RGBA:
		return "rgba"
	}
	return fmt.Sprintf("PixelFormat(%d)", int(p))
}

// DeviceFrame is tracks.DeviceFrame (an alias): Encoder's methods take the
// type the engine's pipeline passes, so an Encoder is the pipeline's
// device encoder without an adapter.
type DeviceFrame = tracks.DeviceFrame

// Frame describes one picture, or a batch of N pictures of the same size
// at a fixed stride, in CUDA device memory owned by someone else: a model
// or an inference server with its own allocator. It is a plain value; it
// owns nothing and has nothing to close. Any code that holds a raw
// CUdeviceptr (a uintptr) can build one without using this package's
// allocators:
//
//	gpu.Frame{Ptr: uintptr(ptr), Pitch: 1280 * 3, Width: 1280, Height: 720, Format: gpu.RGB24, Stream: uintptr(stream)}
//
// The memory must belong to the primary context of the device the encoder
// runs on (the CUDA runtime, PyTorch and FFmpeg with
// AV_CUDA_USE_PRIMARY_CONTEXT all use it).
//
// Ordering. The producer's writes are ordered before the conversion that
// reads the frame by, in this order of precedence: Event (a CUevent
// recorded after the writes: the encoder's stream waits for it), Stream
// (the CUstream the writes were issued on: the encoder records an event on
// it and waits for that), or, when both are zero, the legacy default
// stream: the encoder records an event there and waits for it, so it
// starts after all work issued before on the legacy default stream (its
// own stream is non-blocking). A producer that writes on a non-blocking
// stream must set Stream or Event (or synchronise before handing the
// frame over); one that writes on the per-thread default stream must set
// Event: Stream = StreamPerThread is refused (it names a different stream
// on each thread, the encoder's would order nothing).
//
// Reuse. Encoder.Encode returns only after the kernel that reads the frame
// has completed on the device, so the producer may write the memory again
// as soon as the Encode call that consumed the frame has returned. In the
// engine the frame is consumed by the track's encoder after Emit, not
// during it: keep the memory unchanged until the track's VideoFrame for it
// is released (encoded or dropped), or double-buffer.
type Frame struct {
	Ptr           uintptr     // CUdeviceptr of the first byte of the first picture.
	Pitch         int         // Bytes between rows; 0 means Width*bytes per pixel.
	Width, Height int         // Picture size in pixels.
	Format        PixelFormat // RGB24 or RGBA.
	Count         int         // Pictures in the batch; 0 means 1.
	Stride        int         // Bytes between consecutive pictures; 0 means Pitch*Height.
	Stream        uintptr     // CUstream the producer wrote on, or 0.
	Event         uintptr     // CUevent recorded after the producer's writes, or 0.
}

// Size reports the size of each picture.
func (f Frame) Size() (w, h int) { return f.Width, f.Height }

// Frames reports the batch size, at least 1.
func (f Frame) Frames() int { return max(f.Count, 1) }

// RowPitch reports the distance in bytes between rows.
func (f Frame) RowPitch() int {
	if f.Pitch == 0 {
		return f.Width * f.Format.BytesPerPixel()
	}
	return f.Pitch
}

// FrameStride reports the distance in bytes between pictures of the batch.
func (f Frame) FrameStride() int {
	if f.Stride == 0 {
		return f.RowPitch() * f.Height
	}
	return f.Stride
}

// Validate reports whether f describes valid pictures. It cannot check
// that the memory exists: a wrong pointer faults on the device.
func (f Frame) Validate() error {
	bpp := f.Format.BytesPerPixel()
	switch {
	case bpp == 0:
		return fmt.Errorf("%w: format %v, want gpu.RGB24 or gpu.RGBA", ErrBadFrame, f.Format)
	case f.Ptr == 0:
		return fmt.Errorf("%w: nil device pointer", ErrBadFrame)
	case f.Width <= 0 || f.Height <= 0 || f.Width > 16384 || f.Height > 16384:
		return fmt.Errorf("%w: size %dx%d, want 1..16384 in each dimension", ErrBadFrame, f.Width, f.Height)
	case f.Pitch != 0 && f.Pitch < f.Width*bpp:
		return fmt.Errorf("%w: pitch %d < width*%d = %d", ErrBadFrame, f.Pitch, bpp, f.Width*bpp)
	case f.Count < 0:
		return fmt.Errorf("%w: batch count %d, want >= 0", ErrBadFrame, f.Count)
	case f.Frames() > 1 && f.FrameStride() < f.RowPitch()*(f.Height-1)+f.Width*bpp:
		return fmt.Errorf("%w: frame stride %d smaller than one %dx%d picture with pitch %d", ErrBadFrame, f.FrameStride(), f.Width, f.Height, f.RowPitch())
	case f.Stream == StreamPerThread && f.Event == 0:
		return fmt.Errorf("%w: Stream is the per-thread default stream (CU_STREAM_PER_THREAD), which names the encoder's own thread's stream there and orders nothing; record an event on it after the writes and set Event", ErrBadFrame)
	}
	return nil
}

// At returns the i-th picture of the batch as a single-picture Frame with
// the same ordering (Stream, Event).
func (f Frame) At(i int) (Frame, error) {
	if err := f.Validate(); err != nil {
		return Frame{}, err
	}
	if i < 0 || i >= f.Frames() {
		return Frame{}, fmt.Errorf("%w: batch index %d, batch has %d pictures", ErrBadFrame, i, f.Frames())
	}
	g := f
	g.Ptr += uintptr(i * f.FrameStride())
	g.Pitch = f.RowPitch()
	g.Count, g.Stride = 1, 0
	return g, nil
}

// GPUFrame returns f. Encoders accept any DeviceFrame with this method, so
// a producer's own type that embeds a Frame (for example to implement
// tracks.Releaser and learn when the frame was consumed) is encoded like
// the Frame it embeds.
func (f Frame) GPUFrame() Frame { return f }

// Framer is a DeviceFrame that can give the Frame describing its memory:
// Frame, *Frame and every type that embeds a Frame.
type Framer interface {
	DeviceFrame
	GPUFrame() Frame
}

// frameOf extracts the Frame behind a DeviceFrame without allocating.
func frameOf(df DeviceFrame, index int) (Frame, error) {
	var f Frame
	switch v := df.(type) {
	case Frame:
		f = v
	case *Frame:
		if v == nil {
			return Frame{}, fmt.Errorf("%w: nil *gpu.Frame", ErrBadFrame)
		}
		f = *v
	case nil:
		return Frame{}, fmt.Errorf("%w: nil device frame", ErrBadFrame)
	case Framer:
		f = v.GPUFrame()
	default:
		return Frame{}, fmt.Errorf("%w: device frame of type %T, want gpu.Frame or a type that embeds one (a GPUFrame method)", ErrBadFrame, df)
	}
	return f.At(index)
}

// Backend names what an Encoder runs on, as Encoder.Backend reports it:
// encode.Backend values, so stats and logs use one type for every encoder.
const (
	// BackendNVENC: the kernel writes NV12 straight into a CUDA frame from
	// FFmpeg's pool and h264_nvenc encodes it; no host memory per frame.
	BackendNVENC encode.Backend = "cuda+h264_nvenc"
	// BackendX264: the kernel writes NV12 on the device, an async copy
	// moves it to pinned host memory and libx264 encodes it (GPUs without
	// NVENC: H100, H200, A100).
	BackendX264 encode.Backend = "cuda+libx264"
	// BackendCPU is what the engine uses when no device encoder opens
	// (no GPU, or a binary built without the cuda tag): swscale + libx264.
	BackendCPU encode.Backend = "cpu"
)

// EncoderConfig configures an Encoder. The zero value of every field
// picks a default; with Width and Height zero the Encoder opens at the
// size of the first frame it encodes.
type EncoderConfig struct {
	Width, Height int            // Picture size; odd sizes are padded to even. 0, 0: the first frame's.
	FPS           int            // Nominal frame rate. Default 30.
	Bitrate       int            // Target bit/s. Default 2.5 Mbit/s.
	Backend       encode.Backend // BackendNVENC or BackendX264 to force one; "" probes (NVENC first).
	// Pipelined (BackendX264 only) overlaps the device→host copy of frame
	// n+1 with the libx264 encode of frame n, at the cost of one frame of
	// latency: Encode returns the packet of the previous frame and Flush
	// returns the last one. Off by default (real time wants the latency).
	Pipelined bool
	Threads   int // libx264 threads; 0 lets the codec choose.
}

func (c *EncoderConfig) defaults() error {
	lazy := c.Width == 0 && c.Height == 0
	if !lazy && (c.Width <= 0 || c.Height <= 0 || c.Width > 16384 || c.Height > 16384) {
		return fmt.Errorf("%w: encoder size %dx%d, want 1..16384 in each dimension", ErrBadFrame, c.Width, c.Height)
	}
	if c.FPS <= 0 {
		c.FPS = 30
	}
	if c.Bitrate <= 0 {
		c.Bitrate = 2_500_000
	}
	switch c.Backend {
	case "", BackendNVENC, BackendX264:
	default:
		return fmt.Errorf("gpu: unknown encoder backend %q, want %q, %q or empty to probe", c.Backend, BackendNVENC, BackendX264)
	}
	return nil
}
