//go:build cuda

package main

import (
	"fmt"
	"log/slog"

	"github.com/framewire/framewire/engine"
	"github.com/framewire/framewire/engine/pipeline"
	"github.com/framewire/framewire/engine/protocol"
	"github.com/framewire/framewire/gpu"
	"github.com/framewire/framewire/tracks"
)

// openDevice opens CUDA device 0 for the engine: device frames
// (VideoOut.EmitDevice) are then accepted and encoded on it by a
// gpu.Encoder per output. When no device opens it logs why and returns a
// setup that refuses device frames with that reason; host frames are
// unaffected.
func openDevice(log *slog.Logger) deviceSetup {
	d, err := gpu.Open(0)
	if err != nil {
		reason := fmt.Errorf("no CUDA device opened: %w", err)
		log.Warn("device frames disabled; host frames encode as usual", "reason", reason)
		return deviceSetup{option: engine.WithDeviceSupport(reason), close: func() error { return nil }}
	}
	log.Info("CUDA device opened; device frames enabled", "device", d.Name(), "ordinal", d.Ordinal())
	return deviceSetup{
		option: engine.WithDeviceSupport(nil),
		encoder: func(track string) (protocol.DeviceEncoder, error) {
			return &gpuEncoder{d: d, log: log.With("track", track)}, nil
		},
		// Inbound H.264 (the webcam) is decoded by NVDEC and converted to
		// RGB on the device into a pinned buffer.
		decoder: func() (pipeline.RGBDecoder, error) { return gpu.NewDecoder(d) },
		close:   d.Close,
		device:  d,
	}
}

// gpuEncoder makes a gpu.Encoder a pipeline.DeviceBatchEncoder: it opens
// the encoder at the first frame's size (gpu.NewEncoder needs one; the
// encoder reopens by itself when the size changes) and keeps keyframe and
// a bitrate set before. Like every pipeline.DeviceEncoder it is used by
// its pipeline's goroutine only.
type gpuEncoder struct {
	d   *gpu.Device
	log *slog.Logger
	enc *gpu.Encoder

	early struct{ bps int } // SetBitrate before the first frame
}

func (g *gpuEncoder) open(f tracks.DeviceFrame) error {
	if g.enc != nil {
		return nil
	}
	w, h := f.Size()
	enc, err := gpu.NewEncoder(g.d, gpu.EncoderConfig{Width: w, Height: h, Bitrate: g.early.bps}, g.log)
	if err != nil {
		return err
	}
	g.enc = enc
	return nil
}

// Encode encodes a single-picture device frame.
func (g *gpuEncoder) Encode(f tracks.DeviceFrame, pts int64, out []byte) (int, bool, error) {
	return g.EncodeBatch(f, 0, pts, out)
}

// EncodeBatch encodes picture index of a batch device frame.
func (g *gpuEncoder) EncodeBatch(f tracks.DeviceFrame, index int, pts int64, out []byte) (int, bool, error) {
	if err := g.open(f); err != nil {
		return 0, false, err
	}
	return g.enc.EncodeBatch(f, index, pts, out)
}

// RequestKeyframe makes the next picture a keyframe.
func (g *gpuEncoder) RequestKeyframe() {
	if g.enc != nil {
		g.enc.RequestKeyframe()
	}
	// Before the first frame the encoder opens with a keyframe anyway.
}

// SetBitrate sets the target from the next picture on.
func (g *gpuEncoder) SetBitrate(bps int) {
	if g.enc != nil {
		g.enc.SetBitrate(bps)
		return
	}
	g.early.bps = bps
}

// Backend names the device backend once open ("cuda+h264_nvenc" or
// "cuda+libx264").
func (g *gpuEncoder) Backend() string {
	if g.enc == nil {
		return "cuda"
	}
	return string(g.enc.Backend())
}

// Close closes the encoder, if it was opened.
func (g *gpuEncoder) Close() error {
	if g.enc == nil {
		return nil
	}
	return g.enc.Close()
}
