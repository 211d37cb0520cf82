//go:build !cuda

package engine_test

import (
	"testing"

	"github.com/framewire/framewire/gpu"
)

// wantDefaultDeviceRefusal checks why an engine without WithDeviceSupport
// refuses a device frame: in the default build, gpu's "built without CUDA".
func wantDefaultDeviceRefusal(t *testing.T, err error) {
	t.Helper()
	wantErr(t, err, gpu.ErrNoCUDA, "main_video", "built without CUDA")
}
