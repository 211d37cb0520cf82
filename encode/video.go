package encode

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"

	"github.com/asticode/go-astiav"
)

// Backend names a video encoder implementation.
type Backend string

// The video backends, in the order probing prefers them.
const (
	BackendNVENC Backend = "h264_nvenc" // NVIDIA hardware H.264, fed host frames.
	BackendX264  Backend = "libx264"    // CPU H.264, constrained baseline.
	BackendVP8   Backend = "libvpx_vp8" // CPU VP8, realtime.
)

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
	Threads int     // Encoder threads; 0 lets the codec choose.
	Logger  *slog.Logger
}

func (c *VideoConfig) defaults() error {
	if c.Backend == "" {
		c.Backend = BackendX264
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
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Image is a packed 8-bit RGB24 picture in host memory. Stride is the
// distance in bytes between rows; 0 means Width*3.
type Image struct {
	Pix           []byte
	Width, Height int
	Stride        int
}

func (im Image) stride() int {
	if im.Stride == 0 {
		return im.Width * 3
	}
	return im.Stride
}

// Validate reports whether the image describes a complete RGB24 picture.
func (im Image) Validate() error {
	if im.Width <= 0 || im.Height <= 0 {
		return fmt.Errorf("%w: size %dx%d, want positive width and height", ErrBadImage, im.Width, im.Height)
	}
	s := im.stride()
	if s < im.Width*3 {
		return fmt.Errorf("%w: stride %d < width*3 = %d", ErrBadImage, s, im.Width*3)
	}
	if need := s*(im.Height-1) + im.Width*3; len(im.Pix) < need {
		return fmt.Errorf("%w: %d bytes for %dx%d RGB24 with stride %d, want at least %d", ErrBadImage, len(im.Pix), im.Width, im.Height, s, need)
	}
	return nil
}

// VideoEncoder converts RGB24 pictures with swscale and encodes them with
// one FFmpeg encoder. It is not safe for concurrent use: one goroutine (the
// track's pipeline) owns it. SetBitrate and RequestKeyframe take effect on
// the next Encode. The caller must call Close.
type VideoEncoder struct {
	cfg    VideoConfig
	cc     *astiav.CodecContext
	frame  *astiav.Frame
	pkt    *astiav.Packet
	sws    scaler
	encW   int // padded (even) coded size
	encH   int
	pts    int64
	key    bool // force a keyframe on the next Encode
	rate   int  // pending bitrate, 0 when none
	closed bool
}

// NewVideoEncoder opens the configured backend. It returns an error
// wrapping ErrUnavailable when the codec is missing or refuses to open
// (no GPU, no NVENC, old driver).
func NewVideoEncoder(cfg VideoConfig) (*VideoEncoder, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	e := &VideoEncoder{cfg: cfg}
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

func (e *VideoEncoder) open(w, h int) error {
	codec := astiav.FindEncoderByName(string(e.cfg.Backend))
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
	cc.SetPixelFormat(astiav.PixelFormatYuv420P)
	cc.SetTimeBase(astiav.NewRational(1, 90000))
	cc.SetFramerate(astiav.NewRational(e.cfg.FPS, 1))
	cc.SetBitRate(int64(e.cfg.Bitrate))
	cc.SetMaxBFrames(0)
	cc.SetColorRange(astiav.ColorRangeMpeg)
	cc.SetColorSpace(astiav.ColorSpaceBt709)
	cc.SetColorPrimaries(astiav.ColorPrimariesBt709)
	cc.SetColorTransferCharacteristic(astiav.ColorTransferCharacteristicBt709)
	if e.cfg.Threads > 0 {
		cc.SetThreadCount(e.cfg.Threads)
	}
	opts := astiav.NewDictionary()
	defer opts.Free()
	switch e.cfg.Backend {
	case BackendX264:
		// Constrained baseline, no B-frames, no lookahead; without
		// AV_CODEC_FLAG_GLOBAL_HEADER libx264 repeats SPS/PPS on every
		// keyframe, which a browser joining mid-stream needs.
		cc.SetProfile(astiav.ProfileH264ConstrainedBaseline)
		cc.SetGopSize(-1) // x264 default keyint: keyframes on request (PLI) and when scenecut says so
		cc.SetRateControlMaxRate(int64(e.cfg.Bitrate))
		cc.SetRateControlBufferSize(e.cfg.Bitrate / e.cfg.FPS * 2)
		_ = opts.Set("preset", "ultrafast", 0)
		_ = opts.Set("tune", "zerolatency", 0)
		_ = opts.Set("profile", "baseline", 0)
		_ = opts.Set("forced-idr", "1", 0)
		_ = opts.Set("x264-params", "keyint=infinite:scenecut=0:repeat-headers=1:aud=0", 0)
	case BackendNVENC:
		cc.SetProfile(astiav.ProfileH264ConstrainedBaseline)
		cc.SetGopSize(-1) // infinite GOP: keyframes on request
		_ = opts.Set("preset", "p1", 0)
		_ = opts.Set("tune", "ull", 0)
		_ = opts.Set("rc", "cbr", 0)
		_ = opts.Set("zerolatency", "1", 0)
		_ = opts.Set("delay", "0", 0)
		_ = opts.Set("forced-idr", "1", 0)
		_ = opts.Set("profile", "baseline", 0)
		cc.SetRateControlMaxRate(int64(e.cfg.Bitrate))
		cc.SetRateControlBufferSize(e.cfg.Bitrate / e.cfg.FPS * 2)
	case BackendVP8:
		cc.SetGopSize(-1)
		_ = opts.Set("deadline", "realtime", 0)
		_ = opts.Set("cpu-used", "8", 0)
		_ = opts.Set("lag-in-frames", "0", 0)
		_ = opts.Set("error-resilient", "default", 0)
		_ = opts.Set("auto-alt-ref", "0", 0)
		cc.SetRateControlMaxRate(int64(e.cfg.Bitrate))
		cc.SetRateControlMinRate(int64(e.cfg.Bitrate))
		cc.SetRateControlBufferSize(e.cfg.Bitrate)
		cc.SetQmin(4)
	default:
		return fmt.Errorf("encode: unknown backend %q, want %s, %s or %s", e.cfg.Backend, BackendNVENC, BackendX264, BackendVP8)
	}
	if err := cc.Open(codec, opts); err != nil {
		return fmt.Errorf("%w: open %s %dx%d: %w", ErrUnavailable, e.cfg.Backend, e.encW, e.encH, err)
	}
	e.frame = astiav.AllocFrame()
	e.frame.SetWidth(e.encW)
	e.frame.SetHeight(e.encH)
	e.frame.SetPixelFormat(astiav.PixelFormatYuv420P)
	if err := e.frame.AllocBuffer(0); err != nil {
		return fmt.Errorf("encode: frame buffer: %w", err)
	}
	if e.pkt == nil {
		e.pkt = astiav.AllocPacket()
	}
	e.key = true
	return nil
}

func (e *VideoEncoder) freeCodec() {
	if e.frame != nil {
		e.frame.Free()
		e.frame = nil
	}
	if e.cc != nil {
		e.cc.Free()
		e.cc = nil
	}
}

// RequestKeyframe makes the next encoded frame an IDR frame that carries
// the parameter sets.
func (e *VideoEncoder) RequestKeyframe() { e.key = true }

// SetBitrate changes the target bitrate (bit/s) from the next frame on,
// without reopening the codec: libx264 and h264_nvenc reconfigure in place.
func (e *VideoEncoder) SetBitrate(bps int) {
	if bps > 0 {
		e.rate = bps
	}
}

// Bitrate reports the current target bitrate in bit/s.
func (e *VideoEncoder) Bitrate() int { return e.cfg.Bitrate }

// Encode converts img, encodes it with presentation time pts (90 kHz
// units) and copies the resulting packet into out. It returns the number of
// bytes written (0 when the encoder produced no packet for this frame) and
// whether the packet is a keyframe. A change of image size reopens the
// encoder and the next packet is a keyframe. img is only read during the
// call. In steady state Encode does not allocate Go memory.
func (e *VideoEncoder) Encode(img Image, pts int64, out []byte) (n int, key bool, err error) {
	if e.closed {
		return 0, false, ErrClosed
	}
	if err := img.Validate(); err != nil {
		return 0, false, err
	}
	if even(img.Width) != e.encW || even(img.Height) != e.encH {
		e.cfg.Logger.Info("frame size changed; reopening encoder", "backend", e.cfg.Backend,
			"from", strconv.Itoa(e.encW)+"x"+strconv.Itoa(e.encH), "to", strconv.Itoa(img.Width)+"x"+strconv.Itoa(img.Height))
		e.freeCodec()
		if err := e.open(img.Width, img.Height); err != nil {
			return 0, false, err
		}
	}
	if e.rate != 0 {
		e.cfg.Bitrate = e.rate
		e.cc.SetBitRate(int64(e.rate))
		e.cc.SetRateControlMaxRate(int64(e.rate))
		if e.cfg.Backend == BackendVP8 {
			e.cc.SetRateControlMinRate(int64(e.rate))
		}
		e.rate = 0
	}
	if err := e.frame.MakeWritable(); err != nil {
		return 0, false, fmt.Errorf("encode: make frame writable: %w", err)
	}
	// Odd sizes: scale into the even picture (a one-pixel stretch is
	// invisible and keeps the chroma planes aligned).
	if err := e.sws.ensure(img.Width, img.Height, astiav.PixelFormatRgb24, e.encW, e.encH, astiav.PixelFormatYuv420P); err != nil {
		return 0, false, err
	}
	if err := e.sws.toFrame(img.Pix, img.stride(), img.Height, e.frame); err != nil {
		return 0, false, fmt.Errorf("encode: swscale: %w", err)
	}
	if pts <= e.pts && e.pts != 0 {
		pts = e.pts + 1 // encoders need strictly increasing pts
	}
	e.pts = pts
	e.frame.SetPts(pts)
	setKeyRequest(e.frame, e.key)
	e.key = false
	if err := e.cc.SendFrame(e.frame); err != nil {
		return 0, false, fmt.Errorf("encode: %s send frame: %w", e.cfg.Backend, err)
	}
	return e.drain(out)
}

// drain collects every packet the encoder has ready into out.
func (e *VideoEncoder) drain(out []byte) (n int, key bool, err error) {
	for {
		if err := e.cc.ReceivePacket(e.pkt); err != nil {
			if errors.Is(err, astiav.ErrEagain) || errors.Is(err, astiav.ErrEof) {
				return n, key, nil
			}
			return n, key, fmt.Errorf("encode: %s receive packet: %w", e.cfg.Backend, err)
		}
		m, k, err := packetInto(e.pkt, out[n:])
		e.pkt.Unref()
		if err != nil {
			return n + m, key, err
		}
		n += m
		key = key || k
	}
}

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
	e.sws.close()
	return nil
}
