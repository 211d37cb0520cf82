package tracks

import (
	"fmt"
	"math"
)

// DefaultTrackName is the name of the single VideoOut a model gets when it
// declares no tracks at all.
const DefaultTrackName = "main_video"

// DefaultQueueSize is the number of frames (video) or chunks (audio) an
// output track buffers between Emit and the media pipeline when its Spec
// leaves QueueSize at 0. A batch emit of N frames always fits: the queue
// grows to hold the largest batch seen.
const DefaultQueueSize = 4

// Kind is a track's type: its media (video or audio) and its direction as
// seen by the model.
type Kind uint8

// The four track kinds of the Reactor tracks page.
const (
	KindVideoOut Kind = iota + 1 // model → client video, sent with Emit
	KindAudioOut                 // model → client audio, sent with Emit
	KindVideoIn                  // client → model video, read with Latest
	KindAudioIn                  // client → model audio, read with Latest
)

// String returns the kind's Go name, e.g. "VideoOut".
func (k Kind) String() string {
	switch k {
	case KindVideoOut:
		return "VideoOut"
	case KindAudioOut:
		return "AudioOut"
	case KindVideoIn:
		return "VideoIn"
	case KindAudioIn:
		return "AudioIn"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Valid reports whether k is one of the four kinds.
func (k Kind) Valid() bool { return k >= KindVideoOut && k <= KindAudioIn }

// IsOutput reports whether the track carries media from the model to the
// client.
func (k Kind) IsOutput() bool { return k == KindVideoOut || k == KindAudioOut }

// IsVideo reports whether the track carries video.
func (k Kind) IsVideo() bool { return k == KindVideoOut || k == KindVideoIn }

// Media returns "video" or "audio", the capabilities document's kind.
func (k Kind) Media() string {
	if k.IsVideo() {
		return "video"
	}
	return "audio"
}

// Direction returns the direction in the client's view, as the capabilities
// document and SDP use it: model outputs are "recvonly", model inputs
// "sendonly".
func (k Kind) Direction() string {
	if k.IsOutput() {
		return "recvonly"
	}
	return "sendonly"
}

// Policy says what Emit does when an output track's queue is full.
type Policy uint8

const (
	// DropOldest (the default) never blocks: the oldest queued frame is
	// discarded and counted in Stats.Dropped.
	DropOldest Policy = iota
	// Block makes Emit wait until the pipeline takes a frame or the track
	// is closed. Use it when every frame matters more than latency.
	Block
)

// String returns "drop-oldest" or "block".
func (p Policy) String() string {
	switch p {
	case DropOldest:
		return "drop-oldest"
	case Block:
		return "block"
	}
	return fmt.Sprintf("Policy(%d)", uint8(p))
}

// Spec declares one track. The zero value is not valid: Name and Kind are
// required. Build one with VideoOutput, AudioOutput, VideoInput or
// AudioInput, or as a literal.
type Spec struct {
	// Name is the track's identifier: the string the model passes to
	// Session.Track and the exact string the client uses on the wire (no
	// case change, no prefix).
	Name string
	// Kind is the track's type and direction.
	Kind Kind
	// Rate is the frame rate (video, frames/s) or sample rate (audio, Hz).
	// 0 means automatic: the pipeline adapts to the model's push rate
	// (video) or assumes 48000 Hz (audio). Audio rates must be whole.
	Rate float64
	// Default marks the track as the default, returned by Session.Track("").
	// Only outputs can be the default; at most one track may set it.
	Default bool
	// Policy is the full-queue policy of an output track (DropOldest unless
	// set). Inputs must leave it zero.
	Policy Policy
	// QueueSize is the output queue's capacity in frames (video) or chunks
	// (audio); 0 means DefaultQueueSize. Inputs must leave it zero.
	QueueSize int
}

// Option adjusts a Spec built by VideoOutput, AudioOutput, VideoInput or
// AudioInput.
type Option func(*Spec)

// Rate sets the track's rate: frames per second for video, samples per second
// for audio; 0 (the default) means automatic.
func Rate(r float64) Option { return func(s *Spec) { s.Rate = r } }

// Default marks the track as the model's default track.
func Default() Option { return func(s *Spec) { s.Default = true } }

// Backpressure makes Emit on this output block while the queue is full,
// instead of dropping the oldest frame.
func Backpressure() Option { return func(s *Spec) { s.Policy = Block } }

// QueueSize sets an output track's queue capacity.
func QueueSize(n int) Option { return func(s *Spec) { s.QueueSize = n } }

func newSpec(name string, k Kind, opts []Option) Spec {
	s := Spec{Name: name, Kind: k}
	for _, o := range opts {
		if o != nil {
			o(&s)
		}
	}
	return s
}

// VideoOutput declares a model → client video track.
func VideoOutput(name string, opts ...Option) Spec { return newSpec(name, KindVideoOut, opts) }

// AudioOutput declares a model → client audio track.
func AudioOutput(name string, opts ...Option) Spec { return newSpec(name, KindAudioOut, opts) }

// VideoInput declares a client → model video track.
func VideoInput(name string, opts ...Option) Spec { return newSpec(name, KindVideoIn, opts) }

// AudioInput declares a client → model audio track.
func AudioInput(name string, opts ...Option) Spec { return newSpec(name, KindAudioIn, opts) }

// Resolve validates a model's declarations and applies the tracks-page rules:
// no declared tracks gives one VideoOut named DefaultTrackName; the default
// track is the one marked Default, else the first VideoOut declared. The
// returned slice is a new one, in declaration order, with Default set on
// exactly the effective default track (on none if the model has neither a
// marked default nor a VideoOut). The error wraps ErrInvalidSpec and names
// the offending track.
func Resolve(specs []Spec) ([]Spec, error) {
	if len(specs) == 0 {
		return []Spec{{Name: DefaultTrackName, Kind: KindVideoOut, Default: true}}, nil
	}
	out := make([]Spec, len(specs))
	copy(out, specs)
	seen := make(map[string]int, len(out))
	marked := -1
	for i, s := range out {
		if err := s.validate(i); err != nil {
			return nil, err
		}
		if j, dup := seen[s.Name]; dup {
			return nil, fmt.Errorf("%w: track %d and track %d are both named %q; track names must be unique", ErrInvalidSpec, j, i, s.Name)
		}
		seen[s.Name] = i
		if s.Default {
			if !s.Kind.IsOutput() {
				return nil, fmt.Errorf("%w: track %q is a %s and cannot be the default; the default must be a VideoOut or AudioOut", ErrInvalidSpec, s.Name, s.Kind)
			}
			if marked >= 0 {
				return nil, fmt.Errorf("%w: tracks %q and %q are both marked default; mark at most one", ErrInvalidSpec, out[marked].Name, s.Name)
			}
			marked = i
		}
	}
	if marked < 0 {
		for i, s := range out {
			if s.Kind == KindVideoOut {
				out[i].Default = true
				break
			}
		}
	}
	return out, nil
}

func (s Spec) validate(i int) error {
	if s.Name == "" {
		return fmt.Errorf("%w: track %d has an empty name; give every track a non-empty name such as %q", ErrInvalidSpec, i, DefaultTrackName)
	}
	if !s.Kind.Valid() {
		return fmt.Errorf("%w: track %q has kind %s; want VideoOut, AudioOut, VideoIn or AudioIn", ErrInvalidSpec, s.Name, s.Kind)
	}
	if math.IsNaN(s.Rate) || math.IsInf(s.Rate, 0) || s.Rate < 0 {
		return fmt.Errorf("%w: track %q has rate %v; want 0 (automatic) or a finite positive number", ErrInvalidSpec, s.Name, s.Rate)
	}
	if !s.Kind.IsVideo() && s.Rate != math.Trunc(s.Rate) {
		return fmt.Errorf("%w: audio track %q has rate %v; want a whole number of samples per second (or 0 for 48000)", ErrInvalidSpec, s.Name, s.Rate)
	}
	if !s.Kind.IsVideo() && s.Rate > 768000 {
		return fmt.Errorf("%w: audio track %q has rate %v; want at most 768000 Hz", ErrInvalidSpec, s.Name, s.Rate)
	}
	if s.Policy != DropOldest && s.Policy != Block {
		return fmt.Errorf("%w: track %q has policy %s; want DropOldest or Block", ErrInvalidSpec, s.Name, s.Policy)
	}
	if s.QueueSize < 0 {
		return fmt.Errorf("%w: track %q has queue size %d; want 0 (default %d) or more", ErrInvalidSpec, s.Name, s.QueueSize, DefaultQueueSize)
	}
	if !s.Kind.IsOutput() && (s.Policy != DropOldest || s.QueueSize != 0) {
		return fmt.Errorf("%w: input track %q sets a queue policy or size; these apply to outputs only", ErrInvalidSpec, s.Name)
	}
	return nil
}
