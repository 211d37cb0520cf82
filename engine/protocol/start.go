package protocol

import (
	"context"
	"errors"
)

// ErrServerClosed is returned by Start once Close has begun.
var ErrServerClosed = errors.New("protocol: server closed")

// Start starts the server's session as POST /start_session does and
// returns its id, for programs that host one Server per session (the
// production-mode engine node): the transport and upload routes then
// serve that session. It fails when a session is already running, when
// the server is closed, or with the engine's error (engine.
// ErrTooManySessions when the engine is full).
func (s *Server) Start(ctx context.Context) (string, error) {
	s.mu.Lock()
	busy, closed := s.cur != nil, s.closed
	s.mu.Unlock()
	switch {
	case closed:
		return "", ErrServerClosed
	case busy:
		return "", errors.New("protocol: Start: a session is already running")
	}
	ws, err := s.w.Start(ctx)
	if err != nil {
		return "", err
	}
	sess := s.newSession(ws)
	s.mu.Lock()
	if s.closed || s.cur != nil {
		s.mu.Unlock()
		sess.end("superseded")
		return "", ErrServerClosed
	}
	s.cur = sess
	s.mu.Unlock()
	sess.start()
	s.log.Info("session started", "session", sess.id)
	return sess.id, nil
}

// SessionID returns the running session's id, "" when none runs (never
// started, or ended: stopped, orphan grace over, model returned).
func (s *Server) SessionID() string {
	if cur := s.currentSession(); cur != nil {
		return cur.id
	}
	return ""
}

// SessionState returns the running session's state: "waiting" (no client
// connected yet), "streaming", "orphaned" (client lost, reconnect window
// open) or "" when none runs.
func (s *Server) SessionState() string {
	if cur := s.currentSession(); cur != nil {
		if st := cur.currentState(); st != stateClosed {
			return st.String()
		}
	}
	return ""
}
