package engine

import (
	"context"
	"encoding/json"
)

// Transport is a session's client connection as the engine uses it:
// package protocol attaches one per session (Session.Attach) while a client
// is connected. Its methods must be safe for concurrent use and must not
// block on the network.
type Transport interface {
	// Send delivers one application message to the client: msg is the
	// model's value, already JSON-encoded. It returns an error when the
	// message cannot be delivered (no open channel, larger than the client
	// accepts).
	Send(msg json.RawMessage) error
	// CommandRejected tells the client that a command was dropped before
	// its handler ran, and why. It is called on the goroutine that
	// rejected it (Dispatch's caller, or the command goroutine when an
	// upload could not be resolved).
	CommandRejected(command string, err error)
	// Upload returns the file the client uploaded as id, waiting (bounded
	// by ctx) for an upload whose transfer is still in flight. The
	// returned Data must not be modified.
	Upload(ctx context.Context, id string) (Upload, error)
}

// Attach installs the session's client transport (nil detaches it). Send
// fails with ErrNoTransport while none is attached, and commands that name
// uploads cannot be resolved. Attach is safe to call at any time, from any
// goroutine.
func (s *Session) Attach(t Transport) {
	if t == nil {
		s.transport.Store(nil)
		return
	}
	s.transport.Store(&t)
}

func (s *Session) currentTransport() Transport {
	if p := s.transport.Load(); p != nil {
		return *p
	}
	return nil
}
