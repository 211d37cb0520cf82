//go:build !cuda

package gpu

// Device owns one CUDA device's primary context. In a build without the
// cuda tag no Device can be opened.
type Device struct{}

// Open returns ErrNoCUDA: this binary was built without the cuda tag.
func Open(ordinal int) (*Device, error) { return nil, ErrNoCUDA }

// Name reports the device's name.
func (d *Device) Name() string { return "" }

// Close is a no-op; it is safe on a nil Device.
func (d *Device) Close() error { return nil }
