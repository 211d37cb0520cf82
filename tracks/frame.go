package tracks

import "time"

// DeviceFrame is a picture (or a batch of pictures) that lives in GPU memory.
// Package gpu implements it; the engine hands it to a device encoder. A
// DeviceFrame passed to VideoOut.EmitDevice belongs to the track from then
// on: if it also implements Releaser, Release is called once when the frame
// is dropped, discarded at close, or released by the pipeline.
type DeviceFrame interface {
	// Size returns the picture's width and height in pixels.
	Size() (w, h int)
	// Frames returns the batch size, 1 for a single picture.
	Frames() int
}

// Releaser is implemented by values that hold a resource to give back once
// the track is done with them (for example a pooled device buffer).
type Releaser interface{ Release() }

// VideoFrame is one RGB picture crossing a track: from VideoOut.Emit to the
// media pipeline (Next), or from the transport to the model (Latest, Borrow,
// MediaBundle).
//
// Pix holds packed RGB24, Width*Height*3 bytes, rows top to bottom, no
// padding; Width and Height are the real size (odd sizes are allowed: the
// encoder pads to even). For a device frame Pix is nil and Device is set.
//
// A frame obtained from Next or Borrow is borrowed: its memory is reused
// after Release, so the holder must not touch it (or Pix) afterwards. A frame
// returned by Latest is a fresh copy and Release is a no-op on it.
type VideoFrame struct {
	Pix           []byte
	Width, Height int
	// Device is non-nil for a device (CUDA) frame; Pix is then nil.
	Device DeviceFrame
	// Capture is when Emit accepted the frame (outputs), or the arrival
	// time the transport gave to Deliver (inputs).
	Capture time.Time
	// Batch is the frame's index within the emitted (N,H,W,3) batch and
	// BatchSize is N (1 for a single frame). The pipeline paces a batch's
	// frames one by one.
	Batch, BatchSize int

	rel   videoReleaser
	in    *inBuf[byte]
	buf   []byte   // pooled backing store of Pix (outputs)
	owner Releaser // owner of Pix when the caller's (EmitShared), or nil
}

type videoReleaser interface{ releaseVideo(*VideoFrame) }

// Release gives the frame's memory back to its track. It is a no-op on a nil
// frame, on a frame from Latest, and on a second call; after it the frame and
// its Pix must not be used. Release may be called from any goroutine.
func (f *VideoFrame) Release() {
	if f == nil || f.rel == nil {
		return
	}
	r := f.rel
	f.rel = nil
	r.releaseVideo(f)
}

// AudioFrame is one chunk of PCM crossing a track. PCM is interleaved int16
// (Channels samples per sampling instant) at SampleRate Hz. Output chunks
// keep the model's channel count and rate; the pipeline mixes to mono,
// resamples to 48 kHz and re-chunks into 20 ms Opus frames. Input chunks are
// mono 48 kHz.
//
// Ownership follows VideoFrame: frames from Next or Borrow must be released
// and not used afterwards; frames from Latest are copies.
type AudioFrame struct {
	PCM        []int16
	Channels   int
	SampleRate int
	Capture    time.Time

	rel audioReleaser
	in  *inBuf[int16]
	buf []int16
}

type audioReleaser interface{ releaseAudio(*AudioFrame) }

// Samples returns the number of sampling instants in the chunk
// (len(PCM)/Channels).
func (f *AudioFrame) Samples() int {
	if f == nil || f.Channels <= 0 {
		return 0
	}
	return len(f.PCM) / f.Channels
}

// Duration returns the chunk's length in time.
func (f *AudioFrame) Duration() time.Duration {
	if f == nil || f.SampleRate <= 0 {
		return 0
	}
	return time.Duration(f.Samples()) * time.Second / time.Duration(f.SampleRate)
}

// Release gives the chunk's memory back to its track; see VideoFrame.Release.
func (f *AudioFrame) Release() {
	if f == nil || f.rel == nil {
		return
	}
	r := f.rel
	f.rel = nil
	r.releaseAudio(f)
}

// Stats is a snapshot of a track's counters. Fields that do not apply to a
// track's kind stay zero.
type Stats struct {
	// Emitted counts frames (video; a batch of N counts N) or chunks
	// (audio) accepted by Emit.
	Emitted uint64
	// Dropped counts frames or chunks discarded because the queue was full
	// (outputs, DropOldest), or OnMedia events discarded because the model's
	// handler fell behind (inputs).
	Dropped uint64
	// Rejected counts Emit or Deliver calls refused for bad data.
	Rejected uint64
	// Delivered counts input frames or chunks received from the transport.
	Delivered uint64
	// QueueDepth and QueueCap describe an output's queue right now.
	QueueDepth, QueueCap int
	// Blocked is how many Emit calls wait for room right now (outputs
	// declared with Backpressure).
	Blocked int
}

// AddCounters returns a with b's counters (Emitted, Dropped, Rejected,
// Delivered) added: two sessions' counts of one track folded into one.
// The present levels (QueueDepth, QueueCap, Blocked) stay a's.
func (a Stats) AddCounters(b Stats) Stats {
	a.Emitted += b.Emitted
	a.Dropped += b.Dropped
	a.Rejected += b.Rejected
	a.Delivered += b.Delivered
	return a
}
