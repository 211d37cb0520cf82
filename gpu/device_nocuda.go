//go:build !cuda

package gpu

import (
	"log/slog"

	"github.com/framewire/framewire/encode"
)

// Device owns one CUDA device's primary context. In a build without the
// cuda tag no Device can be opened; every method of a nil or zero Device
// returns ErrNoCUDA (Close returns nil).
type Device struct{}

// Open returns ErrNoCUDA: this binary was built without the cuda tag.
func Open(ordinal int) (*Device, error) { return nil, ErrNoCUDA }

// Do returns ErrNoCUDA without running f.
func (d *Device) Do(f func() error) error { return ErrNoCUDA }

// Name reports the device's name.
func (d *Device) Name() string { return "" }

// Ordinal reports the device's index.
func (d *Device) Ordinal() int { return -1 }

// MemInfo returns ErrNoCUDA.
func (d *Device) MemInfo() (free, total int64, err error) { return 0, 0, ErrNoCUDA }

// Alloc returns ErrNoCUDA.
func (d *Device) Alloc(n int) (*Buffer, error) { return nil, ErrNoCUDA }

// AllocPinned returns ErrNoCUDA.
func (d *Device) AllocPinned(n int) (*Pinned, error) { return nil, ErrNoCUDA }

// BlockingSync reports false: there is no context.
func (d *Device) BlockingSync() bool { return false }

// Fault reports nil: without CUDA there is no context to poison.
func (d *Device) Fault() error { return nil }

// Close is a no-op; it is safe on a nil Device.
func (d *Device) Close() error { return nil }

// Buffer is device memory. None exists in a build without the cuda tag.
type Buffer struct{}

// Ptr reports 0.
func (b *Buffer) Ptr() uintptr { return 0 }

// Len reports 0.
func (b *Buffer) Len() int { return 0 }

// Upload returns ErrNoCUDA.
func (b *Buffer) Upload(src []byte) error { return ErrNoCUDA }

// Download returns ErrNoCUDA.
func (b *Buffer) Download(dst []byte) error { return ErrNoCUDA }

// Close is a no-op.
func (b *Buffer) Close() error { return nil }

// Pinned is page-locked host memory. None exists in a build without the
// cuda tag.
type Pinned struct{}

// Bytes reports nil.
func (pm *Pinned) Bytes() []byte { return nil }

// Close is a no-op.
func (pm *Pinned) Close() error { return nil }

// Encoder encodes device frames. In a build without the cuda tag
// NewEncoder returns ErrNoCUDA and the engine encodes on the CPU
// (BackendCPU).
type Encoder struct{}

// NewEncoder returns ErrNoCUDA (after validating cfg).
func NewEncoder(d *Device, cfg EncoderConfig, log *slog.Logger) (*Encoder, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	return nil, ErrNoCUDA
}

// Backend reports BackendCPU.
func (e *Encoder) Backend() encode.Backend { return BackendCPU }

// Size reports 0, 0.
func (e *Encoder) Size() (w, h int) { return 0, 0 }

// RequestKeyframe does nothing.
func (e *Encoder) RequestKeyframe() {}

// SetBitrate does nothing.
func (e *Encoder) SetBitrate(bps int) {}

// Encode returns ErrNoCUDA.
func (e *Encoder) Encode(f DeviceFrame, pts int64, out []byte) (n int, key bool, err error) {
	return 0, false, ErrNoCUDA
}

// EncodeBatch returns ErrNoCUDA.
func (e *Encoder) EncodeBatch(f DeviceFrame, index int, pts int64, out []byte) (n int, key bool, err error) {
	return 0, false, ErrNoCUDA
}

// EncodesHostFrames reports false.
func (e *Encoder) EncodesHostFrames() bool { return false }

// EncodeRGB returns ErrNoCUDA.
func (e *Encoder) EncodeRGB(pix []byte, w, h, stride int, pts int64, out []byte) (n int, key bool, err error) {
	return 0, false, ErrNoCUDA
}

// Flush returns ErrNoCUDA.
func (e *Encoder) Flush(out []byte) (n int, key bool, err error) { return 0, false, ErrNoCUDA }

// Close is a no-op.
func (e *Encoder) Close() error { return nil }

// Decoder decodes H.264 with NVDEC. In a build without the cuda tag
// NewDecoder returns ErrNoCUDA and inputs are decoded on the CPU.
type Decoder struct{}

// NewDecoder returns ErrNoCUDA.
func NewDecoder(d *Device) (*Decoder, error) { return nil, ErrNoCUDA }

// Decode returns ErrNoCUDA.
func (dec *Decoder) Decode(au []byte) (pictures int, err error) { return 0, ErrNoCUDA }

// Latest returns ErrNoCUDA.
func (dec *Decoder) Latest(dst []byte) (w, h int, seq uint64, err error) {
	return 0, 0, 0, ErrNoCUDA
}

// Seq reports 0.
func (dec *Decoder) Seq() uint64 { return 0 }

// LatestDevice returns ErrNoCUDA.
func (dec *Decoder) LatestDevice(dst Frame) error { return ErrNoCUDA }

// Close is a no-op.
func (dec *Decoder) Close() error { return nil }

// EmulatorStat reports -1: there is no driver, emulated or real, in a
// build without the cuda tag.
func EmulatorStat(name string) int64 { return -1 }

// EmulatorInjectFault reports false: there is no driver in a build without
// the cuda tag.
func EmulatorInjectFault() bool { return false }
