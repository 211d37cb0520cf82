package tracks

import (
	"context"
	"fmt"
	"math"
	"time"
)

// Audio defaults and limits.
const (
	// DefaultSampleRate is the rate of an audio track declared with rate 0,
	// and the rate of every input audio chunk.
	DefaultSampleRate = 48000
	// MaxChannels is the largest C of a (C, N) emit.
	MaxChannels = 8
	// MaxAudioSamples bounds C*N of one emit.
	MaxAudioSamples = 1 << 24
)

// AudioOut is a model → client audio track of one session. The model sends
// PCM with Emit (int16) or EmitFloat32; the track normalises it to
// interleaved int16 with the track's channel count and rate (48 kHz when the
// declared rate is 0) and queues it for the pipeline, which mixes to mono,
// resamples to 48 kHz and cuts 20 ms Opus frames.
//
// Queueing, copying, policy and concurrency are as for VideoOut.
type AudioOut struct {
	spec Spec
	rate int
	q    outQueue[AudioFrame]
}

func newAudioOut(s Spec) *AudioOut {
	t := &AudioOut{spec: s, rate: int(s.Rate)}
	if t.rate == 0 {
		t.rate = DefaultSampleRate
	}
	t.q.init(s.QueueSize, s.Policy, func(f *AudioFrame, _ bool) { t.recycle(f) })
	return t
}

// Name returns the track's name.
func (t *AudioOut) Name() string { return t.spec.Name }

// Spec returns the track's resolved declaration.
func (t *AudioOut) Spec() Spec { return t.spec }

// Rate returns the declared sample rate; 0 means automatic (48000 Hz).
func (t *AudioOut) Rate() float64 { return t.spec.Rate }

// SampleRate returns the rate emitted chunks carry: the declared rate, or
// 48000 when it is 0.
func (t *AudioOut) SampleRate() int { return t.rate }

// Stats returns a snapshot of the track's counters.
func (t *AudioOut) Stats() Stats { return t.q.stats() }

// Emit sends int16 PCM at the track's sample rate. With no shape, or shape
// (N), pcm is mono; with shape (C, N) it is planar, channel after channel
// (a NumPy (C, N) array in C order). Emit(nil) with no shape sends 20 ms of
// silence. Bad shapes or lengths return an error wrapping ErrBadFrame.
// Emit copies pcm.
func (t *AudioOut) Emit(pcm []int16, shape ...int) error {
	if t.q.isClosed() {
		return t.closedErr()
	}
	if pcm == nil && len(shape) == 0 {
		return t.emitSilence()
	}
	c, n, err := t.audioShape(len(pcm), shape)
	if err != nil {
		t.q.rejected.Add(1)
		return err
	}
	f := t.frame(c * n)
	if c == 1 {
		copy(f.PCM, pcm)
	} else {
		for ch := 0; ch < c; ch++ {
			plane := pcm[ch*n : (ch+1)*n]
			for i, v := range plane {
				f.PCM[i*c+ch] = v
			}
		}
	}
	return t.push(f, c)
}

// EmitFloat32 sends float PCM in [-1, 1] at the track's sample rate, shaped
// as for Emit. Samples are scaled to int16; values outside [-1, 1] are
// clipped and NaN becomes 0.
func (t *AudioOut) EmitFloat32(pcm []float32, shape ...int) error {
	if t.q.isClosed() {
		return t.closedErr()
	}
	if pcm == nil && len(shape) == 0 {
		return t.emitSilence()
	}
	c, n, err := t.audioShape(len(pcm), shape)
	if err != nil {
		t.q.rejected.Add(1)
		return err
	}
	f := t.frame(c * n)
	for ch := 0; ch < c; ch++ {
		plane := pcm[ch*n : (ch+1)*n]
		for i, v := range plane {
			f.PCM[i*c+ch] = floatToInt16(v)
		}
	}
	return t.push(f, c)
}

func floatToInt16(v float32) int16 {
	switch {
	case v != v: // NaN
		return 0
	case v >= 1:
		return math.MaxInt16
	case v <= -1:
		return -math.MaxInt16
	}
	return int16(math.Round(float64(v) * math.MaxInt16))
}

func (t *AudioOut) audioShape(got int, shape []int) (c, n int, err error) {
	switch len(shape) {
	case 0:
		c, n = 1, got
	case 1:
		c, n = 1, shape[0]
	case 2:
		c, n = shape[0], shape[1]
	default:
		return 0, 0, fmt.Errorf("%w: %s: audio shape %s has %d dimensions; want (N,) for mono or (C, N)", ErrBadFrame, t.spec.Name, fmtShape(shape), len(shape))
	}
	if n < 1 {
		return 0, 0, fmt.Errorf("%w: %s: audio shape %s has no samples; want N >= 1 (pass nil for 20 ms of silence)", ErrBadFrame, t.spec.Name, fmtShape([]int{c, n}))
	}
	if c < 1 || c > MaxChannels {
		return 0, 0, fmt.Errorf("%w: %s: audio has %d channels; want 1 to %d", ErrBadFrame, t.spec.Name, c, MaxChannels)
	}
	if n > MaxAudioSamples/c {
		return 0, 0, fmt.Errorf("%w: %s: audio has %d×%d samples; want at most %d in one emit", ErrBadFrame, t.spec.Name, c, n, MaxAudioSamples)
	}
	if got != c*n {
		return 0, 0, fmt.Errorf("%w: %s: pcm has %d samples; shape (%d, %d) needs %d (C*N)", ErrBadFrame, t.spec.Name, got, c, n, c*n)
	}
	return c, n, nil
}

func (t *AudioOut) emitSilence() error {
	f := t.frame(t.rate / 50)
	clear(f.PCM)
	return t.push(f, 1)
}

func (t *AudioOut) push(f *AudioFrame, channels int) error {
	f.Channels, f.SampleRate, f.Capture = channels, t.rate, time.Now()
	if err := t.q.push(f); err != nil {
		return t.closedErr()
	}
	return nil
}

// Next returns the oldest queued chunk, waiting until one is queued, ctx
// ends (context.Cause(ctx)) or the track closes (ErrClosed). The caller must
// Release it.
func (t *AudioOut) Next(ctx context.Context) (*AudioFrame, error) {
	f, err := t.q.next(ctx)
	if err != nil {
		return nil, err
	}
	f.rel = t
	return f, nil
}

// TryNext returns the oldest queued chunk without waiting, or false.
func (t *AudioOut) TryNext() (*AudioFrame, bool) {
	f, ok := t.q.tryNext()
	if ok {
		f.rel = t
	}
	return f, ok
}

// Close closes the track (see VideoOut.Close). It is idempotent.
func (t *AudioOut) Close() error {
	t.q.close()
	return nil
}

func (t *AudioOut) frame(size int) *AudioFrame {
	f := t.q.get()
	if f == nil {
		f = &AudioFrame{}
	}
	if cap(f.buf) < size {
		f.buf = make([]int16, size)
	}
	f.PCM = f.buf[:size]
	return f
}

func (t *AudioOut) releaseAudio(f *AudioFrame) { t.recycle(f) }

func (t *AudioOut) recycle(f *AudioFrame) {
	*f = AudioFrame{buf: f.buf}
	t.q.put(f)
}

func (t *AudioOut) closedErr() error {
	return fmt.Errorf("%w: %s", ErrClosed, t.spec.Name)
}
