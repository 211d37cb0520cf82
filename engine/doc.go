// Package engine runs real-time video models: it loads a model once per
// process, admits sessions, runs each session's goroutines under one owner,
// and queues the client's commands. Package wiring connects a session's
// tracks to the encoders and to WebRTC peers, and package protocol serves
// it to the Reactor SDK; models never see a codec, a socket or an SDP.
// PORTING.md beside this package maps the Python runtime's names to these.
//
// # The model contract
//
// A model is declared with a Model value: its Name, an optional YAML Config
// file (read once by New and decoded strictly by Config.Decode), its Tracks
// (package tracks; none means one VideoOut named "main_video"), its Commands
// (built with the generic Command, whose parameter struct gives the flat
// schema the client sees) and its constructor New, which returns a Runner.
// Track and command names are used on the wire exactly as declared.
//
// Runner.RunSession is the model's session function. It runs on its own
// goroutine once per session, with the session's context, and ends the
// session when it returns or panics. A Runner that also implements
// MediaHandler sees every inbound frame; one that implements io.Closer is
// closed by Engine.Close. State one session's loop and its command
// handlers share lives in a SessionValue.
//
// # Who paces
//
// The engine does. A model emits each frame when it has it
// (tracks.VideoOut.Emit or EmitImage never wait for the network by
// default). With a declared rate (tracks.Rate) frames leave at most at that
// cadence, a frame a newer one overtook is skipped and counted; with rate 0
// the engine measures the model's push interval and spreads each batch
// evenly over it. A model that can produce faster than it wants frames
// shown paces its own loop (a time.Ticker). Audio is the exception: emit it
// in real time; the engine plays it out in 20 ms frames, fills gaps with
// silence and trims its buffer after a stall.
//
// # Lifecycle
//
// New validates the declaration, reads the config and calls the
// constructor once. StartSession builds the session's tracks and starts,
// under one errgroup, the model's RunSession, the command runner and (for a
// MediaHandler) the OnMedia dispatcher; the wiring and the protocol add
// theirs (pipelines, receive loops, the liveness monitor, negotiations)
// with Session.Go, so one owner waits for all. Session.Stop, a returning or
// panicking RunSession, a failing Go function, or Engine.Close ends the
// session: ShouldStop turns true, Stopping is closed and the context
// handed to each goroutine is cancelled with the cause, the tracks close
// (Emit and Next return tracks.ErrClosed), every goroutine is waited for,
// SessionValues that are io.Closers are closed, and Done is closed.
//
// # Concurrency
//
// Commands of one session run one at a time, in arrival order, on the
// session's command goroutine, concurrently with RunSession and OnMedia:
// the model's loop reads state that commands update, so that state needs
// synchronisation. A command handler should return promptly (or select on
// Session.Stopping()), since Stop waits for it. Dispatch validates and
// queues without waiting for the handler; Call waits. The client's
// transport (Session.Attach) delivers Send, hears about rejected commands
// and resolves uploads.
//
// Current returns the running session to code that has none at hand. Go
// has no goroutine-local storage, so with several sessions running it
// returns the most recently started one; code that can serve several
// sessions uses the *Session it is handed.
//
// # Locks
//
// The one lock order of a session, from the outside in (a lock is only
// ever taken while holding locks to its left): protocol session.negMu
// (serialises offers) → wiring Session.prepMu (serialises Prepare) →
// engine Session.mu (Session.Go). protocol session.mu and Server.mu, the
// wiring's Wiring.mu and Session.mu, tracks' queue locks and the engine's
// registry lock are leaves: held for a few field reads or writes, never
// across a call into another package, the network, the model, or a wait
// for a goroutine. No lock is held while a pipeline drains: a codec
// restart's new run waits for the old one on its own goroutine.
//
// # Device frames
//
// VideoOut.EmitDevice fails with an error wrapping gpu.ErrNoCUDA in the
// default build; WithDeviceSupport(nil) enables the path once the caller
// wires a device encoder (wiring.Config.DeviceEncoder).
package engine
