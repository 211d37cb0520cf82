package tracks

import (
	"errors"
	"strconv"
)

// Sentinel errors. Errors returned by this package wrap one of these (compare
// with errors.Is) and add what was wrong and what was expected.
var (
	// ErrInvalidSpec is wrapped by every track-declaration error: an empty or
	// duplicate name, two defaults, a default that is not an output, a bad
	// rate, kind, policy or queue size.
	ErrInvalidSpec = errors.New("tracks: invalid track declaration")
	// ErrBadFrame is wrapped by every Emit or Deliver error caused by the
	// data itself: a shape that is not (H,W,3) or (N,H,W,3), a buffer whose
	// length does not match its shape, zero or negative sizes, channels
	// other than 3, and the like.
	ErrBadFrame = errors.New("tracks: bad frame")
	// ErrClosed is returned by Emit, Next and Deliver once the track is
	// closed (its session ended).
	ErrClosed = errors.New("tracks: track closed")
	// ErrNoDevicePath is returned (wrapped) by VideoOut.EmitDevice when the
	// engine did not enable a device-frame path on the track.
	ErrNoDevicePath = errors.New("tracks: this track has no device-frame path")
	// ErrUnknownTrack is returned by Set.Track for a name that was not
	// declared.
	ErrUnknownTrack = errors.New("tracks: no such track")
	// ErrWrongKind is returned by the typed lookups (Set.VideoOut and
	// friends) when the named track exists with another kind.
	ErrWrongKind = errors.New("tracks: track has another kind")
	// ErrNoDefault is returned by Set.Track("") when the model declares no
	// default track (no VideoOut and none marked default).
	ErrNoDefault = errors.New("tracks: no default track")
	// ErrNoCUDA is the reason device frames are refused in a binary built
	// without the cuda build tag (gpu.ErrNoCUDA is this value). It lives
	// here, in a package without cgo, so that engine and tracks build with
	// CGO_ENABLED=0.
	ErrNoCUDA = errors.New("gpu: built without CUDA (rebuild with -tags cuda on a host with an NVIDIA driver)")
)

// fmtShape renders a shape as "(a, b, c)" without letting the slice escape,
// so that callers of the variadic Emit methods do not allocate.
func fmtShape(shape []int) string {
	b := make([]byte, 0, 32)
	b = append(b, '(')
	for i, v := range shape {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = strconv.AppendInt(b, int64(v), 10)
	}
	if len(shape) == 1 {
		b = append(b, ',')
	}
	b = append(b, ')')
	return string(b)
}
