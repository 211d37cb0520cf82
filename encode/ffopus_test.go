package encode

// This file is compiled into package encode's tests only: FFmpeg's own Opus
// decoder is the reference the pion/opus decoder is tested against, not
// part of the product's API.

import (
	"fmt"

	"github.com/asticode/go-astiav"
)

// FFmpegOpusDecoder decodes Opus packets to 48 kHz mono int16 with
// FFmpeg's native opus decoder. The tests (only) use it as the reference the
// pion/opus decoder is checked against. It is not safe for concurrent use. The caller must
// call Close.
type FFmpegOpusDecoder struct {
	cc     *astiav.CodecContext
	pkt    *astiav.Packet
	frame  *astiav.Frame
	closed bool
}

// NewFFmpegOpusDecoder opens FFmpeg's opus decoder for mono output.
func NewFFmpegOpusDecoder() (*FFmpegOpusDecoder, error) {
	c := astiav.FindDecoder(astiav.CodecIDOpus)
	if c == nil {
		return nil, fmt.Errorf("%w: opus decoder not in this FFmpeg build", ErrUnavailable)
	}
	d := &FFmpegOpusDecoder{cc: astiav.AllocCodecContext(c), pkt: astiav.AllocPacket(), frame: astiav.AllocFrame()}
	d.cc.SetSampleRate(AudioRate)
	d.cc.SetChannelLayout(astiav.ChannelLayoutMono)
	if err := d.cc.Open(c, nil); err != nil {
		d.Close()
		return nil, fmt.Errorf("encode: open opus decoder: %w", err)
	}
	return d, nil
}

// Decode decodes one packet into out and returns the samples written.
func (d *FFmpegOpusDecoder) Decode(pkt []byte, out []int16) (int, error) {
	if d.closed {
		return 0, ErrClosed
	}
	if len(pkt) == 0 {
		return 0, nil
	}
	if err := fillPacket(d.pkt, pkt); err != nil {
		return 0, fmt.Errorf("encode: packet: %w", err)
	}
	st := sendPacket(d.cc, d.pkt)
	d.pkt.Unref()
	if st < 0 {
		return 0, fmt.Errorf("encode: opus decode: %w", st.err())
	}
	n := 0
	for {
		if st := receiveFrame(d.cc, d.frame); st < 0 {
			if st.done() {
				return n, nil
			}
			return n, fmt.Errorf("encode: opus receive frame: %w", st.err())
		}
		m := frameReadS16(d.frame, out[n:])
		d.frame.Unref()
		if m == -1000000 {
			return n, fmt.Errorf("encode: opus decoder produced a sample format other than the s16, flt or mono fltp this decoder reads")
		}
		if m < 0 {
			return n, fmt.Errorf("%w: %d decoded samples, buffer holds %d", ErrShortBuffer, -m, len(out)-n)
		}
		n += m
	}
}

// Close frees the decoder. It is idempotent.
func (d *FFmpegOpusDecoder) Close() error {
	if d.closed {
		return nil
	}
	d.closed = true
	if d.cc != nil {
		d.cc.Free()
	}
	if d.pkt != nil {
		d.pkt.Free()
	}
	if d.frame != nil {
		d.frame.Free()
	}
	return nil
}
