package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/framewire/framewire/tracks"
)

// Model declares a model: its name, optional config file, tracks, commands
// and constructor.
//
//	engine.Model{
//		Name:   "face-transform",
//		Config: "config.yml",
//		Tracks: []tracks.Spec{
//			tracks.VideoInput("webcam"),
//			tracks.VideoOutput("main_video", tracks.Default()),
//		},
//		Commands: []engine.CommandDef{engine.Command("set_prompt", "", setPrompt)},
//		New:      newFaceTransform,
//	}
//
// A Model is plain data; New validates it.
type Model struct {
	// Name is the model's name, reported to clients as model.name.
	Name string
	// Config is the path of an optional YAML config file, read once by
	// New and handed to the constructor. Empty means no file.
	Config string
	// ConfigData is the config's YAML itself, for a model built into its
	// binary: used when Config (and engine.WithConfigFile) names no file.
	ConfigData []byte
	// Tracks declares the media tracks; each Spec's Name is the exact wire
	// name. Empty means one VideoOut named "main_video".
	Tracks []tracks.Spec
	// Commands declares the commands clients may send (see Command).
	Commands []CommandDef
	// New builds the model, once per process (per Engine). It receives the
	// config file's contents.
	New func(cfg Config) (Runner, error)
}

// Runner is a loaded model. RunSession runs once per session on its own
// goroutine. It should return when ctx is done or
// s.ShouldStop() is true; when it returns, or panics, the session ends.
//
// A Runner may also implement MediaHandler (to see every inbound frame) and
// io.Closer (called once by Engine.Close). One Runner serves every session
// of its Engine, so state shared across sessions must be synchronised.
type Runner interface {
	RunSession(ctx context.Context, s *Session) error
}

// RunFunc adapts a function to Runner.
type RunFunc func(ctx context.Context, s *Session) error

// RunSession calls f(ctx, s).
func (f RunFunc) RunSession(ctx context.Context, s *Session) error { return f(ctx, s) }

// MediaHandler is implemented by a Runner that wants every inbound picture
// and audio chunk, not only the latest. OnMedia is called
// on the session's media goroutine, one event at a time, in arrival order
// per track, concurrently with RunSession and commands. The bundle's data is
// valid only during the call. An error or panic is logged and counted
// (Stats.MediaErrors); the session goes on. If the handler falls behind, the
// oldest events are dropped and counted on their track (tracks.Stats.Dropped).
type MediaHandler interface {
	OnMedia(s *Session, b *tracks.MediaBundle) error
}

// Config is the model's config file as read by New. The zero value is an
// absent file.
type Config struct {
	path string
	data []byte
}

// Path returns the file's path, or "" when the model has no config file.
func (c Config) Path() string { return c.path }

// Bytes returns the file's contents (nil when absent). The caller must not
// modify them.
func (c Config) Bytes() []byte { return c.data }

// Decode decodes the YAML config into v (a pointer, typically to a struct
// prefilled with defaults). It is strict: a key that matches no field of v
// is an error naming the key and line. With no config file, or an empty
// one, v is left unchanged and Decode returns nil.
func (c Config) Decode(v any) error {
	if len(bytes.TrimSpace(c.data)) == 0 {
		return nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(c.data))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err = withoutRuntimeKeys(err, v); err == nil {
			return nil
		}
		return fmt.Errorf("engine: config %s: %w", c.path, err)
	}
	return nil
}

// Config returns the model's config file as New read it (the zero Config
// when the model has none): the runtime reads its own blocks from it
// (`recording:`, package record).
func (e *Engine) Config() Config { return e.conf }

// withoutRuntimeKeys drops, from a strict decode's error, the unknown
// top-level keys that the runtime reads itself (`recording:`), so a
// model's struct need not declare them. yaml.v3 goes on decoding past an
// unknown field, so v is complete when nothing else is left.
func withoutRuntimeKeys(err error, v any) error {
	var te *yaml.TypeError
	t := reflect.TypeOf(v)
	if !errors.As(err, &te) || t == nil || t.Kind() != reflect.Pointer {
		return err
	}
	top := "field recording not found in type " + t.Elem().String()
	keep := te.Errors[:0:0]
	for _, e := range te.Errors {
		if !strings.HasSuffix(e, top) {
			keep = append(keep, e)
		}
	}
	if len(keep) == 0 {
		return nil
	}
	return &yaml.TypeError{Errors: keep}
}
