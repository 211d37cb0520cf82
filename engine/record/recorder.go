package record

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// timescale is the recording's clock: 90 kHz, like RTP video.
const timescale = 90000

// Refusal reasons of clipFailed, worded as the runtime words them (SDK ≥
// 2.10 maps the first to RECORDER_DISABLED by exact match).
var (
	ErrDisabled    = errors.New("recorder disabled or encoder crashed")
	ErrNoMedia     = errors.New("no media generated yet")
	ErrBadDuration = errors.New("duration_seconds must be positive")
)

// queueLen is how many access units wait for the disk at most (3 s at
// 30 fps): a slow disk costs dropped recording frames, never a blocked
// pipeline.
const queueLen = 90

// drainEvery is how often Run wakes to mux what the tap queued. The tap
// does not wake it for every frame: only for a segment's cut and the
// access unit after it (which closes the segment, so chunk_ready and
// clips are as prompt as before) and when the queue is half full. A
// goroutine woken 30 times a second for 30 µs of muxing costs its
// process more in wake-ups and idle spinning than the muxing itself.
const drainEvery = 250 * time.Millisecond

// Recorder records one session's video output: the tap (VideoTap) copies
// every access unit the live encoder made into a bounded queue, and Run,
// on its own goroutine, muxes them into init.mp4 and one fMP4 segment per
// chunk_seconds of media time. Every method is safe for concurrent use.
// A failure (disk, muxer, a stream it cannot record) disables the
// recording for the session with one log line; live media never waits
// for it.
type Recorder struct {
	st  *Store
	cfg Config
	log *slog.Logger
	csT int64 // chunk length in ticks

	free, full chan *item
	kick       chan struct{} // wakes Run before its next drainEvery tick
	stop       chan struct{}
	stopOnce   sync.Once
	done       chan struct{}
	running    atomic.Bool

	audio pcmRing // the recorded audio output's PCM, waiting for video media time
	pace  paceLog // media against wall time, for predicted_ready_at_ms

	off     atomic.Bool  // failed or closed: the tap drops at once
	tapping sync.RWMutex // read-held by a VideoTap.Packet in progress; Run's stop waits for it
	now     atomic.Int64 // media ticks accepted: the markers' now
	dropped atomic.Uint64
	started atomic.Bool // a frame was accepted

	tell   sync.Mutex // serialises the Events calls (events.go); taken before mu
	mu     sync.Mutex // guards id, e, base, failed and the events' state
	id     string
	e      *entry
	base   string // SetURLBase
	failed error
	ev     Events        // SetEvents
	closed int           // highest segment closed (-1: only init.mp4; -2: nothing)
	ended  bool          // finish ran: every clip is ready (or never will be)
	await  []pendingClip // AwaitClip's clips whose boundary segment is open

	// Owned by Run's goroutine.
	aac   *aacEncoder
	mux   *muxer
	init  *atomicFile  // init.mp4 until the muxer wrote its moov (writeInit)
	cutAt int64        // while a cut waits (pend): the cut, in samples
	held  []heldPacket // AAC packets past the cut, for the next segment
	pend  struct {     // a cut access unit waiting for its audio (see mux1)
		on       bool
		data     []byte
		pts, dur int64
		seg      int
	}
	audioIn  bool  // an AAC packet was muxed
	seg      int   // index of the open segment, -1 before the first
	segStart int64 // its first pts
	segEnd   int64 // pts + dur of its latest packet
	w, h     int
}

// item is one queued access unit; its buffer is reused.
type item struct {
	data     []byte
	pts, dur int64
	key      bool
	cut      bool // the access unit starts segment seg (the tap decides)
	seg      int  // the segment it belongs to
	w, h     int
	pcm      []int16 // the audio of the frame's media time (silence where the model had none)
}

// NewRecorder registers a live recording under id (a lowercase UUID;
// empty mints one) with cfg (its chunk_seconds and clip_max_seconds).
// Nothing is written until the first keyframe. The caller runs Run on a
// goroutine it owns, and ends it with ctx or Close.
func (s *Store) NewRecorder(id string, cfg Config, log *slog.Logger) (*Recorder, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if id == "" {
		id = NewID()
	}
	e, err := s.add(id, cfg.ChunkSeconds)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Recorder{
		st: s, cfg: cfg, log: log.With("component", "record"), csT: int64(cfg.ChunkSeconds) * timescale,
		free: make(chan *item, queueLen), full: make(chan *item, queueLen), kick: make(chan struct{}, 1),
		stop: make(chan struct{}), done: make(chan struct{}),
		id: id, e: e, seg: -1, closed: -2,
	}
	for range queueLen {
		r.free <- &item{}
	}
	if hasAAC() {
		r.audio.s = make([]int16, AudioRate) // a jitter buffer of 1 s, as the runtime's
	}
	return r, nil
}

// ID returns the recording id.
func (r *Recorder) ID() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.id
}

// SetID replaces the recording id (the start body's session_id) before
// anything was recorded; id must be a lowercase UUID.
func (r *Recorder) SetID(id string) error {
	if r.started.Load() {
		return errors.New("record: SetID after recording started")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if id == r.id {
		return nil
	}
	e, err := r.st.add(id, r.cfg.ChunkSeconds)
	if err != nil {
		return err
	}
	r.st.remove(r.e)
	r.id, r.e = id, e
	return nil
}

// SetURLBase sets the base (scheme://host/prefix, or a path prefix) that
// this recording's clip URLs start with when Snap and Recording are given
// no prefix: a node behind a front with a path prefix learns it from the
// front at start. It is safe for concurrent use.
func (r *Recorder) SetURLBase(base string) {
	r.mu.Lock()
	r.base = strings.TrimSuffix(base, "/")
	r.mu.Unlock()
}

// URLBase returns what SetURLBase set ("" when nothing, and for a nil
// Recorder: recording off).
func (r *Recorder) URLBase() string {
	if r == nil {
		return ""
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.base
}

// ChunkSeconds returns the segment length.
func (r *Recorder) ChunkSeconds() int { return r.cfg.ChunkSeconds }

// Disable stops the recording for the session: later clip requests are
// refused with ErrDisabled and the reason is logged once.
func (r *Recorder) Disable(reason error) { r.fail(reason) }

// Err returns why the recording is disabled, nil while it works.
func (r *Recorder) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failed
}

// Dropped counts access units not recorded because the queue was full
// (and the ones skipped until the next keyframe after such a drop).
func (r *Recorder) Dropped() uint64 { return r.dropped.Load() }

// Now returns the media time recorded so far (the markers' now).
func (r *Recorder) Now() time.Duration {
	return time.Duration(r.now.Load()) * time.Second / timescale
}

// Stats is a snapshot of one recorder.
type Stats struct {
	ID string `json:"id"`
	// Media is the media time recorded (the markers' now).
	Media time.Duration `json:"media_ns"`
	// Segments counts closed segments; Dropped the access units the full
	// queue (a slow disk) cost, with those skipped until the next
	// keyframe.
	Segments int    `json:"segments"`
	Dropped  uint64 `json:"dropped"`
	// Disabled is why recording stopped for the session ("" while it
	// records).
	Disabled string `json:"disabled,omitempty"`
}

// Stats returns a snapshot. Safe for concurrent use.
func (r *Recorder) Stats() Stats {
	r.mu.Lock()
	st := Stats{ID: r.id, Media: r.Now(), Dropped: r.dropped.Load()}
	if r.failed != nil {
		st.Disabled = r.failed.Error()
	}
	e := r.e
	r.mu.Unlock()
	st.Segments = r.st.segments(e)
	return st
}

func (r *Recorder) fail(err error) {
	r.mu.Lock()
	if r.failed != nil {
		r.mu.Unlock()
		return
	}
	r.failed = err
	id := r.id
	r.mu.Unlock()
	r.off.Store(true)
	r.log.Error("recording disabled for this session", "recording", id, "err", err)
}

// VideoTap is the recorder's side of one video pipeline
// (pipeline.VideoConfig.Tap). Its Packet is called by one goroutine at a
// time; it copies and never waits for the disk (when Run stops, at most
// for a Packet in progress on another pipeline's goroutine).
type VideoTap struct {
	r       *Recorder
	rate    float64
	mu      sync.Mutex // a restarted pipeline may follow the old one
	needKey bool
	frames  int64 // frames accepted (rate > 0)
	next    int64 // where the next segment starts, ticks
	asked   int64 // the next for which a keyframe was asked (-1: none)
	seg     int   // the open segment
	samples int64 // audio samples handed to the queue
	cutLast bool  // the last item queued was a cut
}

// VideoTap returns the tap for the recorded video output, whose frame
// rate is rate (0: automatic pacing). Media time advances by 1/rate per
// recorded frame however long the model took to make it; with rate 0 by
// the frame's duration on the wire, at most 100 ms, so a pause in
// emission adds no dead air.
func (r *Recorder) VideoTap(rate float64) *VideoTap {
	return &VideoTap{r: r, rate: rate, needKey: true, asked: -1}
}

// Packet takes one encoded H.264 access unit (Annex B; data is only read
// during the call) of a width×height picture that lasted dur on the wire.
// It returns true when the live encoder should make its next frame a
// keyframe: once at each segment boundary of media time, and after a
// drop. A keyframe that ends at or after the boundary starts the next
// segment: the live encoder's own (a scene cut) one frame before the
// boundary saves the forced IDR, the segment then starting a frame early.
// It does not allocate once the queue's buffers have grown.
func (t *VideoTap) Packet(data []byte, key bool, width, height int, dur time.Duration) (wantKey bool) {
	r := t.r
	// Held while now advances and the item is queued, so that Run's stop
	// cannot drain the queue between the two: a frame the markers count
	// is a frame the recording holds.
	r.tapping.RLock()
	defer r.tapping.RUnlock()
	if r.off.Load() {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.needKey && !key {
		r.dropped.Add(1)
		return true
	}
	var it *item
	select {
	case it = <-r.free:
	default:
		r.dropped.Add(1)
		t.needKey = true
		return true
	}
	t.needKey = false
	start := r.now.Load()
	var end int64
	if t.rate > 0 {
		t.frames++
		end = int64(math.Round(float64(t.frames) * timescale / t.rate))
	} else {
		end = start + min(max(int64(dur)*timescale/int64(time.Second), 1), timescale/10)
	}
	if end <= start {
		end = start + 1
	}
	if cap(it.data) < len(data) {
		it.data = make([]byte, len(data), len(data)+len(data)/2)
	}
	it.data = it.data[:len(data)]
	copy(it.data, data)
	// Segment k starts at the first keyframe that ends at or after k·cs:
	// the IDR asked for at the boundary, or the live encoder's own when
	// it is the boundary's last frame (no IDR to force then).
	cut := key && end >= t.next
	if cut {
		t.seg = int(end / r.csT)
		t.next = (int64(t.seg) + 1) * r.csT
	} else if end >= t.next && t.asked != t.next {
		t.asked, wantKey = t.next, true
	}
	it.pts, it.dur, it.key, it.w, it.h, it.cut, it.seg = start, end-start, key, width, height, cut, t.seg
	// The audio of [start, end) of media time: what the model played out
	// since the previous frame, up to that much, padded with silence.
	aEnd := end * AudioRate / timescale
	n := int(aEnd - t.samples)
	t.samples = aEnd
	if r.audio.s == nil { // no AAC encoder: video only
		n = 0
	}
	if cap(it.pcm) < n {
		it.pcm = make([]int16, n, 2*n)
	}
	it.pcm = it.pcm[:n]
	clear(it.pcm[r.audio.pop(it.pcm):])
	r.now.Store(end)
	r.started.Store(true)
	r.pace.note(time.Now(), end)
	r.full <- it // never blocks: as many items as slots
	if cut || t.cutLast || len(r.full) >= queueLen/2 {
		select {
		case r.kick <- struct{}{}:
		default: // a wake-up is pending already
		}
	}
	t.cutLast = cut
	return wantKey
}

// AudioTap is the recorder's side of the recorded audio output's
// pipeline (pipeline.AudioConfig.Tap): the 48 kHz mono PCM as it is
// played out. Without one the recording's audio track is silent.
type AudioTap struct{ r *Recorder }

// AudioTap returns the tap for the recorded audio output.
func (r *Recorder) AudioTap() *AudioTap { return &AudioTap{r: r} }

// PCM takes played-out samples (read only during the call); beyond 1 s
// not yet claimed by video media time, the oldest are dropped. It does
// not block or allocate.
func (a *AudioTap) PCM(samples []int16) {
	if a.r.off.Load() || a.r.audio.s == nil {
		return
	}
	a.r.audio.push(samples)
}

// pcmRing is a mutex-guarded FIFO of samples that drops its oldest when
// full; it does not allocate.
type pcmRing struct {
	mu      sync.Mutex
	s       []int16
	head, n int
}

func (p *pcmRing) push(pcm []int16) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, v := range pcm {
		if p.n == len(p.s) {
			p.head = (p.head + 1) % len(p.s)
			p.n--
		}
		p.s[(p.head+p.n)%len(p.s)] = v
		p.n++
	}
}

// pop moves up to len(dst) samples into dst and returns how many.
func (p *pcmRing) pop(dst []int16) int {
	if len(dst) == 0 {
		return 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	k := min(len(dst), p.n)
	for i := range k {
		dst[i] = p.s[(p.head+i)%len(p.s)]
	}
	p.head = (p.head + k) % len(p.s)
	p.n -= k
	return k
}

// Run muxes queued access units until ctx ends or Close is called, then
// writes what is queued, closes the last segment and marks the recording
// finished (its clips stay for the store's retention). It returns nil;
// failures disable the recording instead. Run may be called once.
func (r *Recorder) Run(ctx context.Context) error {
	if !r.running.CompareAndSwap(false, true) {
		return errors.New("record: Run called twice")
	}
	defer close(r.done)
	tick := time.NewTicker(drainEvery)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
		case <-r.kick:
		case <-ctx.Done():
		case <-r.stop:
		}
		if ctx.Err() != nil || isClosed(r.stop) {
			break
		}
		r.drain()
	}
	r.off.Store(true) // the tap drops from now on
	r.tapping.Lock()  // once a Packet in progress has queued its item
	r.tapping.Unlock()
	r.drain()
	r.finish()
	return nil
}

// drain muxes the access units queued when it was called (not those the
// tap adds meanwhile, or a tap fed faster than the disk would keep Run
// from ever seeing its stop).
func (r *Recorder) drain() {
	for range len(r.full) {
		it := <-r.full
		r.handle(it)
		r.free <- it
	}
}

// isClosed reports whether c is closed.
func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// Close stops the recording (as ending Run's ctx does) and waits for Run
// to finish, if it was started. It is idempotent.
func (r *Recorder) Close() error {
	r.stopOnce.Do(func() { close(r.stop) })
	if r.running.Load() {
		<-r.done
	} else {
		r.off.Store(true)
		r.mu.Lock()
		e := r.e
		r.mu.Unlock()
		r.st.finish(e)
		r.finished()
	}
	return nil
}

// handle muxes one access unit, cutting a segment where the tap said
// (item.cut).
func (r *Recorder) handle(it *item) {
	if r.Err() != nil {
		return
	}
	if err := r.mux1(it); err != nil {
		r.fail(err)
		r.closeMux()
	}
}

func (r *Recorder) closeMux() {
	if r.init != nil {
		r.init.abort()
		r.init = nil
	}
	if r.mux != nil {
		r.mux.close()
		r.mux = nil
	}
	if r.aac != nil {
		r.aac.close()
		r.aac = nil
	}
}

// openMux opens the recording's muxer (and AAC encoder) on its first
// keyframe it, with init.mp4 pending until every track has a packet.
func (r *Recorder) openMux(e *entry, it *item) error {
	ps := parameterSets(it.data)
	if ps == nil {
		return errors.New("record: the first keyframe carries no SPS/PPS (is the live codec H.264?)")
	}
	if err := os.MkdirAll(e.dir, 0o755); err != nil {
		return fmt.Errorf("record: %w", err)
	}
	f, err := newAtomicFile(filepath.Join(e.dir, initName))
	if err != nil {
		return err
	}
	var aac *aacEncoder
	if hasAAC() {
		if aac, err = openAAC(aacBitrate); err != nil {
			f.abort()
			return err
		}
	} else {
		r.log.Warn("FFmpeg has no AAC encoder (build it with --enable-encoder=aac): the recording is video only", "recording", e.id)
	}
	m, err := openMuxer(ps, it.w, it.h, aac, f)
	if err != nil {
		if aac != nil {
			aac.close()
		}
		f.abort()
		return err
	}
	r.mux, r.aac, r.w, r.h, r.init, r.audioIn = m, aac, it.w, it.h, f, false
	r.log.Info("recording", "recording", e.id, "dir", e.dir, "width", it.w, "height", it.h, "chunk_seconds", r.cfg.ChunkSeconds)
	return nil
}

// mux1 muxes access unit it (with its PCM into the AAC track), holding a
// cut access unit back until the AAC encoder has released the audio up to
// the cut (see the comment inside).
func (r *Recorder) mux1(it *item) error {
	r.mu.Lock()
	e := r.e
	r.mu.Unlock()
	if r.mux == nil {
		if !it.key {
			return nil // the tap hands a keyframe first
		}
		if err := r.openMux(e, it); err != nil {
			return err
		}
	}
	if it.w != r.w || it.h != r.h {
		return fmt.Errorf("record: the picture size changed from %dx%d to %dx%d; one recording keeps one size", r.w, r.h, it.w, it.h)
	}
	audioDone := false
	if r.pend.on {
		// The previous access unit cut: with this one's PCM the encoder
		// has released every packet that ends by the cut.
		if err := r.cutAudio(it.pcm, false); err != nil {
			return err
		}
		audioDone = true
		if err := r.cutSegment(e); err != nil {
			return err
		}
	}
	if it.cut && r.seg >= 0 && r.aac != nil {
		// A keyframe that starts a segment: the closing segment waits for
		// the audio up to the cut, which the AAC encoder releases two
		// packets late (its priming and lookahead), so it closes with the
		// next access unit (a frame later) and its audio ends less than
		// one packet before its video; the packets that end after the cut
		// open the next segment. The cut access unit waits, copied.
		if !audioDone {
			r.cutAt = it.pts * AudioRate / timescale
			if err := r.cutAudio(it.pcm, false); err != nil {
				return err
			}
		}
		r.pend.on, r.pend.pts, r.pend.dur, r.pend.seg = true, it.pts, it.dur, it.seg
		r.pend.data = append(r.pend.data[:0], it.data...)
		return nil
	}
	if it.cut && r.seg >= 0 {
		if err := r.closeSegment(e); err != nil {
			return err
		}
	}
	if r.seg < 0 {
		r.seg = it.seg
		r.segStart = it.pts
	}
	r.segEnd = it.pts + it.dur
	if err := r.mux.packet(0, it.data, it.pts, it.dur, it.key); err != nil {
		return err
	}
	if r.aac != nil && !audioDone {
		if err := r.aac.encode(it.pcm, r.audioPacket); err != nil {
			return err
		}
	}
	if r.init != nil && (r.aac == nil || r.audioIn) {
		return r.writeInit(e)
	}
	return nil
}

// writeInit writes init.mp4 once every track has its first packet: the
// muxer (delay_moov) writes the moov then, with the audio track's edit
// list skipping the AAC encoder's priming samples.
func (r *Recorder) writeInit(e *entry) error {
	f := r.init
	r.init = nil
	if err := r.mux.fragment(f); err != nil {
		f.abort()
		return err
	}
	size, err := f.commit()
	if err != nil {
		return err
	}
	r.st.wrote(e, -1, 0, size)
	if err := writeMeta(e.dir, r.cfg.ChunkSeconds); err != nil {
		return err
	}
	r.closedUpTo(e.id, -1)
	return nil
}

// cutAudio encodes pcm (flush: the encoder's tail) while a cut waits:
// the packets that end by the cut go to the closing segment, the others
// are held for the next.
func (r *Recorder) cutAudio(pcm []int16, flush bool) error {
	if flush {
		return r.aac.flush(r.cutAudioPacket)
	}
	return r.aac.encode(pcm, r.cutAudioPacket)
}

// cutSegment closes the segment a waiting cut ends and opens the next
// with the cut's access unit and the audio held for it.
func (r *Recorder) cutSegment(e *entry) error {
	p := &r.pend
	p.on = false
	if err := r.closeSegment(e); err != nil {
		return err
	}
	r.seg, r.segStart, r.segEnd = p.seg, p.pts, p.pts+p.dur
	if err := r.mux.packet(0, p.data, p.pts, p.dur, true); err != nil {
		return err
	}
	for _, h := range r.held {
		if err := r.audioPacket(h.data, h.pts, h.dur); err != nil {
			return err
		}
	}
	r.held = r.held[:0]
	return nil
}

// heldPacket is an AAC packet that waits for the next segment.
type heldPacket struct {
	data     []byte
	pts, dur int64
}

// cutAudioPacket muxes an AAC packet that ends by the cut (r.cutAt,
// samples) into the closing segment and holds the others for the next.
func (r *Recorder) cutAudioPacket(data []byte, pts, dur int64) error {
	if pts+dur <= r.cutAt {
		return r.audioPacket(data, pts, dur)
	}
	if len(r.held) < cap(r.held) {
		r.held = r.held[:len(r.held)+1]
	} else {
		r.held = append(r.held, heldPacket{})
	}
	h := &r.held[len(r.held)-1]
	h.data = append(h.data[:0], data...)
	h.pts, h.dur = pts, dur
	return nil
}

// audioPacket muxes one AAC packet.
func (r *Recorder) audioPacket(data []byte, pts, dur int64) error {
	r.audioIn = true
	return r.mux.packet(1, data, pts, dur, true)
}

// closeSegment writes the open segment's fragment to its file (a
// temporary name renamed once complete and synced: a segment on disk
// under its own name is always whole).
func (r *Recorder) closeSegment(e *entry) error {
	if r.init != nil { // a segment shorter than the encoder's priming
		if err := r.writeInit(e); err != nil {
			return err
		}
	}
	f, err := newAtomicFile(filepath.Join(e.dir, chunkName(r.seg)))
	if err != nil {
		return err
	}
	if err := r.mux.fragment(f); err != nil {
		f.abort()
		return err
	}
	size, err := f.commit()
	if err != nil {
		return err
	}
	dur := float64(r.segEnd-r.segStart) / timescale
	r.st.wrote(e, r.seg, dur, size)
	k := r.seg
	r.seg = -1
	if err := appendIndex(e.dir, k, dur); err != nil {
		return err
	}
	r.closedUpTo(e.id, k)
	return nil
}

// writeMeta writes what a later process needs to serve the recording.
func writeMeta(dir string, cs int) error {
	f, err := newAtomicFile(filepath.Join(dir, metaName))
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(f, "{\"chunk_seconds\": %d}\n", cs); err != nil {
		f.abort()
		return fmt.Errorf("record: %w", err)
	}
	_, err = f.commit()
	return err
}

// appendIndex records segment k's duration (a torn last line after a
// crash is skipped by the reader, which then assumes chunk_seconds).
func appendIndex(dir string, k int, dur float64) error {
	f, err := os.OpenFile(filepath.Join(dir, indexName), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("record: %w", err)
	}
	_, err = fmt.Fprintf(f, "%d %.6f\n", k, dur)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("record: %w", err)
	}
	return nil
}

// finish closes the last segment and marks the recording finished.
func (r *Recorder) finish() {
	r.mu.Lock()
	e := r.e
	r.mu.Unlock()
	if r.mux != nil {
		if r.seg >= 0 && r.Err() == nil {
			var err error
			switch {
			case r.pend.on: // the encoder's tail, split at the waiting cut
				if err = r.cutAudio(nil, true); err == nil {
					err = r.cutSegment(e)
				}
			case r.aac != nil:
				err = r.aac.flush(r.audioPacket)
			}
			if err == nil {
				err = r.closeSegment(e)
			}
			if err != nil {
				r.fail(err)
			}
		}
	}
	r.closeMux()
	r.st.finish(e)
	r.finished()
}

// Clip is the clipReady payload.
type Clip struct {
	SessionID          string  `json:"session_id"`
	Kind               string  `json:"kind"`
	StartMarker        float64 `json:"start_marker"`
	EndMarker          float64 `json:"end_marker"`
	NowMarker          float64 `json:"now_marker"`
	PredictedReadyAtMs int64   `json:"predicted_ready_at_ms"`
	PlaylistURL        string  `json:"playlist_url"`
}

// Snap answers requestClip: the last seconds of media (capped by
// clip_max_seconds). prefix goes before the playlist path ("" for a
// path-only URL). A nil Recorder answers ErrDisabled.
func (r *Recorder) Snap(seconds float64, prefix string) (Clip, error) {
	now, err := r.markers()
	if err != nil {
		return Clip{}, err
	}
	if !(seconds > 0) {
		return Clip{}, ErrBadDuration
	}
	d := min(seconds, r.cfg.ClipMaxSeconds)
	return r.clip("snap", max(0, now-d), now, prefix), nil
}

// Recording answers requestRecording: the whole recording so far.
func (r *Recorder) Recording(prefix string) (Clip, error) {
	now, err := r.markers()
	if err != nil {
		return Clip{}, err
	}
	return r.clip("recording", 0, now, prefix), nil
}

func (r *Recorder) markers() (float64, error) {
	if r == nil || r.Err() != nil || r.off.Load() && !r.started.Load() {
		return 0, ErrDisabled
	}
	if !r.started.Load() {
		return 0, ErrNoMedia
	}
	return float64(r.now.Load()) / timescale, nil
}

func (r *Recorder) clip(kind string, start, end float64, prefix string) Clip {
	id := r.ID()
	cs := float64(r.cfg.ChunkSeconds)
	first := max(0, math.Floor(start/cs))
	last := max(first, math.Ceil(end/cs)-1)
	wait := max(0, (last+1)*cs-end) // media still to record before the boundary segment closes
	now := time.Now()
	wait /= r.pace.rate(now) // a model slower than real time reaches the boundary later
	return Clip{
		SessionID: id, Kind: kind, StartMarker: start, EndMarker: end, NowMarker: end,
		PredictedReadyAtMs: now.Add(time.Duration(wait*float64(time.Second)) + 100*time.Millisecond).UnixMilli(),
		PlaylistURL:        fmt.Sprintf("%s/clips?session_id=%s&start=%.3f&end=%.3f", prefix, id, start, end),
	}
}

// atomicFile is written under a temporary name and renamed to its own
// name by commit, after an fsync: after a crash a file under its own name
// is complete.
type atomicFile struct {
	f    *os.File
	path string
	n    int64
}

func newAtomicFile(path string) (*atomicFile, error) {
	f, err := os.OpenFile(path+".tmp", os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, fmt.Errorf("record: %w", err)
	}
	return &atomicFile{f: f, path: path}, nil
}

func (a *atomicFile) Write(b []byte) (int, error) {
	n, err := a.f.Write(b)
	a.n += int64(n)
	return n, err
}

func (a *atomicFile) commit() (int64, error) {
	err := a.f.Sync()
	if cerr := a.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(a.path+".tmp", a.path)
	}
	if err != nil {
		_ = os.Remove(a.path + ".tmp")
		return 0, fmt.Errorf("record: %w", err)
	}
	return a.n, nil
}

func (a *atomicFile) abort() {
	_ = a.f.Close()
	_ = os.Remove(a.path + ".tmp")
}

// paceLog remembers media time against wall time, a sample every half
// second for the last 4 s, so a clip's readiness is predicted at the
// model's measured production rate rather than assuming real time (the
// runtime's estimate). It does not allocate.
type paceLog struct {
	mu    sync.Mutex
	at    [8]time.Time
	media [8]int64 // ticks
	n, i  int
}

func (p *paceLog) note(now time.Time, media int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.n > 0 && now.Sub(p.at[(p.i+len(p.at)-1)%len(p.at)]) < 500*time.Millisecond {
		return
	}
	p.at[p.i], p.media[p.i] = now, media
	p.i = (p.i + 1) % len(p.at)
	p.n = min(p.n+1, len(p.at))
}

// rate returns media seconds per wall second over the samples (1 until
// there are two at least a second apart, or when emission paused for
// more than 2 s: a resumed model is assumed real-time), within [1/20, 20].
func (p *paceLog) rate(now time.Time) float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.n < 2 {
		return 1
	}
	oldest := (p.i + len(p.at) - p.n) % len(p.at)
	newest := (p.i + len(p.at) - 1) % len(p.at)
	wall := p.at[newest].Sub(p.at[oldest]).Seconds()
	if wall < 1 || now.Sub(p.at[newest]) > 2*time.Second {
		return 1
	}
	return min(max(float64(p.media[newest]-p.media[oldest])/timescale/wall, 0.05), 20)
}
