package tracks

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Black-frame size used by Emit(nil): a real 1280×720 picture, as the Reactor
// runtime synthesises for emit(None).
const (
	BlackWidth  = 1280
	BlackHeight = 720
)

// Limits on what Emit accepts.
const (
	// MaxDimension is the largest width or height Emit accepts.
	MaxDimension = 16384
	// MaxBatch is the largest N of an (N,H,W,3) batch.
	MaxBatch = 1024
)

// VideoOut is a model → client video track of one session. The model sends
// frames with Emit (host RGB) or EmitDevice (GPU); the media pipeline takes
// them with Next, one at a time, and releases each when encoded.
//
// Emit never waits for the network: frames go into a bounded queue. When the
// queue is full the oldest frame is dropped and counted (Policy DropOldest,
// the default), or, with Policy Block, Emit waits for room or for the track
// to close. Emit copies the caller's pixels into a pooled buffer, so the
// caller may reuse its buffer as soon as Emit returns; EmitShared lends them
// instead, without the copy. In steady state neither allocates.
//
// All methods are safe for concurrent use. Next is meant for one consumer.
// The zero value is not usable; tracks are built by NewSet.
type VideoOut struct {
	spec Spec
	q    outQueue[VideoFrame]

	devMu  sync.Mutex
	devErr error // nil: device frames accepted
}

func newVideoOut(s Spec) *VideoOut {
	t := &VideoOut{spec: s, devErr: ErrNoDevicePath}
	t.q.init(s.QueueSize, s.Policy, func(f *VideoFrame, _ bool) { t.recycle(f) })
	return t
}

// Name returns the track's name, exactly as declared and as used on the wire.
func (t *VideoOut) Name() string { return t.spec.Name }

// Spec returns the track's resolved declaration.
func (t *VideoOut) Spec() Spec { return t.spec }

// Rate returns the declared frame rate; 0 means automatic.
func (t *VideoOut) Rate() float64 { return t.spec.Rate }

// Stats returns a snapshot of the track's counters.
func (t *VideoOut) Stats() Stats { return t.q.stats() }

// SetDeviceSupport tells the track whether EmitDevice may queue device
// frames: reason nil enables them; otherwise EmitDevice fails with an error
// wrapping reason (the engine passes gpu.ErrNoCUDA in a build without CUDA).
// Until it is called EmitDevice fails with ErrNoDevicePath.
func (t *VideoOut) SetDeviceSupport(reason error) {
	t.devMu.Lock()
	t.devErr = reason
	t.devMu.Unlock()
}

// Emit sends host RGB pixels to the client. shape is (H, W, 3) for one frame
// or (N, H, W, 3) for a batch, which is split into N frames that the
// pipeline paces one by one; pix holds N*H*W*3 bytes, packed RGB24. Emit(nil) with no
// shape emits a real 1280×720 black frame.
//
// Odd widths and heights are accepted; the encoder pads to even. Bad input
// (wrong length for the shape, zero or negative sizes, channels other than
// 3, a shape of another rank) returns an error wrapping ErrBadFrame that
// says what was expected; nothing is queued. After the track closes Emit
// returns ErrClosed. Emit copies pix: the caller keeps ownership.
//
// Who paces: with the default policy Emit never waits (a full queue drops
// its oldest frame, counted in Stats.Dropped). The engine sends frames at
// the track's declared Rate, skipping (and counting) frames a newer one
// overtook; with Rate 0 it measures the model's push interval and spreads
// batches over it. So a model may emit as fast as it produces; one that
// produces faster than it wants to be shown paces itself. Under
// Backpressure Emit waits for room until the track closes; EmitContext
// also gives up when ctx ends.
//
// Emit is for ports of NumPy-shaped models; Go code usually calls
// EmitImage. Safe for concurrent use.
func (t *VideoOut) Emit(pix []byte, shape ...int) error {
	return t.EmitContext(context.Background(), pix, shape...)
}

// EmitContext is Emit whose wait for room (a track declared with
// Backpressure) ends when ctx does, returning context.Cause(ctx); frames of
// a batch queued before then stay queued.
func (t *VideoOut) EmitContext(ctx context.Context, pix []byte, shape ...int) error {
	if t.q.isClosed() {
		return t.closedErr()
	}
	var n, h, w, c int
	switch {
	case pix == nil && len(shape) == 0:
		return t.emitBlack()
	case len(shape) == 3:
		n, h, w, c = 1, shape[0], shape[1], shape[2]
	case len(shape) == 4:
		n, h, w, c = shape[0], shape[1], shape[2], shape[3]
	default:
		t.q.rejected.Add(1)
		return fmt.Errorf("%w: %s: shape %s has %d dimensions; want (H, W, 3) or (N, H, W, 3)", ErrBadFrame, t.spec.Name, fmtShape(shape), len(shape))
	}
	if err := t.checkShape(len(pix), n, h, w, c, shape); err != nil {
		t.q.rejected.Add(1)
		return err
	}
	if n > 1 {
		t.q.grow(n)
	}
	now := time.Now()
	size := h * w * 3
	for i := 0; i < n; i++ {
		f := t.frame(size)
		copy(f.Pix, pix[i*size:(i+1)*size])
		f.Width, f.Height, f.Capture, f.Batch, f.BatchSize = w, h, now, i, n
		if err := t.queue(ctx, f); err != nil {
			return err
		}
	}
	return nil
}

// EmitImage sends one picture to the client: the Go-native Emit. img may
// be a sub-image with any stride (see Image); it is copied, so the caller
// keeps ownership and may reuse the buffer once EmitImage returns. Bad
// images return an error wrapping ErrBadFrame; pacing and back-pressure are
// as for Emit, the wait ending with ctx. Safe for concurrent use.
func (t *VideoOut) EmitImage(ctx context.Context, img Image) error {
	if t.q.isClosed() {
		return t.closedErr()
	}
	if err := img.Validate(); err != nil {
		t.q.rejected.Add(1)
		return fmt.Errorf("%s: %w", t.spec.Name, err)
	}
	f := t.frame(img.Width * img.Height * 3)
	img.copyPacked(f.Pix)
	f.Width, f.Height, f.Capture, f.Batch, f.BatchSize = img.Width, img.Height, time.Now(), 0, 1
	return t.queue(ctx, f)
}

// EmitShared is EmitImage without the copy: the track reads img's pixels
// in place until it is done with the frame (encoded, dropped for a newer
// one, or discarded at close) and then calls done.Release. Until then the
// caller must not write to img.Pix; done may be nil for pixels that never
// change (a model's precomputed pictures). A model that renders into a
// pool of its own buffers uses it to save the copy Emit makes. On the
// 2-core development VM that is 0.35 ms of CPU per 1280×720 frame, 6–7 %
// of a session's (bench BenchmarkCapacity: 5.05–5.08 against 5.37–5.45 ms
// a frame at 11 sessions). At 640×360 no saving was measurable: there the
// copy's destination stays in cache for the conversion, which instead
// reads the caller's memory.
//
// done.Release is called exactly once per call, from the pipeline's
// goroutine, Close's, or EmitShared's own: when EmitShared returns an
// error (a bad image, a closed track, ctx ended while waiting for room)
// it has already been called, and nothing was queued. An image whose rows
// are not packed (Stride other than 3×Width) is copied as EmitImage does,
// and done.Release is called before EmitShared returns. Pacing and
// back-pressure are as for EmitImage. In steady state it allocates
// nothing. Safe for concurrent use.
func (t *VideoOut) EmitShared(ctx context.Context, img Image, done Releaser) error {
	if img.RowStride() != 3*img.Width || t.q.isClosed() {
		err := t.EmitImage(ctx, img)
		if done != nil {
			done.Release()
		}
		return err
	}
	if err := img.Validate(); err != nil {
		t.q.rejected.Add(1)
		if done != nil {
			done.Release()
		}
		return fmt.Errorf("%s: %w", t.spec.Name, err)
	}
	f := t.frame(0)
	f.Pix, f.owner = img.Pix[:img.Width*img.Height*3], done
	f.Width, f.Height, f.Capture, f.Batch, f.BatchSize = img.Width, img.Height, time.Now(), 0, 1
	return t.queue(ctx, f) // a frame not queued is recycled: done released
}

// queue pushes f, turning a closed queue into the track's ErrClosed.
func (t *VideoOut) queue(ctx context.Context, f *VideoFrame) error {
	if err := t.q.pushCtx(ctx, f); err != nil {
		if errors.Is(err, ErrClosed) {
			return t.closedErr()
		}
		return err
	}
	return nil
}

func (t *VideoOut) checkShape(got, n, h, w, c int, shape []int) error {
	if n < 1 || h < 1 || w < 1 {
		return fmt.Errorf("%w: %s: shape %s has a zero or negative size; want N, H and W of at least 1", ErrBadFrame, t.spec.Name, fmtShape(shape))
	}
	if c != 3 {
		return fmt.Errorf("%w: %s: shape %s has %d channels; want 3 (RGB, uint8)", ErrBadFrame, t.spec.Name, fmtShape(shape), c)
	}
	if h > MaxDimension || w > MaxDimension || n > MaxBatch {
		return fmt.Errorf("%w: %s: shape %s is too large; want H and W at most %d and N at most %d", ErrBadFrame, t.spec.Name, fmtShape(shape), MaxDimension, MaxBatch)
	}
	if want := n * h * w * 3; got != want {
		return fmt.Errorf("%w: %s: pix has %d bytes; shape %s needs %d (N*H*W*3, packed RGB24)", ErrBadFrame, t.spec.Name, got, fmtShape(shape), want)
	}
	return nil
}

func (t *VideoOut) emitBlack() error {
	f := t.frame(BlackWidth * BlackHeight * 3)
	clear(f.Pix)
	f.Width, f.Height, f.Capture, f.Batch, f.BatchSize = BlackWidth, BlackHeight, time.Now(), 0, 1
	if err := t.q.push(f); err != nil {
		return t.closedErr()
	}
	return nil
}

// EmitDevice sends a frame that lives in GPU memory. The track takes
// ownership of f (see DeviceFrame). It fails with an error wrapping the
// engine's reason (gpu.ErrNoCUDA in a build without CUDA, ErrNoDevicePath
// by default) when the session has no device path, and with ErrBadFrame for
// a nil frame or a non-positive size or batch.
func (t *VideoOut) EmitDevice(f DeviceFrame) error {
	if t.q.isClosed() {
		return t.closedErr()
	}
	t.devMu.Lock()
	reason := t.devErr
	t.devMu.Unlock()
	if reason != nil {
		t.q.rejected.Add(1)
		return fmt.Errorf("tracks: %s: cannot emit a device frame: %w", t.spec.Name, reason)
	}
	if f == nil {
		t.q.rejected.Add(1)
		return fmt.Errorf("%w: %s: EmitDevice(nil); use Emit(nil) for a black frame", ErrBadFrame, t.spec.Name)
	}
	w, h := f.Size()
	n := f.Frames()
	if w < 1 || h < 1 || n < 1 || w > MaxDimension || h > MaxDimension || n > MaxBatch {
		t.q.rejected.Add(1)
		return fmt.Errorf("%w: %s: device frame is %dx%d with %d frames; want sizes 1..%d and 1..%d frames", ErrBadFrame, t.spec.Name, w, h, n, MaxDimension, MaxBatch)
	}
	vf := t.frame(0)
	vf.Pix = nil
	vf.Device, vf.Width, vf.Height, vf.Capture, vf.Batch, vf.BatchSize = f, w, h, time.Now(), 0, n
	if err := t.q.push(vf); err != nil {
		return t.closedErr()
	}
	return nil
}

// Next returns the oldest queued frame, waiting until one is queued, ctx
// ends (returning context.Cause(ctx)) or the track closes (ErrClosed). The
// caller owns the frame and must Release it.
func (t *VideoOut) Next(ctx context.Context) (*VideoFrame, error) {
	f, err := t.q.next(ctx)
	if err != nil {
		return nil, err
	}
	f.rel = t
	return f, nil
}

// TryNext returns the oldest queued frame without waiting, or false if the
// queue is empty.
func (t *VideoOut) TryNext() (*VideoFrame, bool) {
	f, ok := t.q.tryNext()
	if ok {
		f.rel = t
	}
	return f, ok
}

// Close closes the track: queued frames are discarded (device frames
// released), waiting Emit and Next calls return ErrClosed, and so do later
// ones. It is idempotent and always returns nil.
func (t *VideoOut) Close() error {
	t.q.close()
	return nil
}

// frame returns a pooled frame whose Pix has length size.
func (t *VideoOut) frame(size int) *VideoFrame {
	f := t.q.get()
	if f == nil {
		f = &VideoFrame{}
	}
	if cap(f.buf) < size {
		f.buf = make([]byte, size)
	}
	f.Pix = f.buf[:size]
	return f
}

func (t *VideoOut) releaseVideo(f *VideoFrame) { t.recycle(f) }

// recycle releases a device frame or gives shared pixels back to their
// owner (EmitShared), and returns f to the pool.
func (t *VideoOut) recycle(f *VideoFrame) {
	if r, ok := f.Device.(Releaser); ok {
		r.Release()
	}
	if f.owner != nil {
		f.owner.Release()
	}
	*f = VideoFrame{buf: f.buf}
	t.q.put(f)
}

func (t *VideoOut) closedErr() error {
	return fmt.Errorf("%w: %s", ErrClosed, t.spec.Name)
}
