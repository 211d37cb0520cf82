package encode

import (
	"fmt"

	"github.com/asticode/go-astiav"
)

// VideoDecoder decodes H.264 (Annex-B access units) or VP8 frames with
// FFmpeg's software decoders and converts each picture to packed RGB24. It
// is not safe for concurrent use. The caller must call Close.
type VideoDecoder struct {
	codec  Codec
	cc     *astiav.CodecContext
	pkt    *astiav.Packet
	frame  *astiav.Frame
	sws    scaler
	closed bool
}

// NewVideoDecoder opens a software decoder for codec (CodecH264 or CodecVP8).
func NewVideoDecoder(codec Codec) (*VideoDecoder, error) {
	var id astiav.CodecID
	switch codec {
	case CodecH264:
		id = astiav.CodecIDH264
	case CodecVP8:
		id = astiav.CodecIDVp8
	default:
		return nil, fmt.Errorf("encode: no video decoder for %q, want %s or %s", codec, CodecH264, CodecVP8)
	}
	c := astiav.FindDecoder(id)
	if c == nil {
		return nil, fmt.Errorf("%w: decoder for %s not in this FFmpeg build", ErrUnavailable, codec)
	}
	d := &VideoDecoder{codec: codec, cc: astiav.AllocCodecContext(c), pkt: astiav.AllocPacket(), frame: astiav.AllocFrame()}
	d.cc.SetThreadCount(1) // frame threads add a frame of latency per thread
	if err := d.cc.Open(c, nil); err != nil {
		d.Close()
		return nil, fmt.Errorf("encode: open %s decoder: %w", codec, err)
	}
	return d, nil
}

// Decode feeds one access unit (H.264 Annex-B or one VP8 frame) and calls
// fn for every picture it completes. The Frame passed to fn, and its
// pixels, are valid only during the call. With a nil fn the pictures are
// decoded and discarded.
func (d *VideoDecoder) Decode(au []byte, fn func(Frame) error) error {
	if d.closed {
		return ErrClosed
	}
	if len(au) == 0 {
		return nil
	}
	if err := fillPacket(d.pkt, au); err != nil {
		return fmt.Errorf("encode: packet: %w", err)
	}
	st := sendPacket(d.cc, d.pkt)
	d.pkt.Unref()
	if st < 0 && st != statusAgain {
		return fmt.Errorf("encode: %s decode: %w", d.codec, st.err())
	}
	for {
		if st := receiveFrame(d.cc, d.frame); st < 0 {
			if st.done() {
				return nil
			}
			return fmt.Errorf("encode: %s receive frame: %w", d.codec, st.err())
		}
		var ferr error
		if fn != nil {
			ferr = fn(Frame{d: d})
		}
		d.frame.Unref()
		if ferr != nil {
			return ferr
		}
	}
}

// Frame is a decoded picture, valid only inside the Decode callback.
type Frame struct{ d *VideoDecoder }

// Size reports the picture's width and height.
func (f Frame) Size() (w, h int) { return f.d.frame.Width(), f.d.frame.Height() }

// RGB converts the picture to packed RGB24 into dst, which must hold
// w*h*3 bytes; it returns the bytes written. It does not allocate.
func (f Frame) RGB(dst []byte) (int, error) {
	w, h := f.Size()
	n := w * h * 3
	if len(dst) < n {
		return n, fmt.Errorf("%w: need %d bytes for %dx%d RGB24, have %d", ErrShortBuffer, n, w, h, len(dst))
	}
	fr := f.d.frame
	if err := f.d.sws.ensure(w, h, fr.PixelFormat(), w, h, astiav.PixelFormatRgb24, colourOf(fr)); err != nil {
		return 0, err
	}
	if err := f.d.sws.fromFrame(fr, dst, w*3); err != nil {
		return 0, fmt.Errorf("encode: swscale: %w", err)
	}
	return n, nil
}

// Close frees the decoder. It is idempotent.
func (d *VideoDecoder) Close() error {
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
	d.sws.close()
	return nil
}
