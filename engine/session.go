package engine

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/sync/errgroup"

	"github.com/framewire/framewire/engine/internal/ratelog"
	"github.com/framewire/framewire/tracks"
)

// Session is one run of the model for one client. It owns the session's tracks and every
// goroutine of the session: the model's RunSession, the command runner, the
// OnMedia dispatcher, and whatever the transport adds with Go; all run
// under one errgroup. Stop cancels them, waits for each, and closes the
// tracks.
//
// All methods are safe for concurrent use. Sessions are created by
// Engine.StartSession; the zero value is not usable.
type Session struct {
	id  string
	e   *Engine
	set *tracks.Set
	// stopping is closed when the session starts ending (the errgroup's
	// context is done); cause reads why. The context itself is never
	// stored: it is handed to each goroutine the session starts.
	stopping <-chan struct{}
	cause    func() error
	cancel   context.CancelCauseFunc
	g        *errgroup.Group
	// groupCtx is the errgroup's context, kept only to hand to functions
	// started later with Go (an errgroup's goroutines need it); nothing
	// reads it otherwise, and no accessor returns it.
	groupCtx context.Context
	log      *slog.Logger
	media    *tracks.MediaQueue
	cmds     chan cmdJob

	mu      sync.Mutex
	closing bool        // set before g.Wait; Go refuses afterwards
	values  map[any]any // SessionValue instances by key

	ended chan struct{}
	err   error // the cause, written before ended is closed

	transport atomic.Pointer[Transport]
	client    atomic.Int64 // the client of the command or hook running now (clients.go)
	live      atomic.Int64 // clients connected

	cmdRun, cmdRejected, cmdFailed atomic.Uint64
	cmdLog                         ratelog.Limiter // rejected and failed commands' log lines
	mediaEvents, mediaErrors       atomic.Uint64
	panics                         atomic.Uint64
}

type cmdJob struct {
	client  int    // the sending client (ClientTransport), 0 for none
	hook    func() // a ClientHandler hook instead of a command (clients.go)
	name    string
	resolve func(ctx context.Context) (func() error, error) // fetches uploads, returns the handler call
	done    chan error                                      // nil for Dispatch
}

func newSession(base context.Context, e *Engine) (*Session, context.Context, error) {
	set, err := tracks.NewSet(e.specs)
	if err != nil {
		return nil, nil, fmt.Errorf("engine: %w", err)
	}
	set.SetDeviceSupport(e.cfg.deviceErr)
	s := &Session{
		id:    rand.Text(),
		e:     e,
		set:   set,
		cmds:  make(chan cmdJob, e.cfg.cmdQueue),
		ended: make(chan struct{}),
	}
	sctx, cancel := context.WithCancelCause(context.WithValue(base, sessionKey{}, s))
	g, gctx := errgroup.WithContext(sctx)
	s.stopping, s.cause, s.groupCtx, s.cancel, s.g = gctx.Done(), func() error { return context.Cause(gctx) }, gctx, cancel, g
	s.log = e.log.With("session", s.id)
	return s, gctx, nil
}

// start registers the session and launches, with the errgroup's context
// ctx, its goroutines and supervisor.
func (s *Session) start(ctx context.Context) {
	s.log.Info("session started")
	if h, ok := s.e.runner.(MediaHandler); ok {
		s.media = tracks.NewMediaQueue(s.e.cfg.mediaQueue)
		s.set.Subscribe(s.media)
		s.g.Go(func() error { s.dispatchMedia(ctx, h); return nil })
	}
	s.g.Go(func() error { s.runCommands(ctx); return nil })
	s.g.Go(func() error {
		err := s.safe("RunSession", func() error { return s.e.runner.RunSession(ctx, s) })
		if err == nil {
			s.cancel(ErrModelReturned)
		}
		return err
	})
	go s.supervise()
}

func (s *Session) supervise() {
	defer s.e.wg.Done()
	<-s.stopping
	_ = s.set.Close()
	if s.media != nil {
		_ = s.media.Close()
	}
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	_ = s.g.Wait()
	s.cancel(nil)
	s.err = s.cause()
	s.closeValues()
	s.e.remove(s)
	s.log.Info("session ended", "cause", s.err)
	close(s.ended)
}

// safe runs fn, turning a panic into a *PanicError that is logged and
// counted.
func (s *Session) safe(where string, fn func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = s.panicked(where, v)
		}
	}()
	return fn()
}

func (s *Session) panicked(where string, v any) error {
	pe := &PanicError{Where: where, Value: v, Stack: debug.Stack()}
	s.panics.Add(1)
	s.log.Error("model code panicked", "where", where, "panic", fmt.Sprint(v), "stack", string(pe.Stack))
	return pe
}

// ID returns the session's id: random, unguessable, fixed for its life.
func (s *Session) ID() string { return s.id }

// Engine returns the engine that runs the session.
func (s *Session) Engine() *Engine { return s.e }

// Stopping returns a channel closed when the session starts ending (the
// context RunSession and Go functions receive is then done): a command
// handler that waits selects on it. The session's context itself is
// passed to RunSession and Go functions, never stored in the Session.
func (s *Session) Stopping() <-chan struct{} { return s.stopping }

// ShouldStop reports whether the session is ending: a stop was requested,
// the model returned, a session goroutine failed, or the engine is closing.
// A model loop checks it every iteration.
func (s *Session) ShouldStop() bool {
	select {
	case <-s.stopping:
		return true
	default:
		return false
	}
}

// Done is closed when the session has ended: every goroutine it owns has
// returned and its tracks are closed.
func (s *Session) Done() <-chan struct{} { return s.ended }

// Err returns why the session ended (nil while it runs): an error wrapping
// ErrStopped (Stop, Engine.Close), ErrModelReturned, the model's own error,
// or a *PanicError.
func (s *Session) Err() error {
	select {
	case <-s.ended:
		return s.err
	default:
		return nil
	}
}

// RequestStop makes ShouldStop true and cancels the session's context with
// a cause wrapping ErrStopped and reason, without waiting. It is idempotent
// (the first cause wins) and safe to call from the session's own
// goroutines.
func (s *Session) RequestStop(reason string) {
	if reason == "" {
		s.cancel(ErrStopped)
		return
	}
	s.cancel(fmt.Errorf("%w: %s", ErrStopped, reason))
}

// Stop requests the stop (see RequestStop) and waits until the session has
// ended: every goroutine returned, tracks closed. It is idempotent. It must
// not be called from a goroutine the session owns (RunSession, a command,
// OnMedia, a Go function): that would wait for itself; use RequestStop
// there.
func (s *Session) Stop(reason string) {
	s.RequestStop(reason)
	<-s.ended
}

// Go runs fn on a goroutine owned by the session: Stop cancels ctx and waits
// for fn to return. If fn returns an error (or panics) the session ends with
// it as the cause; returning nil does not end the session. After the
// session started ending Go runs nothing and returns ErrSessionEnded.
func (s *Session) Go(fn func(ctx context.Context) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing || s.ShouldStop() {
		return ErrSessionEnded
	}
	ctx := s.groupCtx
	s.g.Go(func() error { return s.safe("Go", func() error { return fn(ctx) }) })
	return nil
}

// Track returns the named track; "" is the default track. Use the typed lookups to emit or read.
func (s *Session) Track(name string) (tracks.Track, error) { return s.set.Track(name) }

// VideoOut returns the named video output ("" for the default track).
func (s *Session) VideoOut(name string) (*tracks.VideoOut, error) { return s.set.VideoOut(name) }

// AudioOut returns the named audio output ("" for the default track).
func (s *Session) AudioOut(name string) (*tracks.AudioOut, error) { return s.set.AudioOut(name) }

// VideoIn returns the named video input.
func (s *Session) VideoIn(name string) (*tracks.VideoIn, error) { return s.set.VideoIn(name) }

// AudioIn returns the named audio input.
func (s *Session) AudioIn(name string) (*tracks.AudioIn, error) { return s.set.AudioIn(name) }

// Outputs returns the output tracks (*tracks.VideoOut, *tracks.AudioOut) in
// declaration order.
func (s *Session) Outputs() []tracks.Track { return s.set.Outputs() }

// Inputs returns the input tracks (*tracks.VideoIn, *tracks.AudioIn) in
// declaration order.
func (s *Session) Inputs() []tracks.Track { return s.set.Inputs() }

// Send sends v to the client as one application message. v must be JSON-serialisable; otherwise Send returns
// an error wrapping ErrNotSerializable. It returns ErrNoTransport while no
// client is attached, ErrSessionEnded after the session ended, and the
// transport's error (wrapped) when it refuses the message. Send does not
// wait for the client. It is safe to call from any goroutine.
func (s *Session) Send(v any) error {
	if s.ShouldStop() {
		return ErrSessionEnded
	}
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("%w: %T: %w", ErrNotSerializable, v, err)
	}
	t := s.currentTransport()
	if t == nil {
		s.e.stats.sendsRefused.Add(1)
		return ErrNoTransport
	}
	if err := t.Send(json.RawMessage(data)); err != nil {
		s.e.stats.sendsRefused.Add(1)
		return fmt.Errorf("engine: send of a %d-byte message: %w", len(data), err)
	}
	return nil
}

// Dispatch validates a command from the client and queues it for the
// session's command goroutine, returning without waiting for the handler.
// args is the message's data (a JSON object, or empty); uploads maps file
// parameters to uploaded files. An Upload whose Data is nil is a reference
// by ID: the command goroutine resolves it through the attached
// Transport's Upload (waiting for a transfer still in flight) just before
// the handler runs, so one queue orders every command, with or without
// files. Commands of one
// session run one at a time, in the order Dispatch accepted them,
// concurrently with RunSession.
//
// An unknown command (ErrUnknownCommand), invalid arguments (ErrInvalidArgs:
// wrong type, out of range, not in the enum, unknown or missing
// parameter), a full queue (ErrBusy) or an ended session (ErrSessionEnded)
// drops the command: the reason is logged, counted in Stats, reported to
// the attached Transport (CommandRejected) and returned. Dispatch never
// blocks; it is safe to call from any goroutine.
func (s *Session) Dispatch(name string, args json.RawMessage, uploads map[string]Upload) error {
	j, err := s.prepare(name, args, uploads)
	if err != nil {
		return err
	}
	return s.enqueue(j)
}

// Call is Dispatch that also waits for the handler and returns its error
// (or a *PanicError). It returns early with context.Cause(ctx), or
// ErrSessionEnded if the session ends first.
func (s *Session) Call(ctx context.Context, name string, args json.RawMessage, uploads map[string]Upload) error {
	j, err := s.prepare(name, args, uploads)
	if err != nil {
		return err
	}
	j.done = make(chan error, 1)
	if err := s.enqueue(j); err != nil {
		return err
	}
	select {
	case err := <-j.done:
		return err
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-s.ended:
		select {
		case err := <-j.done:
			return err
		default:
			return ErrSessionEnded
		}
	}
}

func (s *Session) prepare(name string, args json.RawMessage, uploads map[string]Upload) (cmdJob, error) {
	return s.prepareFrom(0, name, args, uploads)
}

func (s *Session) prepareFrom(client int, name string, args json.RawMessage, uploads map[string]Upload) (cmdJob, error) {
	c, ok := s.e.cmds[name]
	if !ok {
		return cmdJob{}, s.rejectFrom(client, name, fmt.Errorf("%w: %q; the model declares %s", ErrUnknownCommand, ratelog.Truncate(name, 64), s.e.commandList()))
	}
	resolve, err := c.prepare(s, args, uploads)
	if err != nil {
		return cmdJob{}, s.rejectFrom(client, name, err)
	}
	return cmdJob{client: client, name: name, resolve: resolve}, nil
}

func (s *Session) enqueue(j cmdJob) error {
	if s.ShouldStop() {
		return s.rejectFrom(j.client, j.name, ErrSessionEnded)
	}
	select {
	case s.cmds <- j:
		return nil
	default:
		return s.rejectFrom(j.client, j.name, fmt.Errorf("%w: %d commands waiting", ErrBusy, cap(s.cmds)))
	}
}

func (s *Session) reject(name string, err error) error { return s.rejectFrom(0, name, err) }

// rejectFrom drops client's command (0: not from a client): counted,
// logged, and told to that client alone when the transport addresses
// clients.
func (s *Session) rejectFrom(client int, name string, err error) error {
	s.cmdRejected.Add(1)
	s.e.stats.cmdRejected.Add(1)
	// A client can send rejected commands at will: the log gets a bounded
	// rate of lines, each naming how many were suppressed before it.
	if ok, suppressed := s.cmdLog.Allow(); ok {
		s.log.Warn("command dropped", "command", ratelog.Truncate(name, 64), "reason", ratelog.Truncate(err.Error(), 512), "suppressed", suppressed)
	}
	t := s.currentTransport()
	if ct, ok := t.(ClientTransport); ok && client != 0 {
		ct.CommandRejectedTo(client, name, err)
	} else if t != nil {
		t.CommandRejected(name, err)
	}
	return err
}

// resolveUpload returns u, fetching its data through the attached
// Transport when u is a reference (nil Data).
func (s *Session) resolveUpload(ctx context.Context, param string, u Upload) (Upload, error) {
	if u.Data != nil {
		return u, nil
	}
	t := s.currentTransport()
	if t == nil {
		return Upload{}, fmt.Errorf("file parameter %q: upload %q: %w", param, u.ID, ErrNoTransport)
	}
	got, err := t.Upload(ctx, u.ID)
	if err != nil {
		return Upload{}, fmt.Errorf("file parameter %q: %w", param, err)
	}
	if got.Data == nil {
		got.Data = []byte{}
	}
	return got, nil
}

func (e *Engine) commandList() string {
	if len(e.cmds) == 0 {
		return "no commands"
	}
	names := make([]string, 0, len(e.cmds))
	for n := range e.cmds {
		names = append(names, fmt.Sprintf("%q", n))
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

func (s *Session) runCommands(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case j := <-s.cmds:
			err := s.runJob(ctx, j)
			if j.done != nil {
				j.done <- err
			}
		}
	}
}

// runJob resolves the job's upload references and runs its handler,
// counting the outcome.
func (s *Session) runJob(ctx context.Context, j cmdJob) error {
	s.client.Store(int64(j.client))
	defer s.client.Store(0)
	if j.hook != nil {
		return s.safe(j.name, func() error { j.hook(); return nil })
	}
	run, err := j.resolve(ctx)
	if err != nil {
		return s.rejectFrom(j.client, j.name, err)
	}
	err = s.safe("command "+j.name, run)
	if err != nil {
		if ct, ok := s.currentTransport().(ClientTransport); ok {
			ct.CommandFailed(j.client, j.name, err)
		}
		s.cmdFailed.Add(1)
		s.e.stats.cmdFailed.Add(1)
		if ok, suppressed := s.cmdLog.Allow(); ok {
			s.log.Warn("command failed", "command", j.name, "error", ratelog.Truncate(err.Error(), 512), "suppressed", suppressed)
		}
		return err
	}
	s.cmdRun.Add(1)
	s.e.stats.cmdRun.Add(1)
	return nil
}

func (s *Session) dispatchMedia(ctx context.Context, h MediaHandler) {
	for {
		b, err := s.media.Next(ctx)
		if err != nil {
			return
		}
		s.mediaEvents.Add(1)
		if err := s.onMedia(h, b); err != nil {
			n := s.mediaErrors.Add(1)
			if n&(n-1) == 0 { // log the 1st, 2nd, 4th, 8th… failure, not every frame
				s.log.Warn("OnMedia failed", "error", err, "failures", n)
			}
		}
		b.Release()
	}
}

func (s *Session) onMedia(h MediaHandler, b *tracks.MediaBundle) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = s.panicked("OnMedia", v)
		}
	}()
	return h.OnMedia(s, b)
}

// SessionStats is a snapshot of a session's counters.
type SessionStats struct {
	// CommandsRun and CommandsFailed count handler calls that returned nil
	// and that returned an error or panicked; CommandsRejected counts
	// commands dropped before their handler (unknown, invalid, queue full,
	// session ended).
	CommandsRun, CommandsRejected, CommandsFailed uint64
	// MediaEvents counts OnMedia calls; MediaErrors those that returned an
	// error or panicked.
	MediaEvents, MediaErrors uint64
	// Panics counts panics contained in model code.
	Panics uint64
	// Tracks holds each track's counters by name.
	Tracks map[string]tracks.Stats
}

// Stats returns a snapshot of the session's counters.
func (s *Session) Stats() SessionStats {
	st := SessionStats{
		CommandsRun: s.cmdRun.Load(), CommandsRejected: s.cmdRejected.Load(), CommandsFailed: s.cmdFailed.Load(),
		MediaEvents: s.mediaEvents.Load(), MediaErrors: s.mediaErrors.Load(), Panics: s.panics.Load(),
		Tracks: map[string]tracks.Stats{},
	}
	for _, t := range s.set.All() {
		st.Tracks[t.Name()] = t.Stats()
	}
	return st
}

type sessionKey struct{}

// FromContext returns the session whose goroutine received ctx (or a
// context derived from it): RunSession's ctx and those of functions
// started with Session.Go (handlers and OnMedia are handed the *Session). It is get_ctx() for code that is
// handed a context but not the *Session (a pipeline class, a helper):
// with many sessions running, each caller gets its own. With a context of
// no session it returns ErrNoSession. There is no process-wide "current
// session": Go has no goroutine-local storage, and on a node the newest
// session is someone else's.
func FromContext(ctx context.Context) (*Session, error) {
	if s, ok := ctx.Value(sessionKey{}).(*Session); ok {
		return s, nil
	}
	return nil, ErrNoSession
}
