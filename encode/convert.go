package encode

import (
	"fmt"

	"github.com/asticode/go-astiav"

	"github.com/framewire/framewire/encode/internal/yuv"
)

// PixelFormat is a planar YUV layout an encoder is fed.
type PixelFormat int

// The planar formats the converter produces.
const (
	PixelI420 PixelFormat = iota // Planar Y, U, V at 4:2:0 (yuv420p); libx264 and libvpx.
	PixelNV12                    // Planar Y, interleaved UV at 4:2:0; NVENC's native input.
)

func (p PixelFormat) String() string {
	switch p {
	case PixelI420:
		return "I420"
	case PixelNV12:
		return "NV12"
	}
	return fmt.Sprintf("PixelFormat(%d)", int(p))
}

func (p PixelFormat) av() astiav.PixelFormat {
	if p == PixelNV12 {
		return astiav.PixelFormatNv12
	}
	return astiav.PixelFormatYuv420P
}

// Converter converts packed RGB24 images into one planar YUV picture
// (limited range, BT.709 coefficients; see NewConverter): to I420 of the
// same size on an AVX2 machine with the AVX-512 or AVX2 kernel of
// encode/internal/yuv (2×2 mean chroma; 10× and 5× faster in
// bench.BenchmarkConvert), otherwise with swscale's bilinear path. The
// swscale context and the picture are allocated on the first Convert
// that needs them and reused; a change of input or output size
// reinitialises them. (A VideoEncoder's converter instead borrows its
// picture from a pool the process's encoders share, see sharedPictures.) It is not safe for concurrent use. The caller
// must call Close.
type Converter struct {
	format PixelFormat
	cs     colour
	frame  *astiav.Frame
	sws    scaler
	closed bool
	// shared: the picture is borrowed from the process's pool (pictures)
	// and given back by release; a VideoEncoder's converter is.
	shared bool
	stack  *pictureStack // the pool's pictures of the size joined; nil before
}

// NewConverter returns a converter producing format with BT.709
// coefficients, what the H.264 encoders here signal in their VUI. It
// allocates nothing native until the first Convert.
func NewConverter(format PixelFormat) (*Converter, error) {
	return newConverter(format, colour{bt709: true})
}

func newConverter(format PixelFormat, cs colour) (*Converter, error) {
	if format != PixelI420 && format != PixelNV12 {
		return nil, fmt.Errorf("encode: cannot convert to %s, want %s or %s", format, PixelI420, PixelNV12)
	}
	return &Converter{format: format, cs: cs}, nil
}

// Format reports the planar format the converter produces.
func (c *Converter) Format() PixelFormat { return c.format }

// Convert converts img into the converter's picture of size w×h (both
// even; img is scaled when its size differs). img is only read during the
// call. In steady state it does not allocate.
func (c *Converter) Convert(img Image, w, h int) error {
	if c.closed {
		return ErrClosed
	}
	if err := img.Validate(); err != nil {
		return err
	}
	if w <= 0 || h <= 0 || w%2 != 0 || h%2 != 0 {
		return fmt.Errorf("%w: output size %dx%d, want positive even width and height", ErrBadImage, w, h)
	}
	if c.shared {
		if err := c.borrow(w, h); err != nil {
			return err
		}
	} else if c.frame == nil || c.frame.Width() != w || c.frame.Height() != h {
		if c.frame != nil {
			c.frame.Free()
		}
		c.frame = astiav.AllocFrame()
		c.frame.SetWidth(w)
		c.frame.SetHeight(h)
		c.frame.SetPixelFormat(c.format.av())
		c.frame.SetColorRange(astiav.ColorRangeMpeg)
		if c.cs.bt709 {
			c.frame.SetColorSpace(astiav.ColorSpaceBt709)
		} else {
			c.frame.SetColorSpace(astiav.ColorSpaceSmpte170M)
		}
		if err := c.frame.AllocBuffer(0); err != nil {
			c.frame.Free()
			c.frame = nil
			return fmt.Errorf("encode: %dx%d %s picture: %w", w, h, c.format, err)
		}
	} else if err := c.frame.MakeWritable(); err != nil {
		// The encoder may still hold a reference to the last picture.
		return fmt.Errorf("encode: make picture writable: %w", err)
	}
	if c.format == PixelI420 && !c.cs.fullRange && img.Width == w && img.Height == h && yuv.Fast() {
		toI420(yuv.For(c.cs.bt709), img, c.frame)
		return nil
	}
	if err := c.sws.ensure(img.Width, img.Height, astiav.PixelFormatRgb24, w, h, c.format.av(), c.cs); err != nil {
		return err
	}
	if err := c.sws.toFrame(img.Pix, img.RowStride(), img.Height, c.frame); err != nil {
		return fmt.Errorf("encode: swscale: %w", err)
	}
	return nil
}

// picture is the last converted picture, nil before the first Convert
// (and, for a shared converter, after release).
func (c *Converter) picture() *astiav.Frame { return c.frame }

// borrow makes c.frame a shared w×h picture, joining its size in the
// pool (and leaving the previous one) when the size changed.
func (c *Converter) borrow(w, h int) error {
	k := pictureKey{w: w, h: h, format: c.format, cs: c.cs}
	if c.stack == nil || c.stack.key != k {
		c.release()
		if c.stack != nil {
			pictures.leave(c.stack)
		}
		c.stack = pictures.join(k)
	}
	if c.frame != nil {
		return nil // not given back since the last Convert
	}
	f, err := c.stack.get()
	if err != nil {
		return fmt.Errorf("encode: %dx%d %s picture: %w", w, h, c.format, err)
	}
	c.frame = f
	return nil
}

// release gives a shared converter's picture back to the pool once the
// codec has taken it (avcodec_send_frame returned); a no-op otherwise.
func (c *Converter) release() {
	if c.shared && c.frame != nil {
		c.stack.put(c.frame)
		c.frame = nil
	}
}

// Close frees the swscale context and the picture. It is idempotent.
func (c *Converter) Close() error {
	if c.closed {
		return nil
	}
	c.closed = true
	c.release()
	if c.stack != nil {
		pictures.leave(c.stack)
		c.stack = nil
	}
	if c.frame != nil {
		c.frame.Free()
		c.frame = nil
	}
	c.sws.close()
	return nil
}
