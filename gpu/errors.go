package gpu

import (
	"errors"

	"github.com/framewire/framewire/encode"
	"github.com/framewire/framewire/tracks"
)

// ErrNoCUDA is returned by every constructor of a binary built without the
// cuda build tag. Rebuild with `go build -tags cuda` on a host with an
// NVIDIA driver to use device frames, NVENC zero-copy and NVDEC. It is
// tracks.ErrNoCUDA (defined there so engine builds without cgo).
var ErrNoCUDA = tracks.ErrNoCUDA

var (
	// ErrClosed is returned by every method called after Close (of the
	// value or of its Device).
	ErrClosed = errors.New("gpu: closed")
	// ErrUnavailable is returned when a backend cannot open on this host
	// (h264_nvenc on a GPU without NVENC, NVDEC missing, FFmpeg built
	// without it). It is encode.ErrUnavailable (one codec vocabulary).
	ErrUnavailable = encode.ErrUnavailable
	// ErrDeviceFault is wrapped by every error of a Device whose CUDA
	// context a sticky fault poisoned (Device.Fault): an illegal memory
	// access or another error after which every call in the context fails.
	ErrDeviceFault = errors.New("gpu: the device's CUDA context is poisoned by a sticky fault")
	// ErrNoFrame is returned by Decoder.Latest before the first picture.
	ErrNoFrame = errors.New("gpu: no picture decoded yet")
	// ErrShortBuffer is returned when the caller's buffer cannot hold the
	// result; the returned length says how much is needed. It is
	// encode.ErrShortBuffer and wraps io.ErrShortBuffer.
	ErrShortBuffer = encode.ErrShortBuffer
)
