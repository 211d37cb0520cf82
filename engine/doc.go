// Package engine runs real-time video models: it loads a model once per
// process, admits sessions, and wires each session's tracks to the encoders
// (package encode, and package gpu in CUDA builds) and to the WebRTC
// transport. Models never see a codec, a socket or an SDP.
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
// Runner.RunSession is the model's session function (Python:
// start_session). It runs on its own goroutine once per session and ends
// the session when it returns or panics. A Runner that also implements
// MediaHandler sees every inbound frame (Python: on_media); one that
// implements io.Closer is closed by Engine.Close.
//
// # Lifecycle
//
// New validates the declaration, reads the config and calls the constructor
// once. StartSession builds the session's tracks and starts, under one
// errgroup, the model's RunSession, the command runner and (for a
// MediaHandler) the OnMedia dispatcher; the transport adds its own
// goroutines (pipelines, receivers) with Session.Go. Session.Stop, a
// returning or panicking RunSession, a failing Go function, or
// Engine.Close ends the session: ShouldStop turns true, the context is
// cancelled with the cause, the tracks close (Emit and Next return
// tracks.ErrClosed), every goroutine is waited for, and Done is closed.
//
// # Concurrency
//
// Commands of one session run one at a time, in arrival order, on the
// session's command goroutine, concurrently with RunSession and OnMedia:
// the model's loop reads state that commands update, so that state needs
// synchronisation. A command handler should return promptly (or select on
// Session.Stopping()), since Stop waits for it. Dispatch validates and
// queues without waiting for the handler; Call waits.
//
// Current is the global accessor (Python: get_ctx()). Go has no
// goroutine-local storage, so with several sessions running it returns the
// most recently started one; code that can serve several sessions uses the
// *Session it is handed.
//
// # Device frames
//
// VideoOut.EmitDevice fails with an error wrapping gpu.ErrNoCUDA in the
// default build; WithDeviceSupport(nil) enables the path once the caller
// wires a device encoder.
package engine
