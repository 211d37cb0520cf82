package pipeline

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/framewire/framewire/encode"
)

// VideoDeliverer is an input video track as a receiver feeds it;
// *tracks.VideoIn implements it. Deliver copies rgb.
type VideoDeliverer interface {
	Deliver(rgb []byte, w, h int, at time.Time) error
}

// AudioDeliverer is an input audio track as a receiver feeds it;
// *tracks.AudioIn implements it. Deliver copies pcm (48 kHz mono).
type AudioDeliverer interface {
	Deliver(pcm []int16, at time.Time) error
}

// RGBDecoder is a decoder that keeps its newest picture as packed RGB24
// (package gpu's NVDEC Decoder, which converts on the device into a pinned
// host buffer). Decode returns how many pictures au completed; Latest
// copies the newest into dst, returning its size, or an error wrapping a
// short-buffer error with the size when dst is too small.
type RGBDecoder interface {
	Decode(au []byte) (pictures int, err error)
	Latest(dst []byte) (w, h int, seq uint64, err error)
	Close() error
}

// VideoReceiver decodes one inbound video stream (H.264 access units or
// VP8 frames, as a depacketizer produces them) and delivers each picture
// as RGB24 to an input track. It is not safe for concurrent use: the
// track's receive loop owns it. The caller must call Close. In steady
// state our code allocates nothing per frame from the decoder's output to
// the track's latest buffer.
type VideoReceiver struct {
	dec *encode.VideoDecoder // software decoder, or nil when rgbDec is set
	rgb RGBDecoder           // hardware decoder holding RGB24 pictures
	in  VideoDeliverer
	buf []byte
	at  time.Time
	fn  func(encode.Frame) error

	Frames, Errors uint64 // delivered pictures; undecodable units
	// Fallbacks counts switches from the hardware decoder to FFmpeg's
	// software decoder after it failed RGBFallbackAfter units in a row.
	Fallbacks uint64
	// Logger, when set, hears of a fallback.
	Logger *slog.Logger

	rgbFails int // consecutive failures of rgb
}

// RGBFallbackAfter is how many access units in a row the hardware decoder
// of a receiver (NewVideoReceiverFrom) may fail before the receiver
// replaces it with FFmpeg's software H.264 decoder: NVDEC can fail after
// it opened (its hwaccel is set up at the stream's first SPS), and a
// decoder that fails every unit would leave the input track frozen.
const RGBFallbackAfter = 10

// NewVideoReceiver opens a software decoder for codec.
func NewVideoReceiver(codec encode.Codec, in VideoDeliverer) (*VideoReceiver, error) {
	if in == nil {
		return nil, fmt.Errorf("pipeline: NewVideoReceiver needs an input track")
	}
	dec, err := encode.NewVideoDecoder(codec)
	if err != nil {
		return nil, err
	}
	r := &VideoReceiver{dec: dec, in: in}
	r.fn = r.picture
	return r, nil
}

// NewVideoReceiverFrom delivers the pictures of dec (for example an NVDEC
// decoder for H.264) to in. The receiver owns dec and closes it.
func NewVideoReceiverFrom(dec RGBDecoder, in VideoDeliverer) (*VideoReceiver, error) {
	if dec == nil || in == nil {
		return nil, fmt.Errorf("pipeline: NewVideoReceiverFrom needs a decoder and an input track (got %v, %v)", dec, in)
	}
	return &VideoReceiver{rgb: dec, in: in}, nil
}

// WriteAccessUnit decodes au, which arrived at at, and delivers what it
// completes. A unit that does not decode (loss before the next keyframe)
// is counted and reported; the receiver keeps going.
func (r *VideoReceiver) WriteAccessUnit(au []byte, at time.Time) error {
	r.at = at
	if r.rgb != nil {
		return r.fromRGBDecoder(au)
	}
	if err := r.dec.Decode(au, r.fn); err != nil {
		r.Errors++
		return err
	}
	return nil
}

func (r *VideoReceiver) picture(f encode.Frame) error {
	w, h := f.Size()
	if n := w * h * 3; len(r.buf) < n {
		r.buf = make([]byte, n)
	}
	n, err := f.RGB(r.buf)
	if err != nil {
		return err
	}
	r.Frames++
	return r.in.Deliver(r.buf[:n], w, h, r.at)
}

// fromRGBDecoder decodes au with the RGB decoder and delivers its newest
// picture when au completed one (intermediate pictures of one unit are
// skipped, as Latest would skip them anyway).
func (r *VideoReceiver) fromRGBDecoder(au []byte) error {
	n, err := r.rgb.Decode(au)
	if err != nil {
		r.Errors++
		if r.rgbFails++; r.rgbFails >= RGBFallbackAfter {
			r.fallBack(err)
		}
		return err
	}
	r.rgbFails = 0
	if n == 0 {
		return nil
	}
	w, h, _, err := r.rgb.Latest(r.buf)
	if errors.Is(err, io.ErrShortBuffer) && w*h > 0 {
		r.buf = make([]byte, w*h*3) // first picture, or the size grew
		w, h, _, err = r.rgb.Latest(r.buf)
	}
	if err != nil {
		r.Errors++
		return err
	}
	r.Frames++
	return r.in.Deliver(r.buf[:w*h*3], w, h, r.at)
}

// fallBack replaces the failing hardware decoder with FFmpeg's software
// H.264 decoder (pictures resume at the next keyframe), counted and
// logged. When the software decoder cannot open, the receiver keeps the
// hardware one.
func (r *VideoReceiver) fallBack(cause error) {
	dec, err := encode.NewVideoDecoder(encode.CodecH264)
	if err != nil {
		return
	}
	_ = r.rgb.Close()
	r.rgb, r.dec, r.fn = nil, dec, r.picture
	r.Fallbacks++
	if r.Logger != nil {
		r.Logger.Warn("hardware H.264 decoder failed repeatedly; decoding on the CPU from the next keyframe", "failures", r.rgbFails, "err", cause)
	}
}

// Close frees the decoder. It is idempotent.
func (r *VideoReceiver) Close() error {
	if r.rgb != nil {
		return r.rgb.Close()
	}
	return r.dec.Close()
}

// AudioReceiver decodes inbound Opus packets with pion/opus and delivers
// 48 kHz mono PCM to an input track. It is not safe for concurrent use.
type AudioReceiver struct {
	dec *encode.OpusDecoder
	in  AudioDeliverer
	pcm []int16

	Frames, Errors uint64
}

// NewAudioReceiver returns a receiver delivering to in.
func NewAudioReceiver(in AudioDeliverer) (*AudioReceiver, error) {
	if in == nil {
		return nil, fmt.Errorf("pipeline: NewAudioReceiver needs an input track")
	}
	dec, err := encode.NewOpusDecoder()
	if err != nil {
		return nil, err
	}
	return &AudioReceiver{dec: dec, in: in, pcm: make([]int16, 5760)}, nil
}

// WritePacket decodes one Opus packet that arrived at at and delivers it.
func (r *AudioReceiver) WritePacket(pkt []byte, at time.Time) error {
	n, err := r.dec.Decode(pkt, r.pcm)
	if err != nil {
		r.Errors++
		return err
	}
	r.Frames++
	return r.in.Deliver(r.pcm[:n], at)
}
