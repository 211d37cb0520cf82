package peer

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
)

// Control is how transport feedback reaches an output's running encoder.
// Implementations must be safe for concurrent use: RTCP readers of several
// peers may call them at once.
type Control interface {
	RequestKeyframe()
	SetBitrate(bps int)
}

// Output is a session's local track for one model output. It is created
// once per session (with the codec chosen from the first offer) and is bound
// to every Peer the session gets, so a reconnect reuses it and the running
// encoder. It implements the encode pipeline's Sink. All methods are safe
// for concurrent use.
type Output struct {
	name  string
	kind  Kind
	codec Codec
	track *webrtc.TrackLocalStaticSample
	ctl   atomic.Pointer[controlBox]
}

type controlBox struct{ Control }

// NewOutput creates the local track for output name of the given kind,
// sending codec. Until a Peer binds it, written samples are dropped (pion
// drops samples before negotiation).
func NewOutput(name string, kind Kind, codec Codec) (*Output, error) {
	if kind == KindVideo && codec != CodecH264 && codec != CodecVP8 || kind == KindAudio && codec != CodecOpus {
		return nil, fmt.Errorf("%w: %s track %q cannot send %s", ErrNoCodec, kind, name, codec)
	}
	tr, err := webrtc.NewTrackLocalStaticSample(capability(codec), name, "framewire")
	if err != nil {
		return nil, fmt.Errorf("peer: track %q: %w", name, err)
	}
	return &Output{name: name, kind: kind, codec: codec, track: tr}, nil
}

// Name is the output track's name.
func (o *Output) Name() string { return o.name }

// Kind is the output's media kind.
func (o *Output) Kind() Kind { return o.kind }

// Codec is the codec the output sends.
func (o *Output) Codec() Codec { return o.codec }

// SetControl installs the running encoder's control (nil removes it).
func (o *Output) SetControl(c Control) {
	if c == nil {
		o.ctl.Store(nil)
		return
	}
	o.ctl.Store(&controlBox{c})
}

// RequestKeyframe asks the output's encoder for a keyframe, if one runs.
func (o *Output) RequestKeyframe() {
	if b := o.ctl.Load(); b != nil {
		b.RequestKeyframe()
	}
}

func (o *Output) setBitrate(bps int) {
	if b := o.ctl.Load(); b != nil {
		b.SetBitrate(bps)
	}
}

// WriteSample hands one encoded access unit (or Opus frame) to every bound
// peer. data is only read during the call. It implements pipeline.Sink.
func (o *Output) WriteSample(data []byte, duration time.Duration, capture time.Time, key bool) error {
	if err := o.track.WriteSample(media.Sample{Data: data, Duration: duration, Timestamp: capture}); err != nil {
		return fmt.Errorf("peer: write %s sample: %w", o.name, err)
	}
	return nil
}
