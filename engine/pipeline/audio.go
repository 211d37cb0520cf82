package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/framewire/framewire/encode"
	"github.com/framewire/framewire/tracks"
)

// AudioSource is an output audio track as the pipeline consumes it;
// *tracks.AudioOut implements it. Next blocks until a chunk is queued or
// ctx ends; the pipeline releases every chunk it gets.
type AudioSource interface {
	Name() string
	Next(ctx context.Context) (*tracks.AudioFrame, error)
}

// AudioConfig configures an audio pipeline. The zero value works.
type AudioConfig struct {
	// Bitrate is the Opus target in bit/s. Default 48 kbit/s.
	Bitrate int
	// Playout is how long audio waits before it starts to leave, so that a
	// model emitting chunks in real time, with some jitter, never runs the
	// stream dry between chunks. Default 40 ms. It is also the latency
	// target: audio that starts older than Playout (queued before sending
	// began), or that stays more than 20 ms later than Playout for half a
	// second (sending fell behind: a stall, a loaded CPU), loses its oldest
	// samples until it is back at Playout (counted as Trimmed).
	Playout time.Duration
	// MaxBuffer bounds the queued audio; a model emitting faster than real
	// time loses its oldest samples beyond it (counted). Default 1 s.
	MaxBuffer time.Duration
	// Clock paces the 20 ms frames. Default: the system clock.
	Clock  Clock
	Logger *slog.Logger
	// Tap, when set, gets each 20 ms of the model's audio as it is played
	// out (48 kHz mono; generated silence is not passed): the session
	// recorder. It runs on the pipeline's goroutine and must not block;
	// pcm is valid only during the call.
	Tap AudioTap
}

// AudioTap receives the PCM an audio pipeline plays out (package
// record's AudioTap implements it).
type AudioTap interface {
	PCM(pcm []int16)
}

// AudioStats is a snapshot of one audio pipeline.
type AudioStats struct {
	Track string
	// From the track's queue (zero when the source does not count).
	Emitted, Dropped uint64
	QueueDepth       int
	// Frames counts 20 ms Opus frames sent; Silent how many of them were
	// generated silence (gaps); Underruns how often the model's audio ran
	// out mid-stream; Overflow samples dropped beyond MaxBuffer; Trimmed
	// samples (48 kHz) dropped, oldest first, to bring the latency back to
	// the Playout target.
	Frames, Silent, Underruns, Overflow, Trimmed uint64
	// Buffered is the audio queued right now.
	Buffered time.Duration
	// Encode time and emit→wire latency over the last 256 frames of
	// model audio.
	EncodeP50, EncodeP99   time.Duration
	LatencyP50, LatencyP99 time.Duration
	Bitrate                int
	SinkErrors             uint64
}

// Audio is one output audio track's pipeline. Create it with NewAudio,
// drive it with Run; Stats is safe for concurrent use.
type Audio struct {
	src  AudioSource
	sink Sink
	cfg  AudioConfig
	log  *slog.Logger

	running                                                  atomic.Bool
	frames, silent, underruns, overflow, trimmed, sinkErrors atomic.Uint64
	win                                                      window

	mu  sync.Mutex
	buf pcmRing // 48 kHz mono, guarded by mu
}

// NewAudio builds an audio pipeline for src writing to sink. It opens
// nothing until Run.
func NewAudio(src AudioSource, sink Sink, cfg AudioConfig) (*Audio, error) {
	if src == nil || sink == nil {
		return nil, fmt.Errorf("pipeline: NewAudio needs a source and a sink (got %v, %v)", src, sink)
	}
	if cfg.Bitrate <= 0 {
		cfg.Bitrate = 48_000
	}
	if cfg.Playout <= 0 {
		cfg.Playout = 40 * time.Millisecond
	}
	if cfg.MaxBuffer <= 0 {
		cfg.MaxBuffer = time.Second
	}
	if cfg.MaxBuffer < cfg.Playout+frameDuration {
		return nil, fmt.Errorf("pipeline: audio MaxBuffer %v must exceed Playout %v by at least 20 ms", cfg.MaxBuffer, cfg.Playout)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	a := &Audio{src: src, sink: sink, cfg: cfg, log: cfg.Logger.With("component", "pipeline", "track", src.Name())}
	a.buf.init(int(cfg.MaxBuffer.Seconds()*encode.AudioRate) + encode.AudioFrameSamples)
	return a, nil
}

const frameDuration = 20 * time.Millisecond

// Stats returns a snapshot. Safe for concurrent use.
func (a *Audio) Stats() AudioStats {
	s := AudioStats{
		Track: a.src.Name(), Frames: a.frames.Load(), Silent: a.silent.Load(),
		Underruns: a.underruns.Load(), Overflow: a.overflow.Load(), Trimmed: a.trimmed.Load(),
		SinkErrors: a.sinkErrors.Load(),
	}
	if ts, ok := a.src.(trackStats); ok {
		t := ts.Stats()
		s.Emitted, s.Dropped, s.QueueDepth = t.Emitted, t.Dropped, t.QueueDepth
	}
	a.mu.Lock()
	s.Buffered = time.Duration(a.buf.len()) * time.Second / encode.AudioRate
	a.mu.Unlock()
	s.EncodeP50, s.EncodeP99, s.LatencyP50, s.LatencyP99, s.Bitrate = a.win.summary()
	return s
}

// Run starts the 20 ms frame clock on the calling goroutine and a reader
// of the source on a goroutine of its own, and returns when ctx ends
// (context.Cause(ctx)), the source closes (nil) or fails. It waits for its
// goroutine and frees the encoder and resampler before returning. Run may
// be called once.
func (a *Audio) Run(ctx context.Context) error {
	if !a.running.CompareAndSwap(false, true) {
		return errors.New("pipeline: Audio.Run called twice")
	}
	enc, err := encode.NewOpusEncoder(encode.OpusConfig{Bitrate: a.cfg.Bitrate, Logger: a.log})
	if err != nil {
		return fmt.Errorf("pipeline: %s: %w", a.src.Name(), err)
	}
	defer enc.Close()
	clock := a.cfg.Clock
	if clock == nil {
		clock = newSystemClock()
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return a.read(gctx) })
	g.Go(func() error { return a.tick(gctx, clock, enc) })
	err = g.Wait()
	if errors.Is(err, errSourceDone) {
		return nil
	}
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return err
}

var errSourceDone = errors.New("pipeline: source closed")

// read moves the source's chunks, mixed to mono and resampled to 48 kHz,
// into the buffer.
func (a *Audio) read(ctx context.Context) error {
	var (
		rs  *encode.Resampler
		out []int16
	)
	defer func() {
		if rs != nil {
			rs.Close()
		}
	}()
	for {
		f, err := a.src.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			if errors.Is(err, tracks.ErrClosed) {
				return errSourceDone
			}
			return fmt.Errorf("pipeline: %s: next chunk: %w", a.src.Name(), err)
		}
		if rs == nil || !sameFormat(rs, f) {
			if rs != nil {
				rs.Close()
			}
			if rs, err = encode.NewResampler(f.SampleRate, f.Channels); err != nil {
				f.Release()
				return fmt.Errorf("pipeline: %s: %w", a.src.Name(), err)
			}
		}
		if need := rs.MaxOut(len(f.PCM)); len(out) < need {
			out = make([]int16, need)
		}
		n, err := rs.Convert(f.PCM, out)
		capture := f.Capture
		f.Release()
		if err != nil {
			return fmt.Errorf("pipeline: %s: %w", a.src.Name(), err)
		}
		a.mu.Lock()
		dropped := a.buf.push(out[:n], capture)
		a.mu.Unlock()
		if dropped > 0 {
			a.overflow.Add(uint64(dropped))
		}
	}
}

func sameFormat(rs *encode.Resampler, f *tracks.AudioFrame) bool {
	r, c := rs.Format()
	return r == f.SampleRate && c == f.Channels
}

// tick sends one 20 ms frame per 20 ms of the clock, forever: model audio
// when enough is buffered, silence otherwise, so the receiver's audio
// clock advances continuously.
func (a *Audio) tick(ctx context.Context, clock Clock, enc *encode.OpusEncoder) error {
	var (
		pcm  = make([]int16, encode.AudioFrameSamples)
		pkt  = make([]byte, encode.MaxOpusPacket)
		next = clock.Now()
		play playState
	)
	const maxLag = 5 * frameDuration
	for {
		if err := clock.SleepUntil(ctx, next); err != nil {
			return err
		}
		now := clock.Now()
		stalled := now.Sub(next) > maxLag
		if stalled {
			// A long stall (suspended process, starved CPU): skip the lost
			// ticks rather than burst them out, and (in take) drop the
			// audio that was meant for them.
			next = now
		}
		next = next.Add(frameDuration)

		capture, got := a.take(now, stalled, &play, pcm)
		clear(pcm[got:])
		if got > 0 && a.cfg.Tap != nil {
			a.cfg.Tap.PCM(pcm[:got])
		}

		start := time.Now()
		n, err := enc.Encode(pcm, pkt)
		if err != nil {
			return fmt.Errorf("pipeline: %s: %w", a.src.Name(), err)
		}
		encodeTime := time.Since(start)
		a.frames.Add(1)
		if got == 0 {
			a.silent.Add(1)
			capture = time.Time{}
		}
		if err := a.sink.WriteSample(pkt[:n], frameDuration, capture, false); err != nil {
			if a.sinkErrors.Add(1) == 1 {
				a.log.Warn("sink write failed; counting further failures in stats", "err", err)
			}
			continue
		}
		if got > 0 {
			a.win.record(encodeTime, clock.Now().Sub(capture), now, n)
		}
	}
}

// playState is the tick goroutine's view of the playout.
type playState struct {
	playing bool
	over    int           // consecutive frames above the target + tolerance
	minLat  time.Duration // least latency of those frames
}

const (
	// trimTolerance is how far above Playout the latency may sit before
	// the oldest audio is dropped.
	trimTolerance = 20 * time.Millisecond
	// trimWindow is how many consecutive frames (300 ms) the latency must
	// stay above Playout + trimTolerance before the excess is dropped, so
	// that a model's emission jitter is not mistaken for drift.
	trimWindow = 15
)

// take moves the next 20 ms of model audio into pcm and returns how many
// samples it moved and when the first was captured. Playing starts once
// the oldest sample is Playout old; when it starts, and after a stall,
// audio older than Playout is dropped at once (stale audio queued before
// sending began, audio meant for skipped ticks); while playing, a
// latency that stays above Playout + trimTolerance for trimWindow frames
// is trimmed by its least excess. It does not allocate.
func (a *Audio) take(now time.Time, stalled bool, st *playState, pcm []int16) (capture time.Time, got int) {
	target := a.cfg.Playout
	a.mu.Lock()
	defer a.mu.Unlock()
	if !st.playing {
		if a.buf.len() == 0 || now.Sub(a.buf.headCapture()) < target {
			return time.Time{}, 0
		}
		st.playing, st.over, stalled = true, 0, true
	}
	if stalled {
		// A tick lands up to one frame after the head turned Playout old:
		// that much is the tick's granularity, not stale audio (real-time
		// audio must start untrimmed).
		if now.Sub(a.buf.headCapture()) > target+frameDuration+trimTolerance/2 {
			a.trimmed.Add(uint64(a.buf.dropBefore(now.Add(-target))))
		}
		st.over = 0
	}
	if a.buf.len() == 0 {
		st.playing = false
		return time.Time{}, 0
	}
	if lat := now.Sub(a.buf.headCapture()); lat <= target+trimTolerance {
		st.over = 0
	} else {
		if st.over == 0 || lat < st.minLat {
			st.minLat = lat
		}
		if st.over++; st.over >= trimWindow {
			// Move the head's capture time forward by the least excess.
			a.trimmed.Add(uint64(a.buf.dropBefore(now.Add(st.minLat - target - lat))))
			st.over = 0
		}
	}
	if a.buf.len() == 0 {
		st.playing = false
		return time.Time{}, 0
	}
	capture = a.buf.headCapture()
	got = a.buf.pop(pcm)
	if got < len(pcm) {
		st.playing = false
		if got > 0 {
			a.underruns.Add(1)
		}
	}
	return capture, got
}

// pcmRing is a FIFO of 48 kHz mono samples that remembers when each
// pushed chunk was captured. It does not allocate after init.
type pcmRing struct {
	s          []int16
	head, n    int
	marks      [64]mark // capture time of chunk starts, oldest first
	mHead, mN  int
	popped     int64 // samples popped in total
	pushedTill int64 // samples pushed in total
}

type mark struct {
	at      int64 // sample index (pushed total) where the chunk starts
	capture time.Time
}

func (r *pcmRing) init(capacity int) { r.s = make([]int16, capacity) }

func (r *pcmRing) len() int { return r.n }

// push appends pcm, dropping the oldest samples when full; it returns
// how many were dropped.
func (r *pcmRing) push(pcm []int16, capture time.Time) (dropped int) {
	if len(pcm) == 0 {
		return 0
	}
	if r.mN == len(r.marks) { // forget the oldest mark; its samples keep their times approximately
		r.mHead = (r.mHead + 1) % len(r.marks)
		r.mN--
	}
	r.marks[(r.mHead+r.mN)%len(r.marks)] = mark{at: r.pushedTill, capture: capture}
	r.mN++
	for _, v := range pcm {
		if r.n == len(r.s) {
			r.head = (r.head + 1) % len(r.s)
			r.n--
			r.popped++
			dropped++
		}
		r.s[(r.head+r.n)%len(r.s)] = v
		r.n++
	}
	r.pushedTill += int64(len(pcm))
	return dropped
}

// headCapture estimates when the oldest buffered sample was captured.
func (r *pcmRing) headCapture() time.Time {
	for r.mN > 1 && r.marks[(r.mHead+1)%len(r.marks)].at <= r.popped {
		r.mHead = (r.mHead + 1) % len(r.marks)
		r.mN--
	}
	if r.mN == 0 {
		return time.Time{}
	}
	m := r.marks[r.mHead]
	return m.capture.Add(time.Duration(r.popped-m.at) * time.Second / encode.AudioRate)
}

// dropBefore drops the oldest samples whose estimated capture time is
// before cutoff, mark by mark (a newer chunk's own capture time decides
// for its samples), and returns how many it dropped.
func (r *pcmRing) dropBefore(cutoff time.Time) (dropped int) {
	for r.n > 0 {
		h := r.headCapture()
		if !h.Before(cutoff) {
			break
		}
		k := int(cutoff.Sub(h) * encode.AudioRate / time.Second)
		if r.mN > 1 {
			k = min(k, int(r.marks[(r.mHead+1)%len(r.marks)].at-r.popped))
		}
		k = min(k, r.n)
		if k <= 0 {
			break
		}
		r.head = (r.head + k) % len(r.s)
		r.n -= k
		r.popped += int64(k)
		dropped += k
	}
	return dropped
}

// pop moves up to len(dst) samples into dst and returns how many.
func (r *pcmRing) pop(dst []int16) int {
	k := min(len(dst), r.n)
	for i := range k {
		dst[i] = r.s[(r.head+i)%len(r.s)]
	}
	r.head = (r.head + k) % len(r.s)
	r.n -= k
	r.popped += int64(k)
	return k
}
