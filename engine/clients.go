package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// Several clients (connections, viewers) may share one session: package
// protocol serves each as a connection with an id. The model sees them
// through ClientHandler, learns which one sent the command it runs
// (Session.Client), and can answer that one only (Session.Reply,
// Session.SendTo). Session.Send reaches every client.

// ClientTransport is a Transport that serves several clients, addressed by
// connection id. Its methods must be safe for concurrent use and must not
// block on the network.
type ClientTransport interface {
	Transport
	// SendTo delivers one application message to client only.
	SendTo(client int, msg json.RawMessage) error
	// CommandRejectedTo tells client only that its command was dropped.
	CommandRejectedTo(client int, command string, err error)
	// CommandFailed reports that client's command ran and its handler
	// returned err or panicked (client 0: not from a client). It is
	// called on the command goroutine.
	CommandFailed(client int, command string, err error)
}

// ClientEvent is a client's arrival or departure.
type ClientEvent struct {
	ID   int // the connection id (1001: the single-connection SDK path)
	Live int // clients connected after the change
}

// ClientHandler is implemented by a Runner that wants to know its
// clients. ClientConnected runs when a client's connection is up and its
// data channel open, so a message sent to it from the hook arrives;
// ClientDisconnected when a client is lost while the session goes on (not
// for the clients the session's end closes). Both run on the session's
// command goroutine, in order with the commands, so a client's connected
// hook runs before its commands; Session.Client is the client's id during
// the call. A panic is contained and counted like a command's.
type ClientHandler interface {
	ClientConnected(s *Session, c ClientEvent)
	ClientDisconnected(s *Session, c ClientEvent)
}

// errNotFromClient is returned by Reply outside a command from a client.
var errNotFromClient = errors.New("engine: reply outside a command or hook of a client")

// Client returns the id of the client whose command or hook runs now on
// the session's command goroutine; 0 elsewhere, and for commands not
// from a client (Call, Dispatch). Call it from a command handler or a
// ClientHandler hook.
func (s *Session) Client() int { return int(s.client.Load()) }

// Clients returns how many clients are connected now.
func (s *Session) Clients() int { return int(s.live.Load()) }

// Reply sends v to the client whose command or hook runs now (Client)
// only. It fails like Send, and when not called for a client's command.
func (s *Session) Reply(v any) error {
	c := s.Client()
	if c == 0 {
		return errNotFromClient
	}
	return s.SendTo(c, v)
}

// SendTo sends v as one application message to client only. Without a
// transport that addresses clients it fails with ErrNoTransport. It is
// safe to call from any goroutine and does not wait for the client.
func (s *Session) SendTo(client int, v any) error {
	if s.ShouldStop() {
		return ErrSessionEnded
	}
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("%w: %T: %w", ErrNotSerializable, v, err)
	}
	t, ok := s.currentTransport().(ClientTransport)
	if !ok {
		s.e.stats.sendsRefused.Add(1)
		return ErrNoTransport
	}
	if err := t.SendTo(client, json.RawMessage(data)); err != nil {
		s.e.stats.sendsRefused.Add(1)
		return fmt.Errorf("engine: send of a %d-byte message to client %d: %w", len(data), client, err)
	}
	return nil
}

// DispatchFrom is Dispatch for a command sent by client: its handler sees
// the id as Session.Client, and a rejection goes to that client only
// (through a ClientTransport).
func (s *Session) DispatchFrom(client int, name string, args json.RawMessage, uploads map[string]Upload) error {
	j, err := s.prepareFrom(client, name, args, uploads)
	if err != nil {
		return err
	}
	return s.enqueue(j)
}

// ClientConnected tells the model (ClientHandler) that client connected,
// live clients being connected now. It does not block: the hook runs on
// the command goroutine.
func (s *Session) ClientConnected(client, live int) {
	s.live.Store(int64(live))
	if h, ok := s.e.runner.(ClientHandler); ok {
		s.enqueueHook(cmdJob{name: "connected hook", client: client, hook: func() { h.ClientConnected(s, ClientEvent{ID: client, Live: live}) }})
	}
}

// ClientDisconnected tells the model (ClientHandler) that client was
// lost while the session goes on. It does not block.
func (s *Session) ClientDisconnected(client, live int) {
	s.live.Store(int64(live))
	if h, ok := s.e.runner.(ClientHandler); ok {
		s.enqueueHook(cmdJob{name: "disconnected hook", client: client, hook: func() { h.ClientDisconnected(s, ClientEvent{ID: client, Live: live}) }})
	}
}

// enqueueHook queues a hook behind the commands; with the queue full it
// waits on a goroutine of the session rather than drop it.
func (s *Session) enqueueHook(j cmdJob) {
	select {
	case s.cmds <- j:
		return
	default:
	}
	_ = s.Go(func(ctx context.Context) error {
		select {
		case s.cmds <- j:
		case <-ctx.Done():
		}
		return nil
	})
}
