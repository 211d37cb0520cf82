//go:build cuda

package engine

import "errors"

// defaultDeviceSupport is why device frames are refused unless
// WithDeviceSupport says otherwise: the caller must enable the device
// encoder path explicitly.
var defaultDeviceSupport = errors.New("engine: no device encoder enabled (pass engine.WithDeviceSupport(nil))")
