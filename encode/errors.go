package encode

import (
	"errors"
	"fmt"
	"io"

	"github.com/asticode/go-astiav"

	"github.com/framewire/framewire/tracks"
)

// The codec vocabulary of packages encode and gpu: gpu's encoder and
// decoder return these same values (gpu.ErrShortBuffer is ErrShortBuffer,
// gpu.ErrUnavailable is ErrUnavailable), and they wrap the standard
// library's sentinels, so a caller checks one value whichever encoder it
// holds: errors.Is(err, io.ErrShortBuffer) for a buffer to grow,
// errors.Is(err, errors.ErrUnsupported) for a backend to fall back from.
var (
	// ErrClosed is returned by every method called after Close.
	ErrClosed = errors.New("encode: closed")
	// ErrShortBuffer is returned when the caller's output buffer cannot hold
	// an encoded packet or a picture; the returned length says how much is
	// needed. It wraps io.ErrShortBuffer.
	ErrShortBuffer = fmt.Errorf("codec: buffer too small (%w)", io.ErrShortBuffer)
	// ErrUnavailable is returned when a backend's FFmpeg codec is not in
	// this build of FFmpeg or cannot be opened on this host. It wraps
	// errors.ErrUnsupported.
	ErrUnavailable = fmt.Errorf("codec: backend unavailable (%w)", errors.ErrUnsupported)
	// ErrBadImage is returned for an image whose size, stride or buffer
	// length does not describe a valid picture. It is tracks.ErrBadFrame,
	// which Image.Validate wraps: one image type, one error.
	ErrBadImage = tracks.ErrBadFrame
)

func errScaler(sw, sh int, sf astiav.PixelFormat, dw, dh int, df astiav.PixelFormat) error {
	return fmt.Errorf("encode: swscale cannot convert %dx%d %s to %dx%d %s", sw, sh, sf, dw, dh, df)
}
