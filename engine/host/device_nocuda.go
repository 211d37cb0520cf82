//go:build !cuda

package host

import (
	"log/slog"

	"github.com/framewire/framewire/gpu"
)

// openDevice in a build without the cuda tag: device frames are refused
// with gpu.ErrNoCUDA (the engine's default); host frames encode as usual.
func openDevice(log *slog.Logger) deviceSetup {
	log.Info("device frames disabled", "reason", gpu.ErrNoCUDA)
	return deviceSetup{close: func() error { return nil }}
}
