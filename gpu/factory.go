package gpu

import "log/slog"

// EncoderFactory returns the engine's device-encoder factory for d: each
// call makes the Encoder of one output track, created without a size so
// it opens at the track's first frame (see NewEncoder), logging with the
// track's name. An Encoder has the methods of the pipeline's
// DeviceEncoder and DeviceBatchEncoder; the engine closes it when the
// track ends. In a build without the cuda tag the factory returns
// ErrNoCUDA.
func EncoderFactory(d *Device, log *slog.Logger) func(track string) (*Encoder, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return func(track string) (*Encoder, error) {
		return NewEncoder(d, EncoderConfig{}, log.With("track", track))
	}
}

// DecoderFactory returns the engine's factory of NVDEC H.264 decoders on
// d (NewDecoder): each call makes the decoder of one inbound video track.
// It returns an error wrapping ErrUnavailable where NVDEC does not work
// (probed once per Device), and the engine decodes on the CPU.
func DecoderFactory(d *Device) func() (*Decoder, error) {
	return func() (*Decoder, error) { return NewDecoder(d) }
}
