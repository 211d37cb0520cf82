package protocol

import (
	"context"
	"encoding/json"

	"github.com/framewire/framewire/engine/peer"
)

// Engine is what the server needs from the model engine: one loaded model
// that can start sessions. Implementations must be safe for concurrent use.
type Engine interface {
	// ModelName is the model's name, reported as model.name.
	ModelName() string
	// Capabilities is the model's capabilities document (tracks with the
	// client's directions, commands with the flat parameter schema).
	Capabilities() Capabilities
	// StartSession starts one model session. ctx bounds only the start.
	StartSession(ctx context.Context) (Session, error)
}

// Session is one running model session as the transport drives it.
type Session interface {
	// ID is the session's id, unguessable.
	ID() string
	// Stop ends the model session and waits until its goroutines returned.
	// It is idempotent.
	Stop()
	// Done is closed when the model session has ended (by Stop, or because
	// the model returned).
	Done() <-chan struct{}
	// Dispatch validates args against command name's schema and runs it.
	// It returns an error for an unknown command or invalid arguments.
	Dispatch(name string, args json.RawMessage, uploads map[string]Upload) error
	// SetSender installs how the model's Send reaches the client.
	SetSender(send func(v any) error)
	// StartOutput starts the encode pipeline of output track name, writing
	// into out (its Sink) until the session ends, and returns the control
	// that keyframe requests and bitrate estimates go to. It is called at
	// the first offer that maps the output (the codec comes from it), and
	// again, with a new out, when a later offer drops that codec: the
	// implementation then stops the output's previous pipeline first.
	StartOutput(name string, out *peer.Output) (peer.Control, error)
	// VideoInput and AudioInput return the input track called name, or nil.
	VideoInput(name string) peer.VideoInput
	AudioInput(name string) peer.AudioInput
}

// Upload is a file the client uploaded during the session, resolved for a
// command's file parameter. Data must not be modified.
type Upload struct {
	ID       string
	Name     string // sanitised file name
	MimeType string
	Size     int64
	Data     []byte
}

// Capabilities is the capabilities document of the wire contract (§4.1).
type Capabilities struct {
	ProtocolVersion string       `json:"protocol_version"`
	Tracks          []TrackCap   `json:"tracks"`
	Commands        []CommandCap `json:"commands"`
	EmissionFPS     *float64     `json:"emission_fps"`
}

// TrackCap is one track entry: direction is the client's view (a model
// output is recvonly).
type TrackCap struct {
	Name      string         `json:"name"`
	Kind      peer.Kind      `json:"kind"`
	Direction peer.Direction `json:"direction"`
}

// CommandCap is one command entry with its flat parameter schema.
type CommandCap struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Schema      json.RawMessage `json:"schema,omitempty"`
}
