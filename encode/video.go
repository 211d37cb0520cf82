package encode

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"time"

	"github.com/asticode/go-astiav"

	"github.com/framewire/framewire/tracks"
)

// Backend names a video encoder implementation.
type Backend string

// The video backends, in the order probing prefers them.
const (
	BackendNVENC Backend = "h264_nvenc" // NVIDIA hardware H.264, fed host frames.
	BackendX264  Backend = "libx264"    // CPU H.264, constrained baseline.
	BackendVP8   Backend = "libvpx_vp8" // CPU VP8, realtime.
)

// ffmpegName is the FFmpeg encoder's name.
func (b Backend) ffmpegName() string {
	if b == BackendVP8 {
		return "libvpx" // FFmpeg's VP8 encoder; VP9's is libvpx-vp9
	}
	return string(b)
}

// Codec is the RTP-level codec a backend produces.
func (b Backend) Codec() Codec {
	if b == BackendVP8 {
		return CodecVP8
	}
	return CodecH264
}

// Codec is a codec as negotiated on the wire.
type Codec string

// Wire codecs.
const (
	CodecH264 Codec = "video/H264"
	CodecVP8  Codec = "video/VP8"
	CodecOpus Codec = "audio/opus"
)

// VideoConfig configures a VideoEncoder. The zero value of every field but
// Width and Height picks a sensible default.
type VideoConfig struct {
	Backend Backend // Default BackendX264.
	Width   int     // Picture width in pixels; odd sizes are padded to even.
	Height  int     // Picture height in pixels; odd sizes are padded to even.
	FPS     int     // Nominal frame rate, for rate control. Default 30.
	Bitrate int     // Target bitrate in bit/s. Default 2.5 Mbit/s.
	// Threads is the encoder's thread count. 0 picks the measured default:
	// one thread (one slice per frame) for libx264, see DefaultX264Threads.
	// More than one makes libx264 use sliced threads (one slice per thread).
	Threads int
	// Pixel is the planar format fed to the codec. Default PixelNV12 for
	// NVENC and PixelI420 otherwise (libx264 and libvpx take only I420 here).
	Pixel  PixelFormat
	Logger *slog.Logger
	// StageCPU, when set, gets each Encode's conversion and encode
	// thread CPU added (see StageCPU). Default nil: not measured.
	StageCPU *StageCPU
}

// DefaultX264Threads is libx264's thread count when VideoConfig.Threads is
// 0: one thread, one slice per frame. bench/BenchmarkX264Threads measured
// sliced threads (2 threads, 2 slices) against it at 720p, interleaved
// frame by frame on the 2-core CI host: 1.10× the throughput (p50 11.2 ms
// against 12.4 ms per frame) with one encoder running. That is a tenth
// better, not the two-fold a second thread would need to pay for itself
// once two or more sessions encode at once (each encoder's second thread
// then only adds synchronisation), and it costs two slices per picture,
// so one thread per encoder stays the default: the engine scales over
// sessions, not within a frame.
const DefaultX264Threads = 1

func (c *VideoConfig) defaults() error {
	if c.Backend == "" {
		c.Backend = BackendX264
	}
	switch c.Backend {
	case BackendX264, BackendNVENC, BackendVP8:
	default:
		return fmt.Errorf("encode: unknown backend %q, want %s, %s or %s", c.Backend, BackendNVENC, BackendX264, BackendVP8)
	}
	if c.Width <= 0 || c.Height <= 0 {
		return fmt.Errorf("%w: size %dx%d, want positive width and height", ErrBadImage, c.Width, c.Height)
	}
	if c.FPS <= 0 {
		c.FPS = 30
	}
	if c.Bitrate <= 0 {
		c.Bitrate = 2_500_000
	}
	if c.Threads <= 0 && c.Backend == BackendX264 {
		c.Threads = DefaultX264Threads
	}
	if c.Pixel == PixelI420 && c.Backend == BackendNVENC {
		c.Pixel = PixelNV12
	}
	if c.Pixel != PixelI420 && c.Backend != BackendNVENC {
		return fmt.Errorf("encode: %s takes %s input here, not %s", c.Backend, PixelI420, c.Pixel)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Image is a packed 8-bit RGB24 picture in host memory: the same type as
// tracks.Image (see there for the layout; Stride 0 means Width*3), so a
// model's frame reaches the encoder without conversion.
type Image = tracks.Image

// VideoEncoder converts RGB24 pictures (Converter) and encodes them with
// one FFmpeg encoder: one encoder per output track, its packets shared by
// every peer. It is not safe for concurrent use: one goroutine (the track's
// pipeline) owns it, and SetBitrate and RequestKeyframe take effect on the
// next Encode of that goroutine. The caller must call Close.
type VideoEncoder struct {
	cfg    VideoConfig
	codec  *astiav.Codec
	cc     *astiav.CodecContext
	pkt    *astiav.Packet
	conv   *Converter
	encW   int // padded (even) coded size
	encH   int
	pts    int64
	key    bool // force a keyframe on the next Encode
	rate   int  // pending bitrate, 0 when none
	closed bool
	conved time.Time // when the latest Encode finished converting
}

// NewVideoEncoder opens the configured backend. It returns an error
// wrapping ErrUnavailable when the codec is missing or refuses to open
// (no GPU, no NVENC, old driver). The caller must call Close.
func NewVideoEncoder(cfg VideoConfig) (*VideoEncoder, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	// H.264 signals BT.709 in its VUI; VP8 cannot signal a matrix and
	// browsers decode it as BT.601.
	cs := colour{bt709: cfg.Backend != BackendVP8}
	conv, err := newConverter(cfg.Pixel, cs)
	if err != nil {
		return nil, err
	}
	conv.shared = true // sharedPictures: the codec copies each picture in send
	e := &VideoEncoder{cfg: cfg, conv: conv, pkt: astiav.AllocPacket()}
	if err := e.open(cfg.Width, cfg.Height); err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

// Backend reports which encoder this is.
func (e *VideoEncoder) Backend() Backend { return e.cfg.Backend }

// Size reports the coded size (the configured size padded to even).
func (e *VideoEncoder) Size() (w, h int) { return e.encW, e.encH }

func even(n int) int { return (n + 1) &^ 1 }

// vbvBuffer is the rate-control buffer: two frames' worth of bits, so a
// keyframe cannot queue much more than a frame of delay in the network.
// bench/BenchmarkX264Settings (720p, 2.5 Mbit/s, a keyframe every 60
// frames as a PLI would ask) measured one frame's worth instead: access
// unit p95 9.8 KB against 14.7 KB (31 against 47 ms to leave at the
// target rate) but 1.05 dB lower mean PSNR (35.14 against 36.19) and no
// change in encode time; intra refresh in place of the forced IDRs gave
// the same sizes and 35.36 dB (browsers still need an IDR to start or
// recover). Neither lowers p95 at equal quality, so two frames stay.
func (e *VideoEncoder) vbvBuffer(bps int) int { return bps / e.cfg.FPS * 2 }

func (e *VideoEncoder) open(w, h int) error {
	codec := astiav.FindEncoderByName(e.cfg.Backend.ffmpegName())
	if codec == nil {
		return fmt.Errorf("%w: %s is not in this FFmpeg build", ErrUnavailable, e.cfg.Backend)
	}
	e.encW, e.encH = even(w), even(h)
	cc := astiav.AllocCodecContext(codec)
	if cc == nil {
		return fmt.Errorf("encode: alloc %s context", e.cfg.Backend)
	}
	e.cc = cc
	cc.SetWidth(e.encW)
	cc.SetHeight(e.encH)
	cc.SetPixelFormat(e.cfg.Pixel.av())
	cc.SetTimeBase(astiav.NewRational(1, 90000))
	cc.SetFramerate(astiav.NewRational(e.cfg.FPS, 1))
	cc.SetBitRate(int64(e.cfg.Bitrate))
	cc.SetMaxBFrames(0)
	cc.SetColorRange(astiav.ColorRangeMpeg)
	if e.cfg.Backend != BackendVP8 {
		cc.SetColorSpace(astiav.ColorSpaceBt709)
		cc.SetColorPrimaries(astiav.ColorPrimariesBt709)
		cc.SetColorTransferCharacteristic(astiav.ColorTransferCharacteristicBt709)
	}
	if e.cfg.Threads > 0 {
		cc.SetThreadCount(e.cfg.Threads)
	}
	opts := astiav.NewDictionary()
	defer opts.Free()
	switch e.cfg.Backend {
	case BackendX264:
		// Constrained baseline, no B-frames, no lookahead; without
		// AV_CODEC_FLAG_GLOBAL_HEADER libx264 writes SPS/PPS in-band, and
		// repeat-headers puts them before every keyframe, which a browser
		// joining mid-stream needs. Keyframes come on request (PLI/FIR).
		cc.SetProfile(astiav.ProfileH264ConstrainedBaseline)
		cc.SetGopSize(-1) // leave keyint to x264-params below
		cc.SetRateControlMaxRate(int64(e.cfg.Bitrate))
		cc.SetRateControlBufferSize(e.vbvBuffer(e.cfg.Bitrate))
	case BackendNVENC:
		cc.SetProfile(astiav.ProfileH264ConstrainedBaseline)
		// NVENC takes gop_size literally (-1 would keep the preset's GOP):
		// the largest GOP it accepts is as good as infinite, keyframes
		// then come only on request.
		cc.SetGopSize(math.MaxInt32)
		cc.SetRateControlMaxRate(int64(e.cfg.Bitrate))
		cc.SetRateControlBufferSize(e.vbvBuffer(e.cfg.Bitrate))
	case BackendVP8:
		cc.SetGopSize(math.MaxInt32) // keyframes on request (libvpx: kf_max_dist)
		cc.SetRateControlMaxRate(int64(e.cfg.Bitrate))
		cc.SetRateControlMinRate(int64(e.cfg.Bitrate))
		cc.SetRateControlBufferSize(e.cfg.Bitrate)
		cc.SetQmin(4)
	}
	for _, o := range CodecOptions(e.cfg.Backend, e.cfg.Threads) {
		_ = opts.Set(o.Key, o.Value, 0)
	}
	if err := cc.Open(codec, opts); err != nil {
		// Free the unopened context now: left in e.cc, the next Encode of
		// the same size would feed it and fail with EINVAL instead of
		// trying to open again.
		e.freeCodec()
		return fmt.Errorf("%w: open %s %dx%d: %w", ErrUnavailable, e.cfg.Backend, e.encW, e.encH, err)
	}
	e.codec = codec
	e.key = true
	return nil
}

func (e *VideoEncoder) freeCodec() {
	if e.cc != nil {
		e.cc.Free()
		e.cc = nil
	}
}

// RequestKeyframe makes the next encoded frame an IDR frame (a VP8 key
// frame) that carries the parameter sets.
func (e *VideoEncoder) RequestKeyframe() { e.key = true }

// SetBitrate changes the target bitrate (bit/s) from the next Encode on.
// libx264 and h264_nvenc reconfigure in place (FFmpeg's wrappers compare
// avctx->bit_rate on every frame); libx264 does so without a keyframe.
// FFmpeg's h264_nvenc reconfigures with forceIDR set, and its libvpx
// wrapper cannot change the bitrate of an open encoder, so VP8 reopens:
// for those two a change costs a keyframe, and they take only changes of
// at least a fifth of the current rate (the congestion controller moves
// its estimate many times a second). Non-positive values are ignored.
func (e *VideoEncoder) SetBitrate(bps int) {
	if bps > 0 {
		e.rate = bps
	}
}

// Bitrate reports the target bitrate in bit/s.
func (e *VideoEncoder) Bitrate() int { return e.cfg.Bitrate }

// worthKeyframe reports whether b should move from bitrate cur to next:
// always for libx264; for the backends where a change costs a keyframe
// (VP8 reopens, h264_nvenc forces an IDR) only when it is at least a fifth
// of cur.
func worthKeyframe(b Backend, cur, next int) bool {
	if b != BackendVP8 && b != BackendNVENC {
		return true
	}
	d := next - cur
	if d < 0 {
		d = -d
	}
	return d*5 >= cur
}

func (e *VideoEncoder) applyBitrate() error {
	bps := e.rate
	e.rate = 0
	if bps == e.cfg.Bitrate {
		return nil
	}
	if !worthKeyframe(e.cfg.Backend, e.cfg.Bitrate, bps) {
		return nil
	}
	if e.cfg.Backend == BackendVP8 {
		e.cfg.Bitrate = bps
		e.cfg.Logger.Debug("reopening encoder for a new bitrate", "backend", e.cfg.Backend, "bitrate", bps)
		e.freeCodec()
		return e.open(e.encW, e.encH)
	}
	e.cfg.Bitrate = bps
	e.cc.SetBitRate(int64(bps))
	e.cc.SetRateControlMaxRate(int64(bps))
	e.cc.SetRateControlBufferSize(e.vbvBuffer(bps))
	return nil
}

// Encode converts img, encodes it with presentation time pts (90 kHz
// units) and copies the resulting packet into out. It returns the number of
// bytes written (0 when the encoder produced no packet for this frame) and
// whether the packet is a keyframe. When out is too small it returns
// ErrShortBuffer and the size needed; that packet is lost, and the next
// Encode is made a keyframe so the stream stays decodable. A change of
// image size reopens the encoder and its first packet is a keyframe. pts
// must increase; a pts not above the previous one is moved just past it.
// img is only read during the call. In steady state Encode does not
// allocate Go memory.
func (e *VideoEncoder) Encode(img Image, pts int64, out []byte) (n int, key bool, err error) {
	if e.closed {
		return 0, false, ErrClosed
	}
	if err := img.Validate(); err != nil {
		return 0, false, err
	}
	if e.cc == nil || even(img.Width) != e.encW || even(img.Height) != e.encH {
		if e.cc != nil {
			e.cfg.Logger.Info("frame size changed; reopening encoder", "backend", e.cfg.Backend,
				"from", strconv.Itoa(e.encW)+"x"+strconv.Itoa(e.encH), "to", strconv.Itoa(img.Width)+"x"+strconv.Itoa(img.Height))
		}
		e.freeCodec()
		if err := e.open(img.Width, img.Height); err != nil {
			return 0, false, err
		}
	}
	if e.rate != 0 {
		if err := e.applyBitrate(); err != nil {
			return 0, false, err
		}
	}
	clock := e.cfg.StageCPU.start()
	encoded := false
	defer func() { clock.done(encoded) }()
	// Odd sizes: scale into the even picture (a one-pixel stretch is
	// invisible and keeps the chroma planes aligned).
	if err := e.conv.Convert(img, e.encW, e.encH); err != nil {
		return 0, false, err
	}
	clock.converted()
	encoded = true
	e.conved = time.Now()
	frame := e.conv.picture()
	if pts <= e.pts && e.pts != 0 {
		pts = e.pts + 1 // encoders need strictly increasing pts
	}
	e.pts = pts
	frame.SetPts(pts)
	setKeyRequest(frame, e.key)
	st := sendFrame(e.cc, frame)
	e.conv.release()
	if st < 0 {
		// e.key stays set: a requested keyframe is not lost with the frame.
		return 0, false, fmt.Errorf("encode: %s send frame: %w", e.cfg.Backend, st.err())
	}
	e.key = false
	n, key, err = e.drain(out)
	if errors.Is(err, ErrShortBuffer) {
		e.key = true
	}
	return n, key, err
}

// drain collects every packet the encoder has ready into out.
func (e *VideoEncoder) drain(out []byte) (n int, key bool, err error) {
	for {
		if st := receivePacket(e.cc, e.pkt); st < 0 {
			if st.done() {
				return n, key, nil
			}
			return n, key, fmt.Errorf("encode: %s receive packet: %w", e.cfg.Backend, st.err())
		}
		m, k, err := packetInto(e.pkt, out[n:])
		e.pkt.Unref()
		if err != nil {
			// Drop the rest of this frame's packets, report the size needed.
			for receivePacket(e.cc, e.pkt) >= 0 {
				m += e.pkt.Size()
				e.pkt.Unref()
			}
			return n + m, key, fmt.Errorf("%w: packet of %d bytes, buffer holds %d", ErrShortBuffer, n+m, len(out))
		}
		n += m
		key = key || k
	}
}

// ConvertedAt reports when the latest Encode finished converting its
// picture (RGB → YUV) and began encoding it, for per-stage timing.
func (e *VideoEncoder) ConvertedAt() time.Time { return e.conved }

// Close frees the codec, frames and scaler. It is idempotent.
func (e *VideoEncoder) Close() error {
	if e.closed {
		return nil
	}
	e.closed = true
	e.freeCodec()
	if e.pkt != nil {
		e.pkt.Free()
		e.pkt = nil
	}
	if e.conv != nil {
		e.conv.Close()
	}
	return nil
}

// Option is one FFmpeg private option of an encoder.
type Option struct{ Key, Value string }

// CodecOptions returns the FFmpeg private options of b's encoder with
// threads threads (0: the codec's choice; for libx264 sliced threads, as
// tune=zerolatency sets): the one place they are written.
// NewVideoEncoder applies them, and so does package gpu for its device
// encoders (h264_nvenc on CUDA frames takes BackendNVENC's, libx264 on
// NV12 from the device BackendX264's).
//
// H.264 (both): constrained baseline, no B-frames, no lookahead; SPS/PPS
// in-band before every keyframe (a browser joining mid-stream needs
// them); keyframes only on request (PLI/FIR), as IDR.
func CodecOptions(b Backend, threads int) []Option {
	switch b {
	case BackendX264:
		params := "keyint=infinite:scenecut=0:repeat-headers=1:aud=0"
		switch {
		case threads > 1:
			params += ":sliced-threads=1"
		case threads == 1:
			params += ":sliced-threads=0"
		} // 0: tune=zerolatency's sliced threads (frame threads would add latency)
		return []Option{{"preset", "ultrafast"}, {"tune", "zerolatency"}, {"profile", "baseline"}, {"forced-idr", "1"}, {"x264-params", params}}
	case BackendNVENC:
		return []Option{{"preset", "p1"}, {"tune", "ull"}, {"rc", "cbr"}, {"zerolatency", "1"}, {"delay", "0"}, {"forced-idr", "1"}, {"profile", "baseline"}}
	case BackendVP8:
		return []Option{{"deadline", "realtime"}, {"cpu-used", "8"}, {"lag-in-frames", "0"}, {"error-resilient", "default"}, {"auto-alt-ref", "0"}}
	}
	return nil
}
