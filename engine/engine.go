package engine

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"

	"github.com/framewire/framewire/tracks"
)

// Option configures an Engine (see New).
type Option func(*config) error

type config struct {
	log         *slog.Logger
	maxSessions int
	deviceErr   error
	mediaQueue  int
	cmdQueue    int
	configPath  *string
}

// WithLogger sets the logger (default: discard). The engine logs session
// starts and ends, rejected commands, and errors and panics in model code;
// never per frame.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return fmt.Errorf("engine: WithLogger(nil)")
		}
		c.log = l
		return nil
	}
}

// WithMaxSessions bounds the number of concurrent sessions (0, the default,
// means no bound).
func WithMaxSessions(n int) Option {
	return func(c *config) error {
		if n < 0 {
			return fmt.Errorf("engine: WithMaxSessions(%d); want 0 (unbounded) or more", n)
		}
		c.maxSessions = n
		return nil
	}
}

// WithDeviceSupport says whether output tracks accept device frames:
// reason nil enables VideoOut.EmitDevice (the caller wires a device
// encoder); otherwise EmitDevice fails with an error wrapping reason. The
// default is gpu.ErrNoCUDA (tracks.ErrNoCUDA) in a build without the cuda tag.
func WithDeviceSupport(reason error) Option {
	return func(c *config) error {
		c.deviceErr = reason
		return nil
	}
}

// WithMediaQueue sets how many inbound events a session buffers for the
// model's OnMedia handler (default tracks.DefaultMediaQueueSize).
func WithMediaQueue(n int) Option {
	return func(c *config) error {
		if n < 1 {
			return fmt.Errorf("engine: WithMediaQueue(%d); want at least 1", n)
		}
		c.mediaQueue = n
		return nil
	}
}

// WithCommandQueue sets how many validated commands a session buffers
// before Dispatch returns ErrBusy (default 64).
func WithCommandQueue(n int) Option {
	return func(c *config) error {
		if n < 1 {
			return fmt.Errorf("engine: WithCommandQueue(%d); want at least 1", n)
		}
		c.cmdQueue = n
		return nil
	}
}

// WithConfigFile overrides Model.Config, the path of the model's YAML
// config file ("" for none).
func WithConfigFile(path string) Option {
	return func(c *config) error {
		c.configPath = &path
		return nil
	}
}

// Engine is a loaded model that runs sessions. New loads the model once
// (reads its config, calls its constructor); StartSession runs one session
// of it; Close stops every session. All methods are safe for concurrent
// use. The caller must call Close.
type Engine struct {
	name   string
	specs  []tracks.Spec
	cmds   map[string]*CommandDef
	caps   Capabilities
	runner Runner
	cfg    config
	conf   Config // the model's config file, as New read it
	log    *slog.Logger

	stats engineCounters

	mu       sync.Mutex
	sessions map[*Session]struct{}
	closed   bool
	wg       sync.WaitGroup // session supervisors
}

// New validates the model's declaration (tracks, commands), reads its config
// file once, and calls its constructor once. Errors wrap ErrInvalidModel
// (for the declaration and config file) or are the constructor's own.
func New(m Model, opts ...Option) (*Engine, error) {
	cfg := config{log: slog.New(slog.DiscardHandler), deviceErr: defaultDeviceSupport, mediaQueue: tracks.DefaultMediaQueueSize, cmdQueue: 64}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	if m.Name == "" {
		return nil, fmt.Errorf("%w: the model has no name; set Model.Name", ErrInvalidModel)
	}
	if m.New == nil {
		return nil, fmt.Errorf("%w: model %q has no constructor; set Model.New", ErrInvalidModel, m.Name)
	}
	specs, err := tracks.Resolve(m.Tracks)
	if err != nil {
		return nil, fmt.Errorf("%w: model %q: %w", ErrInvalidModel, m.Name, err)
	}
	cmds := make(map[string]*CommandDef, len(m.Commands))
	for i := range m.Commands {
		c := m.Commands[i]
		if c.err != nil {
			return nil, fmt.Errorf("model %q: %w", m.Name, c.err)
		}
		if c.call == nil {
			return nil, fmt.Errorf("%w: model %q: command %d was not built with engine.Command", ErrInvalidModel, m.Name, i)
		}
		if _, dup := cmds[c.name]; dup {
			return nil, fmt.Errorf("%w: model %q declares command %q twice", ErrInvalidModel, m.Name, c.name)
		}
		cmds[c.name] = &c
	}
	path := m.Config
	if cfg.configPath != nil {
		path = *cfg.configPath
	}
	conf := Config{path: path, data: m.ConfigData}
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("%w: model %q: config file: %w", ErrInvalidModel, m.Name, err)
		}
		conf.data = data
	}
	runner, err := m.New(conf)
	if err != nil {
		return nil, fmt.Errorf("engine: model %q: constructor: %w", m.Name, err)
	}
	if runner == nil {
		return nil, fmt.Errorf("%w: model %q: constructor returned a nil Runner", ErrInvalidModel, m.Name)
	}
	e := &Engine{
		name:     m.Name,
		conf:     conf,
		specs:    specs,
		cmds:     cmds,
		caps:     buildCapabilities(specs, m.Commands),
		runner:   runner,
		cfg:      cfg,
		log:      cfg.log.With("component", "engine", "model", m.Name),
		sessions: map[*Session]struct{}{},
	}
	e.log.Info("model loaded", "tracks", len(specs), "commands", len(cmds))
	return e, nil
}

// ModelName returns the model's name.
func (e *Engine) ModelName() string { return e.name }

// Tracks returns the model's resolved track declarations, in order.
func (e *Engine) Tracks() []tracks.Spec { return append([]tracks.Spec(nil), e.specs...) }

// Capabilities returns the capabilities document (a fresh copy).
func (e *Engine) Capabilities() Capabilities { return e.caps.clone() }

// Runner returns the loaded model.
func (e *Engine) Runner() Runner { return e.runner }

// Close stops every running session (cause ErrStopped, reason "engine
// closed"), waits for them, and closes the Runner if it implements
// io.Closer. Later StartSession calls fail with ErrEngineClosed. Close is
// idempotent; it returns the Runner's Close error the first time.
func (e *Engine) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	list := make([]*Session, 0, len(e.sessions))
	for s := range e.sessions {
		list = append(list, s)
	}
	e.mu.Unlock()
	for _, s := range list {
		s.RequestStop("engine closed")
	}
	e.wg.Wait()
	if c, ok := e.runner.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// StartSession starts one session of the model and returns at once: the
// model's RunSession runs on the session's own goroutine. ctx bounds only
// the start (its values are kept); the session runs until Stop, until
// RunSession returns or panics, until a goroutine added with Session.Go
// fails, or until Engine.Close.
func (e *Engine) StartSession(ctx context.Context) (*Session, error) {
	if err := ctx.Err(); err != nil {
		return nil, context.Cause(ctx)
	}
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil, ErrEngineClosed
	}
	if e.cfg.maxSessions > 0 && len(e.sessions) >= e.cfg.maxSessions {
		e.mu.Unlock()
		return nil, fmt.Errorf("%w: %d running, limit %d", ErrTooManySessions, len(e.sessions), e.cfg.maxSessions)
	}
	s, sctx, err := newSession(context.WithoutCancel(ctx), e)
	if err != nil {
		e.mu.Unlock()
		return nil, err
	}
	e.sessions[s] = struct{}{}
	e.stats.sessions.Add(1)
	e.wg.Add(1)
	e.mu.Unlock()
	s.start(sctx)
	return s, nil
}

func (e *Engine) remove(s *Session) {
	e.mu.Lock()
	delete(e.sessions, s)
	e.mu.Unlock()
}

// Sessions returns the sessions running now.
func (e *Engine) Sessions() []*Session {
	e.mu.Lock()
	defer e.mu.Unlock()
	list := make([]*Session, 0, len(e.sessions))
	for s := range e.sessions {
		list = append(list, s)
	}
	return list
}

// engineCounters are the engine's totals over every session it ran.
type engineCounters struct {
	sessions                       atomic.Uint64
	cmdRun, cmdRejected, cmdFailed atomic.Uint64
	sendsRefused                   atomic.Uint64
}

// Stats is a snapshot of an engine's totals over all its sessions, ended
// ones included: the counters a metrics scrape reads (they never reset).
type Stats struct {
	// SessionsStarted counts StartSession calls that started a session;
	// SessionsRunning is how many run now.
	SessionsStarted uint64
	SessionsRunning int
	// CommandsRun, CommandsRejected and CommandsFailed total the
	// sessions' SessionStats counters of the same names.
	CommandsRun, CommandsRejected, CommandsFailed uint64
	// SendsRefused counts Session.Send calls that delivered nothing (no
	// transport, or the transport refused the message).
	SendsRefused uint64
}

// Stats returns the engine's totals. It only reads counters.
func (e *Engine) Stats() Stats {
	e.mu.Lock()
	running := len(e.sessions)
	e.mu.Unlock()
	return Stats{
		SessionsStarted: e.stats.sessions.Load(), SessionsRunning: running,
		CommandsRun: e.stats.cmdRun.Load(), CommandsRejected: e.stats.cmdRejected.Load(), CommandsFailed: e.stats.cmdFailed.Load(),
		SendsRefused: e.stats.sendsRefused.Load(),
	}
}
