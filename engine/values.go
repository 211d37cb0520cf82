package engine

import (
	"io"
	"sync"
)

// SessionValue is a typed per-session value of a model: the state its
// RunSession, command handlers and OnMedia share for one session (the
// prompt a command set, the frame counter the loop reads). Declare one per
// kind of state, at package level or in the model; each session gets its
// own value, made by the constructor on the first Get and dropped when the
// session ends (closed first if it implements io.Closer, after every
// goroutine of the session returned). It replaces a map keyed by *Session
// that the model would otherwise keep and clean up.
//
// Get is safe for concurrent use; the value itself must synchronise what
// its users share (commands run concurrently with RunSession).
type SessionValue[T any] struct {
	make func(s *Session) T
}

// NewSessionValue declares a per-session value made by make (called once
// per session, on the first Get, with the session's lock not held).
func NewSessionValue[T any](make func(s *Session) T) *SessionValue[T] {
	return &SessionValue[T]{make: make}
}

// sessionSlot holds one session's value of one SessionValue.
type sessionSlot[T any] struct {
	once sync.Once
	v    T
}

// Get returns session s's value, making it on first use. After the session
// ended it still returns the value it had (a new one when it never had
// one), but that value is no longer closed by the engine.
func (sv *SessionValue[T]) Get(s *Session) T {
	s.mu.Lock()
	if s.values == nil {
		s.values = map[any]any{}
	}
	slot, ok := s.values[sv].(*sessionSlot[T])
	if !ok {
		slot = &sessionSlot[T]{}
		s.values[sv] = slot
	}
	s.mu.Unlock()
	slot.once.Do(func() { slot.v = sv.make(s) })
	return slot.v
}

// closeValues closes the session's values that implement io.Closer; the
// session's goroutines have returned.
func (s *Session) closeValues() {
	s.mu.Lock()
	vals := s.values
	s.values = nil
	s.mu.Unlock()
	for _, v := range vals {
		c, ok := v.(interface{ value() any })
		if !ok {
			continue
		}
		if cl, ok := c.value().(io.Closer); ok {
			if err := cl.Close(); err != nil {
				s.log.Warn("closing a session value", "err", err)
			}
		}
	}
}

func (sl *sessionSlot[T]) value() any {
	var v any
	sl.once.Do(func() {}) // a value still being made is waited for
	v = sl.v
	return v
}
