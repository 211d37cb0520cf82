package record

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"regexp"

	"gopkg.in/yaml.v3"
)

// Config is the `recording:` block of a model's config file (the
// runtime's RecordingConfig). The zero value is recording off. Framewire
// muxes the live encoder's H.264 packets instead of encoding a second
// time, so the video encoder keys (codec, preset, crf, target size) are
// accepted for compatibility and only checked: the recording has the
// live stream's size and quality.
type Config struct {
	Enabled bool `yaml:"enabled"`
	// ChunkSeconds is the segment length and forced keyframe interval
	// (default 4).
	ChunkSeconds int `yaml:"chunk_seconds"`
	// ClipMaxSeconds caps snap clips (default 300).
	ClipMaxSeconds float64 `yaml:"clip_max_seconds"`
	// VideoTrack names the recorded video output; empty = the first.
	VideoTrack string `yaml:"video_track"`
	// AudioTrack names the recorded audio output; empty = the first.
	// Audio is not recorded yet (see the package doc).
	AudioTrack string `yaml:"audio_track"`
	Video      struct {
		Codec        string `yaml:"codec"`
		Preset       string `yaml:"preset"`
		CRF          int    `yaml:"crf"`
		TargetWidth  int    `yaml:"target_width"`
		TargetHeight int    `yaml:"target_height"`
	} `yaml:"video"`
	Audio struct {
		Codec       string `yaml:"codec"`
		BitrateKbps int    `yaml:"bitrate_kbps"`
	} `yaml:"audio"`
	// SkipLeadingBlack is parsed, like the runtime does, and not read.
	SkipLeadingBlack *bool `yaml:"skip_leading_black"`
}

// WithDefaults fills the zero fields with the contract's defaults.
func (c Config) WithDefaults() Config {
	if c.ChunkSeconds == 0 {
		c.ChunkSeconds = 4
	}
	if c.ClipMaxSeconds == 0 {
		c.ClipMaxSeconds = 300
	}
	return c
}

// Validate reports a setting Framewire cannot honour.
func (c Config) Validate() error {
	c = c.WithDefaults()
	if c.ChunkSeconds < 1 || c.ChunkSeconds > 60 {
		return fmt.Errorf("recording.chunk_seconds %d: want an integer from 1 to 60", c.ChunkSeconds)
	}
	if c.ClipMaxSeconds < 0 {
		return fmt.Errorf("recording.clip_max_seconds %g: want a positive number of seconds", c.ClipMaxSeconds)
	}
	switch c.Video.Codec {
	case "", "h264":
	case "h265":
		return errors.New("recording.video.codec h265: Framewire records the live H.264 packets without re-encoding; use h264 (or leave it out)")
	default:
		return fmt.Errorf("recording.video.codec %q: want h264", c.Video.Codec)
	}
	if c.Audio.Codec != "" && c.Audio.Codec != "aac" {
		return fmt.Errorf("recording.audio.codec %q: want aac", c.Audio.Codec)
	}
	return nil
}

// ParseConfig reads the `recording:` block of a model's YAML config file
// (the rest of the file is the model's and is not looked at). A missing
// block or file gives the zero Config (recording off). Keys inside the
// block are checked strictly: a misspelt key is an error naming it.
func ParseConfig(data []byte) (Config, error) {
	var c Config
	if len(bytes.TrimSpace(data)) == 0 {
		return c, nil
	}
	var top struct {
		Recording yaml.Node `yaml:"recording"`
	}
	if err := yaml.Unmarshal(data, &top); err != nil {
		return c, fmt.Errorf("record: config: %w", err)
	}
	if top.Recording.Kind == 0 {
		return c, nil
	}
	b, err := yaml.Marshal(&top.Recording)
	if err != nil {
		return c, fmt.Errorf("record: config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return c, fmt.Errorf("record: config: recording: %w", err)
	}
	var raw map[string]any // yaml.v3 truncates 0.5 into an int field silently
	if err := yaml.Unmarshal(b, &raw); err == nil {
		if v, ok := raw["chunk_seconds"]; ok {
			if _, isInt := v.(int); !isInt {
				return c, fmt.Errorf("record: config: recording.chunk_seconds %v: want an integer number of seconds", v)
			}
		}
	}
	if err := c.Validate(); err != nil {
		return c, fmt.Errorf("record: config: %w", err)
	}
	return c.WithDefaults(), nil
}

// idRE is the only recording id form served back: a lowercase UUID.
var idRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// ValidID reports whether id is a lowercase UUID, the only form of
// recording id that /clips serves.
func ValidID(id string) bool { return idRE.MatchString(id) }

// NewID returns a fresh random (version 4) lowercase UUID.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
