package tracks

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"
)

// DefaultMediaQueueSize is the number of inbound media events a MediaQueue
// holds for a model's OnMedia handler before it drops the oldest.
const DefaultMediaQueueSize = 16

// TrackData is one input track's data in a MediaBundle.
type TrackData struct {
	// Name is the input track's name.
	Name string
	// Kind is KindVideoIn or KindAudioIn.
	Kind Kind
	// Video is the picture ((H, W, 3) RGB24) for a video input, else nil.
	Video *VideoFrame
	// Audio is the chunk (mono 48 kHz int16) for an audio input, else nil.
	Audio *AudioFrame
}

// MediaBundle is one inbound media event handed to a model's OnMedia
// handler: an entry for each input track that had data in the event (with
// the Framewire transport, exactly one: every delivered picture or chunk is
// its own event). Its data is borrowed: valid until Release, which the
// engine calls when the handler returns, so a handler that keeps pixels must
// copy them.
type MediaBundle struct {
	q     *MediaQueue
	data  TrackData
	video VideoFrame
	audio AudioFrame
	drops *atomic.Uint64 // the source track's drop counter
}

// Track returns the named input's data in this event, or nil if that track
// had none.
func (b *MediaBundle) Track(name string) *TrackData {
	if b == nil || b.data.Name != name {
		return nil
	}
	return &b.data
}

// Names returns the names of the tracks that have data in this event.
func (b *MediaBundle) Names() []string {
	if b == nil || b.data.Name == "" {
		return nil
	}
	return []string{b.data.Name}
}

// Release returns the bundle to its queue; after it the bundle and its data
// must not be used. It is a no-op on nil and on a second call.
func (b *MediaBundle) Release() {
	if b == nil || b.q == nil {
		return
	}
	q := b.q
	b.q = nil
	q.recycle(b)
}

// MediaQueue carries every inbound picture and chunk of a session's input
// tracks, in arrival order, to one consumer (the engine's OnMedia
// dispatcher). Delivery never waits for the model: when the queue is full
// the oldest event is dropped and counted on its track (Stats.Dropped).
// Steady-state pushes allocate nothing.
//
// Build one with NewMediaQueue, attach it with Set.Subscribe, consume it with
// Next, and Close it when the session ends. Safe for concurrent use.
type MediaQueue struct {
	q outQueue[MediaBundle]
}

// NewMediaQueue returns a queue holding up to size events (0 means
// DefaultMediaQueueSize).
func NewMediaQueue(size int) *MediaQueue {
	if size <= 0 {
		size = DefaultMediaQueueSize
	}
	m := &MediaQueue{}
	m.q.init(size, DropOldest, func(b *MediaBundle, dropped bool) {
		if dropped && b.drops != nil {
			b.drops.Add(1)
		}
		m.recycle(b)
	})
	return m
}

func (m *MediaQueue) bundle() *MediaBundle {
	b := m.q.get()
	if b == nil {
		b = &MediaBundle{}
	}
	b.q = m
	return b
}

func (m *MediaQueue) recycle(b *MediaBundle) {
	pix, pcm := b.video.buf, b.audio.buf
	*b = MediaBundle{}
	b.video.buf, b.audio.buf = pix, pcm
	m.q.put(b)
}

func (m *MediaQueue) pushVideo(t *VideoIn, rgb []byte, w, h int, at time.Time) {
	b := m.bundle()
	if cap(b.video.buf) < len(rgb) {
		b.video.buf = make([]byte, len(rgb))
	}
	b.video.Pix = b.video.buf[:len(rgb)]
	copy(b.video.Pix, rgb)
	b.video.Width, b.video.Height, b.video.Capture, b.video.BatchSize = w, h, at, 1
	b.data = TrackData{Name: t.spec.Name, Kind: KindVideoIn, Video: &b.video}
	b.drops = &t.mediaDropped
	_ = m.q.push(b) // after Close the bundle is recycled: nothing to do
}

func (m *MediaQueue) pushAudio(t *AudioIn, pcm []int16, at time.Time) {
	b := m.bundle()
	if cap(b.audio.buf) < len(pcm) {
		b.audio.buf = make([]int16, len(pcm))
	}
	b.audio.PCM = b.audio.buf[:len(pcm)]
	copy(b.audio.PCM, pcm)
	b.audio.Channels, b.audio.SampleRate, b.audio.Capture = 1, DefaultSampleRate, at
	b.data = TrackData{Name: t.spec.Name, Kind: KindAudioIn, Audio: &b.audio}
	b.drops = &t.mediaDropped
	_ = m.q.push(b)
}

// Next returns the oldest event, waiting until one arrives, ctx ends
// (context.Cause(ctx)) or the queue is closed (ErrClosed). The caller must
// Release the bundle.
func (m *MediaQueue) Next(ctx context.Context) (*MediaBundle, error) {
	b, err := m.q.next(ctx)
	if err != nil {
		if err == ErrClosed { //nolint:errorlint // our own unwrapped sentinel
			return nil, fmt.Errorf("%w: media queue", ErrClosed)
		}
		return nil, err
	}
	return b, nil
}

// Stats returns the queue's counters: Emitted counts events queued, Dropped
// events discarded, QueueDepth/QueueCap its fill.
func (m *MediaQueue) Stats() Stats { return m.q.stats() }

// Close discards queued events and makes Next return ErrClosed. It is
// idempotent.
func (m *MediaQueue) Close() error {
	m.q.close()
	return nil
}
