package main

/*
#include <stdlib.h>
#include "framewire_abi.h"
*/
import "C"

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"unsafe"

	"gopkg.in/yaml.v3"

	"github.com/framewire/framewire/engine"
	"github.com/framewire/framewire/engine/host"
	"github.com/framewire/framewire/tracks"
)

// errCap is the size of the error buffers the ABI hands to callbacks.
const errCap = 4096

// model is a model declared through the ABI: the pieces of an
// engine.Model, and the callbacks into the binding.
type model struct {
	h            uintptr
	name, config string

	mu       sync.Mutex
	specs    []tracks.Spec
	commands []engine.CommandDef
	cb       callbacks
	cancel   context.CancelFunc // of the running fw_serve, nil when none

	sessions *engine.SessionValue[*session]
}

// callbacks are the binding's functions; nil ones are not called.
type callbacks struct {
	init    C.fw_init_fn
	session C.fw_session_fn
	command C.fw_command_fn
	media   C.fw_media_fn
	end     C.fw_end_fn
	client  C.fw_client_fn // optional (fw_model_set_client_callback)
}

var models = newTable[*model]("model")

// fw_model_new declares a model named name with an optional YAML config
// file (NULL or "" for none), read when the model is served and handed to
// the init callback as JSON. The handle is written to *out.
//
//export fw_model_new
func fw_model_new(name, config *C.char, out *C.uintptr_t, err *C.char, errcap C.int32_t) C.int32_t {
	e := errBuf{err, errcap}
	n := goStr(name)
	if n == "" {
		return e.failf(C.FW_EINVAL, "model name is empty; want the name clients connect with (modelName)")
	}
	if out == nil {
		return e.failf(C.FW_EINVAL, "out is NULL; want a place for the model handle")
	}
	m := &model{name: n, config: goStr(config)}
	m.sessions = engine.NewSessionValue(func(s *engine.Session) *session { return newSession(m, s) })
	m.h = models.add(m)
	*out = C.uintptr_t(m.h)
	return C.FW_OK
}

// fw_model_add_track declares a track: kind FW_VIDEO_OUT, FW_AUDIO_OUT,
// FW_VIDEO_IN or FW_AUDIO_IN, rate 0 for automatic, is_default non-zero to
// make it the default output. The declaration is checked when served.
//
//export fw_model_add_track
func fw_model_add_track(mh C.uintptr_t, name *C.char, kind C.int32_t, rate C.double, isDefault C.int32_t, err *C.char, errcap C.int32_t) C.int32_t {
	e := errBuf{err, errcap}
	m, gerr := models.get(mh)
	if gerr != nil {
		return e.fail(gerr)
	}
	opts := []tracks.Option{tracks.Rate(float64(rate))}
	if isDefault != 0 {
		opts = append(opts, tracks.Default())
	}
	var spec tracks.Spec
	n := goStr(name)
	switch kind {
	case C.FW_VIDEO_OUT:
		spec = tracks.VideoOutput(n, opts...)
	case C.FW_AUDIO_OUT:
		spec = tracks.AudioOutput(n, opts...)
	case C.FW_VIDEO_IN:
		spec = tracks.VideoInput(n, opts...)
	case C.FW_AUDIO_IN:
		spec = tracks.AudioInput(n, opts...)
	default:
		return e.failf(C.FW_EINVAL, "track %q: kind %d; want FW_VIDEO_OUT (1), FW_AUDIO_OUT (2), FW_VIDEO_IN (3) or FW_AUDIO_IN (4)", n, int(kind))
	}
	m.mu.Lock()
	m.specs = append(m.specs, spec)
	m.mu.Unlock()
	return C.FW_OK
}

// fw_model_add_command declares a command whose parameters are the flat
// schema schema_json (the SDK's shape: {"name": {"type": "number",
// "minimum": 0, "maximum": 1, "default": 0.5, "required": false,
// "description": "…"}, …}, types string, boolean, integer, number, file).
// Arguments are validated by the engine before the command callback runs.
//
//export fw_model_add_command
func fw_model_add_command(mh C.uintptr_t, name, desc, schemaJSON *C.char, err *C.char, errcap C.int32_t) C.int32_t {
	e := errBuf{err, errcap}
	m, gerr := models.get(mh)
	if gerr != nil {
		return e.fail(gerr)
	}
	n := goStr(name)
	var schema engine.Schema
	if s := goStr(schemaJSON); s != "" {
		if err := json.Unmarshal([]byte(s), &schema); err != nil {
			return e.failf(C.FW_EINVAL, "command %q: schema is not a JSON object of parameters: %v", n, err)
		}
	}
	c := engine.CommandFromSchema(n, goStr(desc), schema, func(s *engine.Session, a engine.Args, f engine.Files) error {
		return m.runCommand(n, s, a, f)
	})
	if c.Err() != nil {
		return e.fail(c.Err())
	}
	m.mu.Lock()
	m.commands = append(m.commands, c)
	m.mu.Unlock()
	return C.FW_OK
}

// fw_model_set_callbacks sets the binding's functions: init (required)
// builds the model from its config, session (required) runs one session,
// command runs a declared command, media (optional) receives every inbound
// frame (on_media), end is told when a session handle is gone.
//
//export fw_model_set_callbacks
func fw_model_set_callbacks(mh C.uintptr_t, init C.fw_init_fn, sess C.fw_session_fn, command C.fw_command_fn, media C.fw_media_fn, end C.fw_end_fn, err *C.char, errcap C.int32_t) C.int32_t {
	e := errBuf{err, errcap}
	m, gerr := models.get(mh)
	if gerr != nil {
		return e.fail(gerr)
	}
	if init == nil || sess == nil {
		return e.failf(C.FW_EINVAL, "model %q: the init and session callbacks are required", m.name)
	}
	m.mu.Lock()
	m.cb = callbacks{init: init, session: sess, command: command, media: media, end: end, client: m.cb.client}
	m.mu.Unlock()
	return C.FW_OK
}

// fw_model_set_client_callback sets the function told of each client
// that connects to a session or is lost while it goes on (the model's
// connected/disconnected hooks); NULL removes it. Call it before fw_serve.
//
//export fw_model_set_client_callback
func fw_model_set_client_callback(mh C.uintptr_t, fn C.fw_client_fn, err *C.char, errcap C.int32_t) C.int32_t {
	e := errBuf{err, errcap}
	m, gerr := models.get(mh)
	if gerr != nil {
		return e.fail(gerr)
	}
	m.mu.Lock()
	m.cb.client = fn
	m.mu.Unlock()
	return C.FW_OK
}

// fw_serve serves the model with the command-line flags of cmd/framewire
// given as a JSON array of strings (e.g. ["-addr", ":8080", "-mode",
// "node"]), logging to stderr. It blocks until fw_stop is called (then the
// server shuts down gracefully and every session ends) or serving fails.
// A model is served at most once at a time. With -h it prints the flags'
// usage to stderr and returns FW_OK without serving.
//
//export fw_serve
func fw_serve(mh C.uintptr_t, argsJSON *C.char, err *C.char, errcap C.int32_t) C.int32_t {
	e := errBuf{err, errcap}
	m, gerr := models.get(mh)
	if gerr != nil {
		return e.fail(gerr)
	}
	var args []string
	if s := goStr(argsJSON); s != "" {
		if err := json.Unmarshal([]byte(s), &args); err != nil {
			return e.failf(C.FW_EINVAL, "args are not a JSON array of strings: %v", err)
		}
	}
	o, perr := host.Parse(m.name, args)
	if errors.Is(perr, flag.ErrHelp) {
		return C.FW_OK // -h: the flags' usage was printed; nothing to serve
	}
	if perr != nil {
		return e.failf(C.FW_EINVAL, "%v", perr)
	}
	level, perr := o.Level()
	if perr != nil {
		return e.failf(C.FW_EINVAL, "%v", perr)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if !m.startServing(cancel) {
		return e.failf(C.FW_EINVAL, "model %q is already being served", m.name)
	}
	defer m.stopServing()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	if err := host.Run(ctx, m.declaration(), o, log, os.Stdout); err != nil {
		return e.fail(err)
	}
	return C.FW_OK
}

// fw_stop makes a running fw_serve of the model return. It does not wait.
//
//export fw_stop
func fw_stop(mh C.uintptr_t) C.int32_t {
	m, err := models.get(mh)
	if err != nil {
		return code(err)
	}
	m.mu.Lock()
	if m.cancel != nil {
		m.cancel()
	}
	m.mu.Unlock()
	return C.FW_OK
}

func (m *model) startServing(cancel context.CancelFunc) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cancel != nil {
		return false
	}
	m.cancel = cancel
	return true
}

func (m *model) stopServing() {
	m.mu.Lock()
	m.cancel = nil
	m.mu.Unlock()
}

// declaration is the engine.Model the ABI's calls declared.
func (m *model) declaration() engine.Model {
	m.mu.Lock()
	defer m.mu.Unlock()
	return engine.Model{
		Name:     m.name,
		Config:   m.config,
		Tracks:   append([]tracks.Spec(nil), m.specs...),
		Commands: append([]engine.CommandDef(nil), m.commands...),
		New:      m.build,
	}
}

// build is the model's constructor: the config file as JSON to the init
// callback.
func (m *model) build(cfg engine.Config) (engine.Runner, error) {
	cb := m.callbacks()
	if cb.init == nil || cb.session == nil {
		return nil, fmt.Errorf("%w: model %q has no callbacks (fw_model_set_callbacks)", engine.ErrInvalidModel, m.name)
	}
	doc, err := configJSON(cfg)
	if err != nil {
		return nil, err
	}
	cdoc := C.CString(doc)
	defer C.free(unsafe.Pointer(cdoc))
	buf := newCErr()
	defer buf.free()
	if rc := C.fw_call_init(cb.init, C.uintptr_t(m.h), cdoc, buf.p, buf.n); rc != 0 {
		return nil, fmt.Errorf("model %q: init: %s", m.name, buf.string())
	}
	r := &runner{m: m}
	if cb.media != nil {
		return &mediaRunner{r}, nil
	}
	return r, nil
}

func (m *model) callbacks() callbacks {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cb
}

// configJSON converts the model's YAML config to JSON ("null" without a
// file).
func configJSON(cfg engine.Config) (string, error) {
	var v any
	if err := yaml.Unmarshal(cfg.Bytes(), &v); err != nil {
		return "", fmt.Errorf("config %s: %w", cfg.Path(), err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("config %s: cannot be expressed as JSON (keys must be strings): %w", cfg.Path(), err)
	}
	return string(b), nil
}

// runner runs sessions through the session callback.
type runner struct{ m *model }

// RunSession calls the binding's session function on this goroutine's
// thread; its error is the model's error.
func (r *runner) RunSession(ctx context.Context, s *engine.Session) error {
	e := r.m.sessions.Get(s)
	buf := newCErr()
	defer buf.free()
	if rc := C.fw_call_session(r.m.callbacks().session, C.uintptr_t(e.h), buf.p, buf.n); rc != 0 {
		return fmt.Errorf("start_session: %s", buf.string())
	}
	return nil
}

// ClientConnected implements engine.ClientHandler through the client
// callback, when the binding set one.
func (r *runner) ClientConnected(s *engine.Session, c engine.ClientEvent) {
	r.client(s, 1, c)
}

// ClientDisconnected implements engine.ClientHandler.
func (r *runner) ClientDisconnected(s *engine.Session, c engine.ClientEvent) {
	r.client(s, 0, c)
}

func (r *runner) client(s *engine.Session, connected int, c engine.ClientEvent) {
	fn := r.m.callbacks().client
	if fn == nil {
		return
	}
	C.fw_call_client(fn, C.uintptr_t(r.m.sessions.Get(s).h), C.int32_t(connected), C.int32_t(c.ID), C.int32_t(c.Live))
}

// mediaRunner is a runner whose model handles every inbound frame.
type mediaRunner struct{ *runner }

// OnMedia hands the event to the media callback. The pixels stay in Go
// memory, pinned for the call.
func (r *mediaRunner) OnMedia(s *engine.Session, b *tracks.MediaBundle) error {
	return r.m.sessions.Get(s).media(r.m.callbacks().media, b)
}

// runCommand is every declared command's handler: the validated arguments
// as JSON and the uploads, pinned, to the command callback.
func (m *model) runCommand(command string, s *engine.Session, args engine.Args, files engine.Files) error {
	cb := m.callbacks().command
	if cb == nil {
		return errors.New("the model has no command callback")
	}
	e := m.sessions.Get(s)
	doc, err := json.Marshal(args)
	if err != nil {
		return err
	}
	var pin runtime.Pinner
	defer pin.Unpin()
	cfiles, free := cFiles(files, &pin)
	defer free()
	name, cargs := C.CString(command), C.CString(string(doc))
	defer C.free(unsafe.Pointer(name))
	defer C.free(unsafe.Pointer(cargs))
	buf := newCErr()
	defer buf.free()
	var first *C.fw_file
	if len(cfiles) > 0 {
		first = &cfiles[0]
	}
	if rc := C.fw_call_command(cb, C.uintptr_t(e.h), name, cargs, C.int32_t(len(cfiles)), first, buf.p, buf.n); rc != 0 {
		return errors.New(buf.string())
	}
	return nil
}
