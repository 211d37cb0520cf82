package engine

import (
	"errors"
	"fmt"
)

// Sentinel errors of package engine. Returned errors wrap them with the
// details (compare with errors.Is).
var (
	// ErrInvalidModel is wrapped by every error New returns for a bad
	// declaration: missing name or constructor, bad tracks, bad or duplicate
	// commands, an unreadable or invalid config file.
	ErrInvalidModel = errors.New("engine: invalid model")
	// ErrNoSession is returned by FromContext for a context of no session.
	ErrNoSession = errors.New("engine: the context belongs to no session; use the ctx handed to RunSession, OnMedia or Session.Go, or the *Session itself")
	// ErrSessionEnded is returned by Dispatch, Send and Go once the session
	// has ended or is ending.
	ErrSessionEnded = errors.New("engine: session ended")
	// ErrStopped is the cause of a session ended by Stop (wrapped with the
	// reason) or by Engine.Close.
	ErrStopped = errors.New("engine: session stopped")
	// ErrModelReturned is the cause of a session that ended because the
	// model's RunSession returned nil.
	ErrModelReturned = errors.New("engine: model session function returned")
	// ErrEngineClosed is returned by StartSession after Close.
	ErrEngineClosed = errors.New("engine: engine closed")
	// ErrTooManySessions is returned by StartSession when the engine's
	// session limit is reached.
	ErrTooManySessions = errors.New("engine: too many sessions")
	// ErrUnknownCommand is returned by Dispatch for a command the model
	// does not declare.
	ErrUnknownCommand = errors.New("engine: unknown command")
	// ErrInvalidArgs is returned by Dispatch when a command's arguments do
	// not match its schema.
	ErrInvalidArgs = errors.New("engine: invalid command arguments")
	// ErrBusy is returned by Dispatch when the session's command queue is
	// full.
	ErrBusy = errors.New("engine: command queue full")
	// ErrNotSerializable is returned by Send for a value encoding/json
	// cannot encode.
	ErrNotSerializable = errors.New("engine: message is not JSON-serialisable")
	// ErrNoTransport is returned by Send while no client transport is
	// attached to the session (SetSender was not called).
	ErrNoTransport = errors.New("engine: no client transport attached")
)

// PanicError is the error a session records when the model's code panics:
// in RunSession (the session ends), a command handler or OnMedia (the
// session goes on; the panic is logged and counted).
type PanicError struct {
	// Where names the code that panicked: "RunSession", "command set_prompt",
	// "OnMedia" or "Go".
	Where string
	// Value is the value passed to panic.
	Value any
	// Stack is the goroutine's stack at the panic.
	Stack []byte
}

func (e *PanicError) Error() string {
	return fmt.Sprintf("engine: %s panicked: %v", e.Where, e.Value)
}
