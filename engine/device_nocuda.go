//go:build !cuda

package engine

import "github.com/framewire/framewire/tracks"

// defaultDeviceSupport is why device frames are refused unless
// WithDeviceSupport says otherwise: this build has no CUDA.
var defaultDeviceSupport error = tracks.ErrNoCUDA
