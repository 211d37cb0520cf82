package engine

import "github.com/framewire/framewire/tracks"

// ProtocolVersion is the capabilities document's protocol_version, as the
// reference runtime (RT3) reports it to local-mode clients.
const ProtocolVersion = "v0"

// Capabilities is the capabilities document a client receives in the
// start_session reply (and as the data of the runtime modelCapabilities
// message): the model's tracks, its commands with their parameter schemas,
// and the default output's declared rate. It marshals with encoding/json
// to exactly the wire shape.
type Capabilities struct {
	ProtocolVersion string       `json:"protocol_version"`
	Tracks          []TrackCap   `json:"tracks"`
	Commands        []CommandCap `json:"commands"`
	// EmissionFPS is the declared fixed rate of the default video output
	// (or of the first video output when the default is audio); nil (JSON
	// null) when that rate is automatic or there is no video output.
	EmissionFPS *float64 `json:"emission_fps"`
}

// TrackCap is one track of the capabilities document. Direction is the
// client's view: model outputs are "recvonly", inputs "sendonly".
type TrackCap struct {
	Name      string `json:"name"`
	Kind      string `json:"kind"` // "video" or "audio"
	Direction string `json:"direction"`
}

// CommandCap is one command of the capabilities document, with its flat
// parameter schema (an empty object for a command without parameters).
type CommandCap struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Schema      Schema `json:"schema"`
}

func buildCapabilities(specs []tracks.Spec, cmds []CommandDef) Capabilities {
	c := Capabilities{ProtocolVersion: ProtocolVersion, Tracks: []TrackCap{}, Commands: []CommandCap{}}
	var fps *float64
	firstVideo := -1
	for i, s := range specs {
		c.Tracks = append(c.Tracks, TrackCap{Name: s.Name, Kind: s.Kind.Media(), Direction: s.Kind.Direction()})
		if s.Kind == tracks.KindVideoOut && firstVideo < 0 {
			firstVideo = i
		}
	}
	src := firstVideo
	for i, s := range specs {
		if s.Default && s.Kind == tracks.KindVideoOut {
			src = i
		}
	}
	if src >= 0 && specs[src].Rate > 0 {
		r := specs[src].Rate
		fps = &r
	}
	c.EmissionFPS = fps
	for _, cd := range cmds {
		c.Commands = append(c.Commands, CommandCap{Name: cd.name, Description: cd.desc, Schema: cd.Schema()})
	}
	return c
}

// clone returns a deep copy, so callers may modify what they get.
func (c Capabilities) clone() Capabilities {
	out := c
	out.Tracks = append([]TrackCap{}, c.Tracks...)
	out.Commands = make([]CommandCap, len(c.Commands))
	for i, cc := range c.Commands {
		cc.Schema = Schema(CommandDef{schema: cc.Schema}.Schema())
		out.Commands[i] = cc
	}
	if c.EmissionFPS != nil {
		v := *c.EmissionFPS
		out.EmissionFPS = &v
	}
	return out
}
