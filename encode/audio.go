package encode

/*
#cgo pkg-config: libavcodec libavutil libswresample
#include <string.h>
#include <libavutil/channel_layout.h>
#include <libavutil/opt.h>
#include <libavutil/frame.h>
#include <libswresample/swresample.h>

static SwrContext *fw_swr_open(int in_rate, int in_channels, int out_rate, int *err) {
	AVChannelLayout in_l, out_l = AV_CHANNEL_LAYOUT_MONO;
	av_channel_layout_default(&in_l, in_channels);
	SwrContext *s = NULL;
	*err = swr_alloc_set_opts2(&s, &out_l, AV_SAMPLE_FMT_S16, out_rate, &in_l, AV_SAMPLE_FMT_S16, in_rate, 0, NULL);
	av_channel_layout_uninit(&in_l);
	if (*err < 0) return NULL;
	// Mixdown: scale the matrix so that no output is louder than the
	// loudest input (L/2 + R/2, not the default 0.707 L + 0.707 R, which
	// clips a full-scale stereo signal).
	av_opt_set_double(s, "rematrix_maxval", 1.0, 0);
	*err = swr_init(s);
	if (*err < 0) { swr_free(&s); return NULL; }
	return s;
}

static int fw_swr_convert(SwrContext *s, int16_t *out, int out_count, const int16_t *in, int in_count) {
	uint8_t *o[1] = { (uint8_t *)out };
	const uint8_t *i[1] = { (const uint8_t *)in };
	return swr_convert(s, o, out_count, in_count > 0 ? i : NULL, in_count);
}

static int fw_swr_out_samples(SwrContext *s, int in_count) { return swr_get_out_samples(s, in_count); }
static void fw_swr_free(SwrContext *s) { swr_free(&s); }

// fw_frame_fill_s16 copies n interleaved int16 samples into a packed s16 frame.
static void fw_frame_fill_s16(AVFrame *f, const int16_t *src, int n) {
	memcpy(f->data[0], src, (size_t)n * sizeof(int16_t));
}

static int fw_frame_read_s16(const AVFrame *f, int16_t *dst, int cap) {
	int n = f->nb_samples * f->ch_layout.nb_channels;
	if (n > cap) return -n;
	if (f->format == AV_SAMPLE_FMT_S16) {
		memcpy(dst, f->data[0], (size_t)n * sizeof(int16_t));
	} else if (f->format == AV_SAMPLE_FMT_FLT) {
		const float *s = (const float *)f->data[0];
		for (int i = 0; i < n; i++) {
			float v = s[i] * 32768.0f;
			dst[i] = v > 32767.0f ? 32767 : v < -32768.0f ? -32768 : (int16_t)v;
		}
	} else if (f->format == AV_SAMPLE_FMT_FLTP && f->ch_layout.nb_channels == 1) {
		const float *s = (const float *)f->data[0];
		for (int i = 0; i < n; i++) {
			float v = s[i] * 32768.0f;
			dst[i] = v > 32767.0f ? 32767 : v < -32768.0f ? -32768 : (int16_t)v;
		}
	} else {
		return -1000000;
	}
	return n;
}
*/
import "C"

import (
	"fmt"
	"log/slog"
	"unsafe"

	"github.com/asticode/go-astiav"
	"github.com/pion/opus"
)

// Audio on the wire: Opus at 48 kHz, mono, 20 ms frames.
const (
	AudioRate         = 48000          // Samples per second on the wire.
	AudioFrameSamples = AudioRate / 50 // Samples in one 20 ms frame (960).
	MaxOpusPacket     = 1275 * 3       // Largest Opus packet (RFC 6716 §3.2.1, 3 frames).
	audioFrameMillis  = 1000 * AudioFrameSamples / AudioRate
)

// OpusConfig configures an OpusEncoder. The zero value is usable.
type OpusConfig struct {
	Bitrate int // Target bitrate in bit/s. Default 48 kbit/s.
	// PacketLoss is the expected loss in percent that in-band FEC protects
	// against (libopus needs it non-zero to add FEC). Default 10.
	PacketLoss int
	Logger     *slog.Logger
}

// OpusEncoder encodes 20 ms frames of 48 kHz mono int16 PCM with libopus
// (application voip, in-band FEC on, so that a lost packet is recovered
// from the next one in SILK and hybrid modes). It is not safe for
// concurrent use. The caller must call Close.
type OpusEncoder struct {
	cc     *astiav.CodecContext
	frame  *astiav.Frame
	pkt    *astiav.Packet
	pts    int64
	closed bool
}

// NewOpusEncoder opens libopus. The caller must call Close.
func NewOpusEncoder(cfg OpusConfig) (*OpusEncoder, error) {
	if cfg.Bitrate <= 0 {
		cfg.Bitrate = 48_000
	}
	if cfg.PacketLoss <= 0 {
		cfg.PacketLoss = 10
	}
	codec := astiav.FindEncoderByName("libopus")
	if codec == nil {
		return nil, fmt.Errorf("%w: libopus is not in this FFmpeg build", ErrUnavailable)
	}
	e := &OpusEncoder{cc: astiav.AllocCodecContext(codec), frame: astiav.AllocFrame(), pkt: astiav.AllocPacket()}
	e.cc.SetSampleRate(AudioRate)
	e.cc.SetSampleFormat(astiav.SampleFormatS16)
	e.cc.SetChannelLayout(astiav.ChannelLayoutMono)
	e.cc.SetBitRate(int64(cfg.Bitrate))
	e.cc.SetTimeBase(astiav.NewRational(1, AudioRate))
	opts := astiav.NewDictionary()
	defer opts.Free()
	_ = opts.Set("application", "voip", 0)
	_ = opts.Set("frame_duration", "20", 0)
	_ = opts.Set("fec", "1", 0)
	_ = opts.Set("packet_loss", fmt.Sprint(cfg.PacketLoss), 0)
	_ = opts.Set("vbr", "on", 0)
	if err := e.cc.Open(codec, opts); err != nil {
		e.Close()
		return nil, fmt.Errorf("%w: open libopus: %w", ErrUnavailable, err)
	}
	e.frame.SetNbSamples(AudioFrameSamples)
	e.frame.SetSampleFormat(astiav.SampleFormatS16)
	e.frame.SetChannelLayout(astiav.ChannelLayoutMono)
	e.frame.SetSampleRate(AudioRate)
	if err := e.frame.AllocBuffer(0); err != nil {
		e.Close()
		return nil, fmt.Errorf("encode: opus frame: %w", err)
	}
	return e, nil
}

// Encode encodes one 20 ms frame (exactly AudioFrameSamples mono samples)
// into out, which should hold MaxOpusPacket bytes, and returns the packet's
// length. pcm is only read during the call. libopus has no lookahead
// queue here: every frame yields one packet. It does not allocate.
func (e *OpusEncoder) Encode(pcm []int16, out []byte) (int, error) {
	if e.closed {
		return 0, ErrClosed
	}
	if len(pcm) != AudioFrameSamples {
		return 0, fmt.Errorf("encode: opus frame of %d samples, want %d (20 ms of 48 kHz mono)", len(pcm), AudioFrameSamples)
	}
	if err := e.frame.MakeWritable(); err != nil {
		return 0, fmt.Errorf("encode: make opus frame writable: %w", err)
	}
	C.fw_frame_fill_s16(cFrame(e.frame), (*C.int16_t)(unsafe.Pointer(&pcm[0])), C.int(len(pcm)))
	e.frame.SetPts(e.pts)
	e.pts += AudioFrameSamples
	if st := sendFrame(e.cc, e.frame); st < 0 {
		return 0, fmt.Errorf("encode: opus send frame: %w", st.err())
	}
	n := 0
	for {
		if st := receivePacket(e.cc, e.pkt); st < 0 {
			if st.done() {
				return n, nil
			}
			return n, fmt.Errorf("encode: opus receive packet: %w", st.err())
		}
		m, _, err := packetInto(e.pkt, out[n:])
		e.pkt.Unref()
		if err != nil {
			return n + m, fmt.Errorf("%w: opus packet of %d bytes, buffer holds %d", ErrShortBuffer, m, len(out)-n)
		}
		n += m
	}
}

// Close frees the encoder. It is idempotent.
func (e *OpusEncoder) Close() error {
	if e.closed {
		return nil
	}
	e.closed = true
	if e.cc != nil {
		e.cc.Free()
	}
	if e.frame != nil {
		e.frame.Free()
	}
	if e.pkt != nil {
		e.pkt.Free()
	}
	return nil
}

// Resampler mixes interleaved int16 PCM of any channel count down to mono
// and resamples it to 48 kHz with swresample. The resampler keeps a few
// samples of filter history between calls, so a stream converted in
// pieces comes out continuous. It is not safe for concurrent use. The
// caller must call Close.
type Resampler struct {
	s        *C.SwrContext
	rate, ch int
	closed   bool
}

// NewResampler returns a resampler from rate Hz, channels channels.
func NewResampler(rate, channels int) (*Resampler, error) {
	if rate < 1000 || rate > 384000 {
		return nil, fmt.Errorf("encode: sample rate %d Hz, want 1000…384000", rate)
	}
	if channels < 1 || channels > 16 {
		return nil, fmt.Errorf("encode: %d channels, want 1…16", channels)
	}
	var cerr C.int
	s := C.fw_swr_open(C.int(rate), C.int(channels), AudioRate, &cerr)
	if s == nil {
		return nil, fmt.Errorf("encode: swresample %d Hz × %d → 48 kHz mono: %w", rate, channels, astiav.Error(cerr))
	}
	return &Resampler{s: s, rate: rate, ch: channels}, nil
}

// Format reports the input rate and channel count.
func (r *Resampler) Format() (rate, channels int) { return r.rate, r.ch }

// MaxOut is an upper bound on the samples Convert returns for in
// interleaved input samples; 0 after Close.
func (r *Resampler) MaxOut(in int) int {
	if r.closed {
		return 0 // swr_get_out_samples would dereference the freed context
	}
	return int(C.fw_swr_out_samples(r.s, C.int(in/r.ch))) + 16
}

// Convert converts in (interleaved, a whole number of sample frames) and
// writes 48 kHz mono samples to out, returning how many. out must hold
// MaxOut(len(in)) samples. It does not allocate.
func (r *Resampler) Convert(in, out []int16) (int, error) {
	if r.closed {
		return 0, ErrClosed
	}
	if len(in)%r.ch != 0 {
		return 0, fmt.Errorf("encode: %d samples is not a whole number of %d-channel frames", len(in), r.ch)
	}
	if len(out) == 0 {
		return 0, fmt.Errorf("%w: no room for resampled audio", ErrShortBuffer)
	}
	var ip *C.int16_t
	if len(in) > 0 {
		ip = (*C.int16_t)(unsafe.Pointer(&in[0]))
	}
	n := C.fw_swr_convert(r.s, (*C.int16_t)(unsafe.Pointer(&out[0])), C.int(len(out)), ip, C.int(len(in)/r.ch))
	if n < 0 {
		return 0, fmt.Errorf("encode: swresample: %w", astiav.Error(n))
	}
	return int(n), nil
}

// Close frees the resampler. It is idempotent.
func (r *Resampler) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	C.fw_swr_free(r.s)
	r.s = nil
	return nil
}

// OpusDecoder decodes Opus packets to 48 kHz mono int16 with pion/opus
// (pure Go, RFC 6716: SILK, CELT and hybrid frames, as libopus and
// browsers produce them). It is not safe for concurrent use. The zero
// value is not usable; Close is not needed.
type OpusDecoder struct {
	d opus.Decoder
}

// NewOpusDecoder returns a decoder for 48 kHz mono output.
func NewOpusDecoder() (*OpusDecoder, error) {
	d, err := opus.NewDecoderWithOutput(AudioRate, 1)
	if err != nil {
		return nil, fmt.Errorf("encode: pion/opus decoder: %w", err)
	}
	return &OpusDecoder{d: d}, nil
}

// Decode decodes one packet into out (which should hold 5760 samples, the
// longest Opus packet, 120 ms) and returns the samples written.
func (d *OpusDecoder) Decode(pkt []byte, out []int16) (int, error) {
	n, err := d.d.DecodeToInt16(pkt, out)
	if err != nil {
		return 0, fmt.Errorf("encode: opus decode: %w", err)
	}
	return n, nil
}

// frameReadS16 copies f's samples as mono int16 into out and returns how
// many (see fw_frame_read_s16 for the negative results).
func frameReadS16(f *astiav.Frame, out []int16) int {
	var p *C.int16_t
	if len(out) > 0 {
		p = (*C.int16_t)(unsafe.Pointer(&out[0]))
	}
	return int(C.fw_frame_read_s16(cFrame(f), p, C.int(len(out))))
}
