//go:build cuda

package host

import (
	"fmt"
	"log/slog"

	"github.com/framewire/framewire/engine"
	"github.com/framewire/framewire/engine/pipeline"
	"github.com/framewire/framewire/engine/wiring"
	"github.com/framewire/framewire/gpu"
)

// openDevice opens CUDA device 0 for the engine: device frames
// (VideoOut.EmitDevice) are then accepted and encoded on it by a
// gpu.Encoder per output (which opens at the track's first frame), and
// inbound H.264 is decoded by NVDEC where it works. When no device opens
// it logs why and returns a setup that refuses device frames with that
// reason; host frames are unaffected.
func openDevice(log *slog.Logger) deviceSetup {
	d, err := gpu.Open(0)
	if err != nil {
		reason := fmt.Errorf("no CUDA device opened: %w", err)
		log.Warn("device frames disabled; host frames encode as usual", "reason", reason)
		return deviceSetup{option: engine.WithDeviceSupport(reason), close: func() error { return nil }}
	}
	log.Info("CUDA device opened; device frames enabled", "device", d.Name(), "ordinal", d.Ordinal())
	newEncoder, newDecoder := gpu.EncoderFactory(d, log), gpu.DecoderFactory(d)
	return deviceSetup{
		option: engine.WithDeviceSupport(nil),
		encoder: func(track string) (wiring.DeviceEncoder, error) {
			e, err := newEncoder(track)
			if err != nil {
				return nil, err // not a typed nil *gpu.Encoder in the interface
			}
			return e, nil
		},
		decoder: func() (pipeline.RGBDecoder, error) {
			dec, err := newDecoder()
			if err != nil {
				return nil, err
			}
			return dec, nil
		},
		close:  d.Close,
		device: d,
	}
}
