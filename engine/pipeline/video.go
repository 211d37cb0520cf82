package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/framewire/framewire/encode"
	"github.com/framewire/framewire/tracks"
)

// Sink receives encoded media, one access unit (video) or one Opus frame
// (audio) at a time: engine/peer implements it over a pion RTP track.
// data is valid only during the call. duration is the sample's length on
// the wire (the RTP timestamp advances by it); capture is when the model
// emitted the media (zero for generated silence); key marks a video
// keyframe. WriteSample is called from one goroutine at a time and should
// not block for long: it delays the next frame.
type Sink interface {
	WriteSample(data []byte, duration time.Duration, capture time.Time, key bool) error
}

// SinkFunc adapts a function to Sink.
type SinkFunc func(data []byte, duration time.Duration, capture time.Time, key bool) error

// WriteSample calls f.
func (f SinkFunc) WriteSample(data []byte, duration time.Duration, capture time.Time, key bool) error {
	return f(data, duration, capture, key)
}

// VideoSource is an output video track as the pipeline consumes it;
// *tracks.VideoOut implements it. Next blocks until a frame is queued or
// ctx ends; the pipeline releases every frame it gets.
type VideoSource interface {
	Name() string
	Rate() float64 // frames per second; 0 = automatic pacing
	Next(ctx context.Context) (*tracks.VideoFrame, error)
}

// trackStats is implemented by sources that count what their queue did
// (*tracks.VideoOut, *tracks.AudioOut).
type trackStats interface{ Stats() tracks.Stats }

// queuedSource is implemented by sources that can hand over a queued frame
// without waiting (*tracks.VideoOut); the pipeline uses it to skip frames
// that a newer one has overtaken, so latency stays bounded.
type queuedSource interface {
	TryNext() (*tracks.VideoFrame, bool)
	Spec() tracks.Spec
}

// DeviceEncoder encodes frames that live in GPU memory (package gpu
// implements it). It is used by the pipeline's goroutine only. Its owner
// (the engine) closes it after Run returns.
type DeviceEncoder interface {
	Encode(f tracks.DeviceFrame, pts int64, out []byte) (n int, key bool, err error)
	RequestKeyframe()
	SetBitrate(bps int)
}

// DeviceBatchEncoder is a DeviceEncoder that encodes one picture of a
// batch device frame (Frames() > 1): the pipeline paces the batch's
// pictures one by one and encodes picture index of f with it. Package
// gpu's Encoder has this method.
type DeviceBatchEncoder interface {
	DeviceEncoder
	EncodeBatch(f tracks.DeviceFrame, index int, pts int64, out []byte) (n int, key bool, err error)
}

// HostDeviceEncoder is a DeviceEncoder that also encodes host RGB
// pictures on the device (package gpu's Encoder: upload + kernel → NV12
// CUDA frame → h264_nvenc). When EncodesHostFrames reports true (asked
// once, at the first host frame), the pipeline sends host frames to
// EncodeRGB instead of opening a host encoder: on a GPU with NVENC that
// spares the CPU conversion and FFmpeg's own upload.
type HostDeviceEncoder interface {
	DeviceEncoder
	EncodesHostFrames() bool
	EncodeRGB(pix []byte, w, h, stride int, pts int64, out []byte) (n int, key bool, err error)
}

// errNoBatchEncoder is counted (VideoStats.DeviceErrors) and logged once
// when a batch device frame reaches a device encoder that cannot encode
// one picture of a batch (it does not implement DeviceBatchEncoder).
var errNoBatchEncoder = errors.New("pipeline: batch device frame but the device encoder has no EncodeBatch")

// errNoDeviceEncoder is counted (VideoStats.DeviceErrors) and logged once
// when a device frame reaches a pipeline configured without a
// DeviceEncoder.
var errNoDeviceEncoder = errors.New("pipeline: device frame but no device encoder configured")

// VideoConfig configures a video pipeline. The zero value works: libx264
// at 2.5 Mbit/s on the system clock.
type VideoConfig struct {
	// Backend is the host-frame encoder, as chosen by encode.Probe.
	// Default encode.BackendX264.
	Backend encode.Backend
	// Bitrate is the initial target in bit/s. Default 2.5 Mbit/s.
	Bitrate int
	// Device encodes device frames (VideoFrame.Device != nil); without it
	// such frames are dropped and counted as DeviceErrors.
	Device DeviceEncoder
	// Clock paces the frames. Default: the system clock.
	Clock  Clock
	Logger *slog.Logger
	// Tap, when set, sees every access unit after the sink took it (the
	// same packets the peers get): the session recorder. It runs on the
	// pipeline's goroutine, must not block, and returns true to make the
	// next frame a keyframe (a segment boundary).
	Tap Tap
	// StageCPU, when set, gets the host encoder's conversion and encode
	// thread CPU added (see encode.StageCPU; for benchmarks). Default nil.
	StageCPU *encode.StageCPU
}

// Tap receives the encoded access units of a video pipeline, after the
// sink (package record's VideoTap implements it). data is valid only
// during the call; width and height are the picture's size; dur is its
// length on the wire. Packet returns true to ask for a keyframe next.
type Tap interface {
	Packet(data []byte, key bool, width, height int, dur time.Duration) (wantKey bool)
}

// VideoStats is a snapshot of one video pipeline.
type VideoStats struct {
	Track   string
	Backend string // encoder in use ("" before the first frame)
	// From the track's queue (zero when the source does not count).
	Emitted, Dropped uint64
	QueueDepth       int
	// Encoded counts frames that reached the encoder; Sent counts access
	// units written to the sink; Keyframes is how many were keyframes.
	Encoded, Sent, Keyframes uint64
	// Skipped counts single frames not sent because a newer frame was
	// already queued when their slot came (the model produced faster than
	// the track's rate or the encoder could go): sending them late would
	// only add latency. Back-pressure tracks never skip.
	Skipped uint64
	// EncodeErrors counts frames the encoder refused (bad size, …);
	// SinkErrors counts failed writes; DeviceErrors counts device frames
	// that could not be encoded.
	EncodeErrors, SinkErrors, DeviceErrors uint64
	// DeviceEncoded counts pictures encoded straight from device memory
	// (EmitDevice): the device encoder read them where the model left
	// them, with no copy of the RGB picture through host memory.
	DeviceEncoded uint64
	// Encode time (conversion included) and emit→wire latency over the
	// last 256 frames.
	EncodeP50, EncodeP99   time.Duration
	LatencyP50, LatencyP99 time.Duration
	// Stages is how long after Emit frames reached each stage on their
	// way to the wire.
	Stages StageTimes
	// Bitrate is the measured output over the last 256 frames, bit/s;
	// TargetBitrate is what the encoder aims at.
	Bitrate, TargetBitrate int
}

// Video is one output video track's pipeline. Create it with NewVideo,
// drive it with Run; the other methods are safe for concurrent use.
type Video struct {
	src  VideoSource
	sink Sink
	cfg  VideoConfig
	log  *slog.Logger

	keyReq  atomic.Bool
	rateReq atomic.Int64
	target  atomic.Int64
	backend atomic.Pointer[string]
	running atomic.Bool

	encoded, sent, keys, skipped, encErrs, sinkErrs, devErrs, devEnc atomic.Uint64
	win                                                              window
	stages                                                           stageWindow

	// Owned by Run's goroutine.
	enc      *encode.VideoEncoder
	pace     pacer
	out      []byte
	t0       time.Time
	rtpNext  int64              // 90 kHz ticks handed to the sink so far
	pending  *tracks.VideoFrame // taken from the queue by freshest, not yet sent
	dequeued time.Time          // when the current frame left the queue
	warned   sync.Once
	devWarn  sync.Once
	sinkWarn sync.Once
	hostDev  HostDeviceEncoder // host frames encode on the device (see HostDeviceEncoder)
	hostAsk  bool              // EncodesHostFrames asked
}

// NewVideo builds a pipeline for src writing to sink. It opens nothing:
// the encoder is opened on the first frame, when the size is known.
func NewVideo(src VideoSource, sink Sink, cfg VideoConfig) (*Video, error) {
	if src == nil || sink == nil {
		return nil, fmt.Errorf("pipeline: NewVideo needs a source and a sink (got %v, %v)", src, sink)
	}
	if cfg.Backend == "" {
		cfg.Backend = encode.BackendX264
	}
	if cfg.Bitrate <= 0 {
		cfg.Bitrate = 2_500_000
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	v := &Video{src: src, sink: sink, cfg: cfg, log: cfg.Logger.With("component", "pipeline", "track", src.Name())}
	v.target.Store(int64(cfg.Bitrate))
	return v, nil
}

// RunVideo builds a video pipeline and runs it until ctx ends or the
// source fails. Use NewVideo and Run to keep a handle for RequestKeyframe,
// SetBitrate and Stats.
func RunVideo(ctx context.Context, src VideoSource, sink Sink, cfg VideoConfig) error {
	v, err := NewVideo(src, sink, cfg)
	if err != nil {
		return err
	}
	return v.Run(ctx)
}

// RequestKeyframe makes the next encoded frame a keyframe (PLI/FIR, a new
// peer). Safe for concurrent use; it does not block.
func (v *Video) RequestKeyframe() { v.keyReq.Store(true) }

// SetBitrate sets the target bitrate in bit/s from the next frame on
// (congestion control). Non-positive values are ignored. Safe for
// concurrent use; it does not block.
func (v *Video) SetBitrate(bps int) {
	if bps > 0 {
		v.rateReq.Store(int64(bps))
		v.target.Store(int64(bps))
	}
}

// Stats returns a snapshot. Safe for concurrent use.
func (v *Video) Stats() VideoStats {
	s := VideoStats{
		Track:         v.src.Name(),
		Encoded:       v.encoded.Load(),
		Sent:          v.sent.Load(),
		Keyframes:     v.keys.Load(),
		Skipped:       v.skipped.Load(),
		EncodeErrors:  v.encErrs.Load(),
		SinkErrors:    v.sinkErrs.Load(),
		DeviceErrors:  v.devErrs.Load(),
		DeviceEncoded: v.devEnc.Load(),
		TargetBitrate: int(v.target.Load()),
	}
	if b := v.backend.Load(); b != nil {
		s.Backend = *b
	}
	if ts, ok := v.src.(trackStats); ok {
		t := ts.Stats()
		s.Emitted, s.Dropped, s.QueueDepth = t.Emitted, t.Dropped, t.QueueDepth
	}
	s.EncodeP50, s.EncodeP99, s.LatencyP50, s.LatencyP99, s.Bitrate = v.win.summary()
	s.Stages = v.stages.summary()
	return s
}

// Run pulls frames from the source, paces, encodes and writes them until
// ctx ends (it then returns context.Cause(ctx)) or the source or encoder
// fails. It closes its encoder before returning. Run may be called once.
func (v *Video) Run(ctx context.Context) error {
	if !v.running.CompareAndSwap(false, true) {
		return errors.New("pipeline: Video.Run called twice")
	}
	clock := v.cfg.Clock
	if clock == nil {
		clock = newSystemClock()
	}
	v.pace = newPacer(v.src.Rate())
	defer func() {
		if v.pending != nil {
			v.pending.Release()
			v.pending = nil
		}
		if v.enc != nil {
			v.enc.Close()
		}
	}()
	for {
		f, err := v.next(ctx)
		v.dequeued = clock.Now()
		if err != nil {
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			if errors.Is(err, tracks.ErrClosed) {
				return nil
			}
			return fmt.Errorf("pipeline: %s: next frame: %w", v.src.Name(), err)
		}
		if f.Device != nil && f.Device.Frames() > 1 {
			err = v.deviceBatch(ctx, clock, f)
		} else {
			f, err = v.frame(ctx, clock, f)
		}
		f.Release()
		if err != nil {
			return err
		}
	}
}

// next returns the frame freshest put aside, else waits for the queue.
func (v *Video) next(ctx context.Context) (*tracks.VideoFrame, error) {
	if f := v.pending; f != nil {
		v.pending = nil
		return f, nil
	}
	return v.src.Next(ctx)
}

// freshest returns the newest single frame queued behind f, releasing
// (and counting as skipped) the ones it overtakes, so a queue that built
// up behind the pacer or a slow encode drains by skipping, not by
// bursting or by sending every frame late. Frames of a batch are never
// skipped (they are meant to be spread out), nor are those of a
// back-pressure track (the model asked for every frame). A batch frame
// found in the queue is kept for the next round.
func (v *Video) freshest(f *tracks.VideoFrame) *tracks.VideoFrame {
	q, ok := v.src.(queuedSource)
	if !ok || f.BatchSize > 1 || q.Spec().Policy == tracks.Block {
		return f
	}
	for {
		nf, ok := q.TryNext()
		if !ok {
			return f
		}
		if nf.BatchSize > 1 {
			v.pending = nf
			return f
		}
		f.Release()
		v.skipped.Add(1)
		f = nf
	}
}

// deviceBatch paces, encodes and sends each picture of a batch device
// frame (EmitDevice of an (N,H,W,3) buffer queues one VideoFrame for the
// whole batch). It does not release f.
func (v *Video) deviceBatch(ctx context.Context, clock Clock, f *tracks.VideoFrame) error {
	n := f.Device.Frames()
	for i := range n {
		f.Batch, f.BatchSize = i, n
		if _, err := v.frame(ctx, clock, f); err != nil { // a batch frame is never swapped
			return err
		}
	}
	return nil
}

// frame paces, encodes and sends one frame, or a newer single frame that
// overtook it while it waited for its slot. It returns the frame it used,
// which the caller releases.
func (v *Video) frame(ctx context.Context, clock Clock, f *tracks.VideoFrame) (*tracks.VideoFrame, error) {
	slot, gap := v.pace.schedule(clock.Now(), f.Capture, f.Batch, f.BatchSize)
	if err := clock.SleepUntil(ctx, slot); err != nil {
		return f, err
	}
	paced := clock.Now()
	if nf := v.freshest(f); nf != f {
		f = nf
		v.pace.swapped(f.Capture)
		v.dequeued = paced // the newer frame left the queue just now
	}
	if v.t0.IsZero() {
		v.t0 = slot
	}
	pts := ticks90k(slot.Sub(v.t0))
	start := time.Now()
	converted := start
	var (
		n       int
		key, ok bool
		fatal   error
	)
	switch {
	case f.Device != nil:
		n, key, ok = v.encodeDevice(f, pts)
	case v.hostOnDevice() != nil:
		n, key, ok = v.encodeHostOnDevice(f, pts)
	default:
		n, key, ok, fatal = v.encodeHost(f, pts)
		if ok {
			converted = v.enc.ConvertedAt()
		}
	}
	if fatal != nil {
		return f, fmt.Errorf("pipeline: %s: %w", v.src.Name(), fatal)
	}
	if !ok {
		return f, nil // counted and logged by the encode helpers
	}
	encoded := time.Now()
	v.encoded.Add(1)
	if n == 0 {
		return f, nil
	}
	// Stage times: queue and pacer on the pipeline's clock, the rest
	// measured on the system clock from the start of the encode.
	st := [nStages]time.Duration{
		stageDequeued:  v.dequeued.Sub(f.Capture),
		stagePaced:     paced.Sub(f.Capture),
		stageConverted: converted.Sub(start),
		stageEncoded:   encoded.Sub(start),
	}
	v.send(clock, f, n, key, pts, gap, start, &st)
	return f, nil
}

// send hands one access unit to the sink, timing it on the RTP clock, and
// records its stats. st holds the frame's stage times so far; the
// converted and encoded ones relative to start.
func (v *Video) send(clock Clock, f *tracks.VideoFrame, n int, key bool, pts int64, gap time.Duration, start time.Time, st *[nStages]time.Duration) {
	// The sink advances the RTP clock by each duration. Aim the next
	// frame's timestamp at its planned slot, and absorb any lag from a
	// stall, so RTP time stays on the presentation clock.
	dur := pts + ticks90k(gap) - v.rtpNext
	if dur < 1 {
		dur = 1
	}
	v.rtpNext += dur
	handed := time.Now()
	err := v.sink.WriteSample(v.out[:n], time.Duration(dur)*time.Second/90000, f.Capture, key)
	returned := time.Now()
	if v.cfg.Tap != nil { // the peers first, the recorder second; it records with or without a peer
		w, h := f.Width, f.Height
		if f.Device != nil {
			w, h = f.Device.Size()
		}
		if v.cfg.Tap.Packet(v.out[:n], key, w, h, time.Duration(dur)*time.Second/90000) {
			v.keyReq.Store(true)
		}
	}
	if err != nil {
		v.sinkErrs.Add(1)
		v.sinkWarn.Do(func() { v.log.Warn("sink write failed; counting further failures in stats", "err", err) })
		return
	}
	wire := clock.Now()
	socket := returned
	if wt, ok := v.sink.(wireTimer); ok && v.cfg.Clock == nil {
		if t := wt.WireTime(); !t.Before(handed) && t.Before(returned) {
			socket = t
		}
	}
	encodeTime := st[stageEncoded]
	paced := st[stagePaced]
	st[stageConverted] += paced
	st[stageEncoded] += paced
	st[stageHanded] = paced + handed.Sub(start)
	st[stageWire] = paced + socket.Sub(start)
	v.stages.record(st)
	v.sent.Add(1)
	if key {
		v.keys.Add(1)
	}
	v.win.record(encodeTime, wire.Sub(f.Capture), wire, n)
}

// wireTimer is implemented by sinks that know when the latest sample's
// last packet was written to the socket (peer.Output).
type wireTimer interface{ WireTime() time.Time }

func ticks90k(d time.Duration) int64 { return int64(d) * 90000 / int64(time.Second) }

// encodeHost encodes a host frame. ok is false when the frame was not
// encoded (counted and logged); fatal is set when the encoder cannot be
// opened at all.
func (v *Video) encodeHost(f *tracks.VideoFrame, pts int64) (n int, key, ok bool, fatal error) {
	if v.enc == nil {
		enc, err := encode.NewVideoEncoder(encode.VideoConfig{
			Backend: v.cfg.Backend, Width: f.Width, Height: f.Height,
			Bitrate: int(v.target.Load()), Logger: v.log, StageCPU: v.cfg.StageCPU,
		})
		if errors.Is(err, encode.ErrBadImage) {
			v.encErrs.Add(1)
			v.warned.Do(func() { v.log.Warn("frame rejected by the encoder", "err", err) })
			return 0, false, false, nil
		}
		if err != nil {
			return 0, false, false, err
		}
		v.enc = enc
		b := string(enc.Backend())
		v.backend.Store(&b)
		v.log.Info("video encoder opened", "backend", b, "width", f.Width, "height", f.Height)
		v.rateReq.Store(0)
	}
	if bps := v.rateReq.Swap(0); bps > 0 {
		v.enc.SetBitrate(int(bps))
	}
	if v.keyReq.Swap(false) {
		v.enc.RequestKeyframe()
	}
	v.ensureOut(f.Width*f.Height*3/2 + 4096)
	n, key, err := v.enc.Encode(encode.Image{Pix: f.Pix, Width: f.Width, Height: f.Height}, pts, v.out)
	if errors.Is(err, io.ErrShortBuffer) {
		// That packet is lost; the encoder makes the next one a keyframe.
		v.ensureOut(2 * n)
	}
	if errors.Is(err, encode.ErrUnavailable) {
		return 0, false, false, err // a reopen (new size, VP8 bitrate) failed
	}
	if err != nil {
		v.encErrs.Add(1)
		v.warned.Do(func() { v.log.Warn("encode failed; counting further failures in stats", "err", err) })
		return 0, false, false, nil
	}
	return n, key, true, nil
}

// encodeDevice encodes a device frame; ok is false when it was not
// (counted and logged).
func (v *Video) encodeDevice(f *tracks.VideoFrame, pts int64) (n int, key, ok bool) {
	d := v.cfg.Device
	if d == nil {
		v.devErrs.Add(1)
		v.devWarn.Do(func() { v.log.Error("dropping device frames", "err", errNoDeviceEncoder) })
		return 0, false, false
	}
	v.deviceRequests(d)
	w, h := f.Device.Size()
	v.ensureOut(w*h*3/2 + 4096)
	var err error
	if f.BatchSize > 1 {
		be, ok := d.(DeviceBatchEncoder)
		if !ok {
			v.devErrs.Add(1)
			v.devWarn.Do(func() { v.log.Error("dropping batch device frames", "err", errNoBatchEncoder) })
			return 0, false, false
		}
		n, key, err = be.EncodeBatch(f.Device, f.Batch, pts, v.out)
	} else {
		n, key, err = d.Encode(f.Device, pts, v.out)
	}
	if errors.Is(err, io.ErrShortBuffer) {
		v.ensureOut(2 * n) // any encoder's short buffer: encode's and gpu's wrap io.ErrShortBuffer
	}
	if err != nil {
		v.devErrs.Add(1)
		v.devWarn.Do(func() { v.log.Error("device encode failed; counting further failures in stats", "err", err) })
		return 0, false, false
	}
	v.noteDeviceBackend(d)
	v.devEnc.Add(1)
	return n, key, true
}

// deviceRequests hands pending bitrate and keyframe requests to d.
func (v *Video) deviceRequests(d DeviceEncoder) {
	if bps := v.rateReq.Swap(0); bps > 0 {
		d.SetBitrate(int(bps))
	}
	if v.keyReq.Swap(false) {
		d.RequestKeyframe()
	}
}

// hostOnDevice returns the device encoder when host frames should go
// through it (HostDeviceEncoder), deciding at the first host frame.
func (v *Video) hostOnDevice() HostDeviceEncoder {
	if !v.hostAsk {
		v.hostAsk = true
		if hd, ok := v.cfg.Device.(HostDeviceEncoder); ok && hd.EncodesHostFrames() {
			v.hostDev = hd
			v.log.Info("host frames encode on the device (upload + kernel)")
		}
	}
	return v.hostDev
}

// encodeHostOnDevice encodes a host frame with the device encoder; ok is
// false when it was not (counted as an encode error and logged).
func (v *Video) encodeHostOnDevice(f *tracks.VideoFrame, pts int64) (n int, key, ok bool) {
	d := v.hostDev
	v.deviceRequests(d)
	v.ensureOut(f.Width*f.Height*3/2 + 4096)
	n, key, err := d.EncodeRGB(f.Pix, f.Width, f.Height, 0, pts, v.out)
	if errors.Is(err, io.ErrShortBuffer) {
		v.ensureOut(2 * n)
	}
	if err != nil {
		v.encErrs.Add(1)
		v.warned.Do(func() {
			v.log.Warn("device encode of a host frame failed; counting further failures in stats", "err", err)
		})
		return 0, false, false
	}
	v.noteDeviceBackend(d)
	v.devEnc.Add(1)
	return n, key, true
}

// noteDeviceBackend records what the device encoder reports once it has
// encoded: an encoder that opens at the first frame knows its backend
// (cuda+h264_nvenc, cuda+libx264) only then, and may change it when it
// reopens. It allocates only when the name changes.
func (v *Video) noteDeviceBackend(d DeviceEncoder) {
	var b string
	switch bk := d.(type) {
	case interface{ Backend() encode.Backend }:
		b = string(bk.Backend())
	case interface{ Backend() string }:
		b = bk.Backend()
	default:
		b = "device"
	}
	if cur := v.backend.Load(); cur == nil || *cur != b {
		v.backend.Store(&b)
	}
}

// ensureOut grows the packet buffer to at least n bytes (allocates only
// when the picture grows).
func (v *Video) ensureOut(n int) {
	if len(v.out) < n {
		v.out = make([]byte, n)
	}
}
