//go:build cuda

package engine_test

import "testing"

// wantDefaultDeviceRefusal checks why an engine without WithDeviceSupport
// refuses a device frame: in the cuda build, that no device encoder was
// enabled (the caller must pass WithDeviceSupport).
func wantDefaultDeviceRefusal(t *testing.T, err error) {
	t.Helper()
	wantErr(t, err, nil, "main_video", "no device encoder enabled")
}
