package encode

import (
	"errors"
	"fmt"

	"github.com/asticode/go-astiav"

	"github.com/framewire/framewire/tracks"
)

var (
	// ErrClosed is returned by every method called after Close.
	ErrClosed = errors.New("encode: closed")
	// ErrShortBuffer is returned when the caller's output buffer cannot hold
	// an encoded packet; the returned length says how much is needed.
	ErrShortBuffer = errors.New("encode: output buffer too small")
	// ErrUnavailable is returned when a backend's FFmpeg codec is not in
	// this build of FFmpeg or cannot be opened on this host.
	ErrUnavailable = errors.New("encode: backend unavailable")
	// ErrBadImage is returned for an image whose size, stride or buffer
	// length does not describe a valid picture. It is tracks.ErrBadFrame,
	// which Image.Validate wraps: one image type, one error.
	ErrBadImage = tracks.ErrBadFrame
)

func errScaler(sw, sh int, sf astiav.PixelFormat, dw, dh int, df astiav.PixelFormat) error {
	return fmt.Errorf("encode: swscale cannot convert %dx%d %s to %dx%d %s", sw, sh, sf, dw, dh, df)
}
