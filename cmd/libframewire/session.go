package main

/*
#include <stdlib.h>
#include "framewire_abi.h"
*/
import "C"

import (
	"encoding/json"
	"fmt"
	"runtime"
	"sync"
	"unsafe"

	"github.com/framewire/framewire/engine"
	"github.com/framewire/framewire/tracks"
)

// session is one engine session as the ABI sees it: its handle, its
// tracks' handles, and the C memory its media events reuse. It is an
// engine.SessionValue, closed when the session has ended and all its
// goroutines are done.
type session struct {
	h uintptr
	m *model
	s *engine.Session

	mu     sync.Mutex
	tracks map[string]uintptr // handles by track name ("" is the default)

	// Media-goroutine state: OnMedia runs one event at a time.
	ev    *C.fw_media
	err   cErr
	names map[string]*C.char
	pin   runtime.Pinner
}

var sessions = newTable[*session]("session")

func newSession(m *model, s *engine.Session) *session {
	e := &session{m: m, s: s, tracks: map[string]uintptr{}, names: map[string]*C.char{}}
	e.h = sessions.add(e)
	return e
}

// Close tells the binding the handle is gone, then retires the session's
// and its tracks' handles and frees its C memory. Idempotent through
// SessionValue (called once).
func (e *session) Close() error {
	if end := e.m.callbacks().end; end != nil {
		C.fw_call_end(end, C.uintptr_t(e.h))
	}
	sessions.remove(e.h)
	e.mu.Lock()
	for _, h := range e.tracks {
		trackTable.remove(h)
	}
	e.tracks = nil
	e.mu.Unlock()
	for _, p := range e.names {
		C.free(unsafe.Pointer(p))
	}
	if e.ev != nil {
		C.free(unsafe.Pointer(e.ev))
		e.err.free()
	}
	return nil
}

// cErr is an error buffer in C memory for a callback to write into.
type cErr struct {
	p *C.char
	n C.int32_t
}

func newCErr() cErr {
	p := (*C.char)(C.malloc(errCap))
	*p = 0
	return cErr{p, errCap}
}

func (c cErr) string() string {
	s := C.GoString(c.p)
	if s == "" {
		return "failed without a message"
	}
	return s
}

func (c cErr) free() { C.free(unsafe.Pointer(c.p)) }

// cFiles describes the uploads as fw_file values whose data stays in Go
// memory, pinned by pin; free releases the C strings.
func cFiles(files engine.Files, pin *runtime.Pinner) ([]C.fw_file, func()) {
	out := make([]C.fw_file, 0, len(files))
	var strs []*C.char
	cs := func(s string) *C.char {
		p := C.CString(s)
		strs = append(strs, p)
		return p
	}
	for param, f := range files {
		cf := C.fw_file{param: cs(param), name: cs(f.Name), mime: cs(f.MimeType), size: C.int64_t(len(f.Data))}
		if len(f.Data) > 0 {
			pin.Pin(&f.Data[0])
			cf.data = (*C.uint8_t)(unsafe.Pointer(&f.Data[0]))
		}
		out = append(out, cf)
	}
	return out, func() {
		for _, p := range strs {
			C.free(unsafe.Pointer(p))
		}
	}
}

// media hands one inbound event to the binding's media callback, reusing
// the session's C event and error buffer; the picture or chunk stays in Go
// memory, pinned for the call.
func (e *session) media(cb C.fw_media_fn, b *tracks.MediaBundle) error {
	if e.ev == nil {
		e.ev = (*C.fw_media)(C.malloc(C.size_t(unsafe.Sizeof(C.fw_media{}))))
		e.err = newCErr()
	}
	for _, name := range b.Names() {
		d := b.Track(name)
		if d == nil {
			continue
		}
		e.fill(d)
		rc := C.fw_call_media(cb, C.uintptr_t(e.h), e.ev, e.err.p, e.err.n)
		e.pin.Unpin()
		if rc != 0 {
			return fmt.Errorf("on_media: %s", e.err.string())
		}
	}
	return nil
}

// fill describes d in the session's C event, pinning its samples.
func (e *session) fill(d *tracks.TrackData) {
	cname, ok := e.names[d.Name]
	if !ok {
		cname = C.CString(d.Name)
		e.names[d.Name] = cname
	}
	*e.ev = C.fw_media{track: cname, kind: C.int32_t(d.Kind)}
	switch {
	case d.Video != nil && len(d.Video.Pix) > 0:
		e.pin.Pin(&d.Video.Pix[0])
		e.ev.pixels = (*C.uint8_t)(unsafe.Pointer(&d.Video.Pix[0]))
		e.ev.width, e.ev.height = C.int32_t(d.Video.Width), C.int32_t(d.Video.Height)
		e.ev.capture_unix_ns = C.int64_t(d.Video.Capture.UnixNano())
	case d.Audio != nil && len(d.Audio.PCM) > 0:
		e.pin.Pin(&d.Audio.PCM[0])
		e.ev.pcm = (*C.int16_t)(unsafe.Pointer(&d.Audio.PCM[0]))
		e.ev.channels = C.int32_t(max(d.Audio.Channels, 1))
		e.ev.samples = C.int32_t(len(d.Audio.PCM) / max(d.Audio.Channels, 1))
		e.ev.sample_rate = C.int32_t(d.Audio.SampleRate)
		e.ev.capture_unix_ns = C.int64_t(d.Audio.Capture.UnixNano())
	}
}

// fw_session_should_stop returns 1 once the session should end (stop
// requested, client gone, server shutting down) or the handle is stale,
// else 0. It never blocks.
//
//export fw_session_should_stop
func fw_session_should_stop(sh C.uintptr_t) C.int32_t {
	e, err := sessions.get(sh)
	if err != nil || e.s.ShouldStop() {
		return 1
	}
	return 0
}

// fw_session_id writes the session's id (NUL-terminated) into buf.
//
//export fw_session_id
func fw_session_id(sh C.uintptr_t, buf *C.char, n C.int32_t) C.int32_t {
	e, err := sessions.get(sh)
	if err != nil {
		return errBuf{buf, n}.fail(err)
	}
	if int(n) <= len(e.s.ID()) {
		return C.FW_ESHORT
	}
	errBuf{buf, n}.set(e.s.ID())
	return C.FW_OK
}

// fw_session_send sends a JSON document (len bytes) to the client as one
// application message. It does not wait for the client. With no client
// attached (before the SDK connected, or while it reconnects) it returns
// FW_ENOCLIENT and the message is not sent.
//
//export fw_session_send
func fw_session_send(sh C.uintptr_t, doc *C.char, n C.int64_t, err *C.char, errcap C.int32_t) C.int32_t {
	e := errBuf{err, errcap}
	s, gerr := sessions.get(sh)
	if gerr != nil {
		return e.fail(gerr)
	}
	raw := C.GoBytes(unsafe.Pointer(doc), C.int(n))
	if !json.Valid(raw) {
		return e.failf(C.FW_EINVAL, "send: the message is not valid JSON; want a JSON-serialisable value")
	}
	if err := s.s.Send(json.RawMessage(raw)); err != nil {
		return e.fail(err)
	}
	return C.FW_OK
}

// fw_session_send_to sends a JSON document (len bytes) to one client of
// the session (a connection id, as the client callback and
// fw_session_client give it) as one application message. It does not
// wait. FW_ENOCLIENT when that client is not connected.
//
//export fw_session_send_to
func fw_session_send_to(sh C.uintptr_t, client C.int32_t, doc *C.char, n C.int64_t, err *C.char, errcap C.int32_t) C.int32_t {
	e := errBuf{err, errcap}
	s, gerr := sessions.get(sh)
	if gerr != nil {
		return e.fail(gerr)
	}
	raw := C.GoBytes(unsafe.Pointer(doc), C.int(n))
	if !json.Valid(raw) {
		return e.failf(C.FW_EINVAL, "send: the message is not valid JSON; want a JSON-serialisable value")
	}
	if err := s.s.SendTo(int(client), json.RawMessage(raw)); err != nil {
		return e.fail(err)
	}
	return C.FW_OK
}

// fw_session_client returns the id of the client whose command or
// client callback runs now on the session's command thread, 0 elsewhere.
//
//export fw_session_client
func fw_session_client(sh C.uintptr_t) C.int32_t {
	s, err := sessions.get(sh)
	if err != nil {
		return 0
	}
	return C.int32_t(s.s.Client())
}

// fw_session_clients returns how many clients are connected to the
// session now (0 for an unknown handle).
//
//export fw_session_clients
func fw_session_clients(sh C.uintptr_t) C.int32_t {
	s, err := sessions.get(sh)
	if err != nil {
		return 0
	}
	return C.int32_t(s.s.Clients())
}

// fw_session_stop asks the session to end (reason is logged). It does not
// wait.
//
//export fw_session_stop
func fw_session_stop(sh C.uintptr_t, reason *C.char) C.int32_t {
	e, err := sessions.get(sh)
	if err != nil {
		return code(err)
	}
	e.s.RequestStop(goStr(reason))
	return C.FW_OK
}

// fw_session_track looks a track up by name ("" or NULL for the default
// output) and writes its handle and kind. The handle is valid until the
// session ends; the same name gives the same handle.
//
//export fw_session_track
func fw_session_track(sh C.uintptr_t, name *C.char, out *C.uintptr_t, kind *C.int32_t, err *C.char, errcap C.int32_t) C.int32_t {
	e := errBuf{err, errcap}
	s, gerr := sessions.get(sh)
	if gerr != nil {
		return e.fail(gerr)
	}
	n := goStr(name)
	t, gerr := s.s.Track(n)
	if gerr != nil {
		return e.failf(C.FW_EINVAL, "%v", gerr)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tracks == nil {
		return e.failf(C.FW_ECLOSED, "session %s has ended", s.s.ID())
	}
	h, ok := s.tracks[n]
	if !ok {
		h = trackTable.add(newTrack(t))
		s.tracks[n] = h
	}
	tr, _ := trackTable.get(C.uintptr_t(h))
	*out, *kind = C.uintptr_t(h), C.int32_t(tr.kind)
	return C.FW_OK
}
