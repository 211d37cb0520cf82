package tracks

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// inBuf is one reference-counted copy of the latest input data.
type inBuf[E byte | int16] struct {
	data []E
	w, h int
	at   time.Time
	refs int // the store's "latest" slot holds one; each borrower one
}

// latestStore keeps the most recent input and recycles buffers: Deliver
// writes into a spare buffer and swaps it in, so readers never see a torn
// frame and steady-state delivery allocates nothing.
type latestStore[E byte | int16] struct {
	mu     sync.Mutex
	cur    *inBuf[E]
	spare  []*inBuf[E]
	closed bool
}

func (s *latestStore[E]) init() { s.spare = make([]*inBuf[E], 0, 4) }

func (s *latestStore[E]) store(src []E, w, h int, at time.Time) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	var b *inBuf[E]
	if k := len(s.spare); k > 0 {
		b = s.spare[k-1]
		s.spare[k-1] = nil
		s.spare = s.spare[:k-1]
	}
	s.mu.Unlock()
	if b == nil {
		b = &inBuf[E]{}
	}
	if cap(b.data) < len(src) {
		b.data = make([]E, len(src))
	}
	b.data = b.data[:len(src)]
	copy(b.data, src)
	b.w, b.h, b.at, b.refs = w, h, at, 1
	s.mu.Lock()
	old := s.cur
	s.cur = b
	if old != nil {
		s.unrefLocked(old)
	}
	s.mu.Unlock()
	return nil
}

func (s *latestStore[E]) unrefLocked(b *inBuf[E]) {
	b.refs--
	if b.refs == 0 && b != s.cur && len(s.spare) < cap(s.spare) {
		s.spare = append(s.spare, b)
	}
}

// acquire returns the latest buffer with one more reference, or nil.
func (s *latestStore[E]) acquire() *inBuf[E] {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.cur
	if b != nil {
		b.refs++
	}
	return b
}

func (s *latestStore[E]) release(b *inBuf[E]) {
	s.mu.Lock()
	s.unrefLocked(b)
	s.mu.Unlock()
}

func (s *latestStore[E]) close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
}

// VideoIn is a client → model video track of one session. The transport
// decodes each inbound picture to RGB24 and calls Deliver; the model reads the
// freshest picture with Latest (a copy), LatestInto (a copy into the
// caller's buffer) or Borrow (zero-copy, released explicitly), skipping any
// pictures that arrived in between. None of them blocks. If the model
// handles OnMedia, every delivered picture is also queued for it (see
// MediaQueue).
//
// All methods are safe for concurrent use. The zero value is not usable;
// tracks are built by NewSet.
type VideoIn struct {
	spec  Spec
	store latestStore[byte]
	sub   atomic.Pointer[MediaQueue]

	hmu     sync.Mutex
	handles []*VideoFrame

	delivered, rejected, mediaDropped atomic.Uint64
}

func newVideoIn(s Spec) *VideoIn {
	t := &VideoIn{spec: s, handles: make([]*VideoFrame, 0, 4)}
	t.store.init()
	return t
}

// Name returns the track's name.
func (t *VideoIn) Name() string { return t.spec.Name }

// Spec returns the track's resolved declaration.
func (t *VideoIn) Spec() Spec { return t.spec }

// Rate returns the declared rate (informational for inputs; 0 = automatic).
func (t *VideoIn) Rate() float64 { return t.spec.Rate }

// Stats returns a snapshot of the track's counters; Dropped counts OnMedia
// events discarded because the handler fell behind.
func (t *VideoIn) Stats() Stats {
	return Stats{Delivered: t.delivered.Load(), Rejected: t.rejected.Load(), Dropped: t.mediaDropped.Load()}
}

// Deliver stores a decoded inbound picture: rgb is packed RGB24 of w×h
// pixels (w*h*3 bytes), at its arrival time. Deliver copies rgb (the caller
// keeps it) and allocates nothing in steady state. It returns an error
// wrapping ErrBadFrame for a size that does not match, and ErrClosed after
// the session ended. It is called by the transport, one goroutine per track.
func (t *VideoIn) Deliver(rgb []byte, w, h int, at time.Time) error {
	if w < 1 || h < 1 || w > MaxDimension || h > MaxDimension {
		t.rejected.Add(1)
		return fmt.Errorf("%w: %s: delivered picture is %dx%d; want 1..%d on each side", ErrBadFrame, t.spec.Name, w, h, MaxDimension)
	}
	if len(rgb) != w*h*3 {
		t.rejected.Add(1)
		return fmt.Errorf("%w: %s: delivered %d bytes for %dx%d; want %d (w*h*3, packed RGB24)", ErrBadFrame, t.spec.Name, len(rgb), w, h, w*h*3)
	}
	if err := t.store.store(rgb, w, h, at); err != nil {
		return fmt.Errorf("%w: %s", err, t.spec.Name)
	}
	t.delivered.Add(1)
	if q := t.sub.Load(); q != nil {
		q.pushVideo(t, rgb, w, h, at)
	}
	return nil
}

// Latest returns a copy of the most recent picture, (H, W, 3) RGB24, or nil
// if none has arrived yet. It never blocks on the transport. The copy
// belongs to the caller (Release is a no-op on it); it allocates, so a loop
// that wants no garbage uses LatestInto or Borrow.
func (t *VideoIn) Latest() *VideoFrame {
	f := &VideoFrame{}
	if !t.LatestInto(f) {
		return nil
	}
	return f
}

// LatestInto copies the most recent picture into dst, reusing dst.Pix when
// it is large enough, and reports whether there was one. dst must be a
// caller-owned frame (for example a zero VideoFrame kept across calls).
func (t *VideoIn) LatestInto(dst *VideoFrame) bool {
	b := t.store.acquire()
	if b == nil {
		return false
	}
	if cap(dst.Pix) < len(b.data) {
		dst.Pix = make([]byte, len(b.data))
	}
	dst.Pix = dst.Pix[:len(b.data)]
	copy(dst.Pix, b.data)
	dst.Width, dst.Height, dst.Capture, dst.Batch, dst.BatchSize, dst.Device = b.w, b.h, b.at, 0, 1, nil
	t.store.release(b)
	return true
}

// Borrow returns the most recent picture without copying, or nil if none has
// arrived yet. The picture stays valid, and unchanged, until the caller
// calls Release on it; later deliveries go to other buffers meanwhile. The
// caller must not modify Pix and must call Release exactly once.
func (t *VideoIn) Borrow() *VideoFrame {
	b := t.store.acquire()
	if b == nil {
		return nil
	}
	t.hmu.Lock()
	var f *VideoFrame
	if k := len(t.handles); k > 0 {
		f = t.handles[k-1]
		t.handles = t.handles[:k-1]
	}
	t.hmu.Unlock()
	if f == nil {
		f = &VideoFrame{}
	}
	f.Pix, f.Width, f.Height, f.Capture, f.Batch, f.BatchSize = b.data, b.w, b.h, b.at, 0, 1
	f.rel, f.in = t, b
	return f
}

func (t *VideoIn) releaseVideo(f *VideoFrame) {
	b := f.in
	*f = VideoFrame{}
	if b != nil {
		t.store.release(b)
	}
	t.hmu.Lock()
	if len(t.handles) < cap(t.handles) {
		t.handles = append(t.handles, f)
	}
	t.hmu.Unlock()
}

// Close makes later Deliver calls return ErrClosed. Latest keeps returning
// the last picture. It is idempotent.
func (t *VideoIn) Close() error {
	t.store.close()
	return nil
}

// AudioIn is a client → model audio track of one session: the transport
// decodes Opus and calls Deliver with mono 48 kHz int16 PCM; the model reads
// the most recent chunk with Latest, LatestInto or Borrow, as for VideoIn.
type AudioIn struct {
	spec  Spec
	store latestStore[int16]
	sub   atomic.Pointer[MediaQueue]

	hmu     sync.Mutex
	handles []*AudioFrame

	delivered, rejected, mediaDropped atomic.Uint64
}

func newAudioIn(s Spec) *AudioIn {
	t := &AudioIn{spec: s, handles: make([]*AudioFrame, 0, 4)}
	t.store.init()
	return t
}

// Name returns the track's name.
func (t *AudioIn) Name() string { return t.spec.Name }

// Spec returns the track's resolved declaration.
func (t *AudioIn) Spec() Spec { return t.spec }

// Rate returns the declared rate (informational: input chunks are always
// delivered at 48000 Hz).
func (t *AudioIn) Rate() float64 { return t.spec.Rate }

// Stats returns a snapshot of the track's counters.
func (t *AudioIn) Stats() Stats {
	return Stats{Delivered: t.delivered.Load(), Rejected: t.rejected.Load(), Dropped: t.mediaDropped.Load()}
}

// Deliver stores a decoded chunk of mono 48 kHz PCM. It copies pcm and
// allocates nothing in steady state; an empty chunk is an error wrapping
// ErrBadFrame; after the session ended it returns ErrClosed.
func (t *AudioIn) Deliver(pcm []int16, at time.Time) error {
	if len(pcm) == 0 || len(pcm) > MaxAudioSamples {
		t.rejected.Add(1)
		return fmt.Errorf("%w: %s: delivered %d samples; want 1..%d", ErrBadFrame, t.spec.Name, len(pcm), MaxAudioSamples)
	}
	if err := t.store.store(pcm, 0, 0, at); err != nil {
		return fmt.Errorf("%w: %s", err, t.spec.Name)
	}
	t.delivered.Add(1)
	if q := t.sub.Load(); q != nil {
		q.pushAudio(t, pcm, at)
	}
	return nil
}

// Latest returns a copy of the most recent chunk (mono, 48 kHz), or nil if
// none has arrived yet. It never blocks.
func (t *AudioIn) Latest() *AudioFrame {
	f := &AudioFrame{}
	if !t.LatestInto(f) {
		return nil
	}
	return f
}

// LatestInto copies the most recent chunk into dst (a caller-owned frame),
// reusing dst.PCM when large enough, and reports whether there was one.
func (t *AudioIn) LatestInto(dst *AudioFrame) bool {
	b := t.store.acquire()
	if b == nil {
		return false
	}
	if cap(dst.PCM) < len(b.data) {
		dst.PCM = make([]int16, len(b.data))
	}
	dst.PCM = dst.PCM[:len(b.data)]
	copy(dst.PCM, b.data)
	dst.Channels, dst.SampleRate, dst.Capture = 1, DefaultSampleRate, b.at
	t.store.release(b)
	return true
}

// Borrow returns the most recent chunk without copying, or nil; see
// VideoIn.Borrow.
func (t *AudioIn) Borrow() *AudioFrame {
	b := t.store.acquire()
	if b == nil {
		return nil
	}
	t.hmu.Lock()
	var f *AudioFrame
	if k := len(t.handles); k > 0 {
		f = t.handles[k-1]
		t.handles = t.handles[:k-1]
	}
	t.hmu.Unlock()
	if f == nil {
		f = &AudioFrame{}
	}
	f.PCM, f.Channels, f.SampleRate, f.Capture = b.data, 1, DefaultSampleRate, b.at
	f.rel, f.in = t, b
	return f
}

func (t *AudioIn) releaseAudio(f *AudioFrame) {
	b := f.in
	*f = AudioFrame{}
	if b != nil {
		t.store.release(b)
	}
	t.hmu.Lock()
	if len(t.handles) < cap(t.handles) {
		t.handles = append(t.handles, f)
	}
	t.hmu.Unlock()
}

// Close makes later Deliver calls return ErrClosed. It is idempotent.
func (t *AudioIn) Close() error {
	t.store.close()
	return nil
}
