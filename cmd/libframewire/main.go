// Command libframewire is Framewire's C ABI, built with
// `go build -buildmode=c-shared -o libframewire.so ./cmd/libframewire`
// (`make python` does it): a small, versioned surface over packages
// engine, tracks, wiring, protocol and host, for programs that are not Go.
// The Python package `framewire` (python/ beside this file) is written
// over it with ctypes.
//
// The ABI translates calls, handles and errors and holds no engine logic:
// a model declared through it is an engine.Model served by host.Run, the
// same code the framewire command runs.
//
//   - Versioning: fw_abi_version() returns FW_ABI_VERSION
//     (framewire_abi.h); a binding refuses a library of another version.
//   - Handles: models, sessions and tracks cross the boundary as opaque
//     non-zero integers from a table, never Go pointers. A stale handle
//     (a session that ended) gives FW_EHANDLE, never a crash.
//     (runtime/cgo.Handle would panic on a stale one.)
//   - Errors: every call returns FW_OK or a negative FW_E* code and
//     writes what was wrong and what was expected into the caller's
//     (err, errcap) buffer.
//   - Blocking: only fw_serve blocks (until fw_stop or a failure); every
//     other call returns promptly (fw_emit copies the frame and queues
//     it; it never waits for the network). A binding releases its
//     interpreter lock around every call (ctypes does).
//   - Threads: every call is safe from any thread. Callbacks run on
//     engine threads: start_session once per session on its own thread,
//     commands one at a time per session, on_media one event at a time
//     per session, release of device frames on the encoder's thread.
//   - One Go runtime per process: the library cannot be unloaded, and a
//     process that forks after loading it must not call it in the child.
package main

/*
#include <stdlib.h>
#include <string.h>
#include "framewire_abi.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/framewire/framewire/engine"
	"github.com/framewire/framewire/gpu"
	"github.com/framewire/framewire/tracks"
)

func main() {}

//export fw_abi_version
func fw_abi_version() C.int32_t { return C.FW_ABI_VERSION }

// errBuf is a caller's error buffer.
type errBuf struct {
	p *C.char
	n C.int32_t
}

// set writes msg (truncated, NUL-terminated) into the buffer.
func (e errBuf) set(msg string) {
	if e.p == nil || e.n <= 0 {
		return
	}
	b := unsafe.Slice((*byte)(unsafe.Pointer(e.p)), int(e.n))
	k := copy(b[:len(b)-1], msg)
	b[k] = 0
}

// fail writes err into the buffer and returns its code.
func (e errBuf) fail(err error) C.int32_t {
	e.set(err.Error())
	return code(err)
}

// failf writes a formatted message and returns c.
func (e errBuf) failf(c C.int32_t, format string, a ...any) C.int32_t {
	e.set(fmt.Sprintf(format, a...))
	return c
}

// code maps an engine or tracks error to its FW_E* code.
func code(err error) C.int32_t {
	switch {
	case err == nil:
		return C.FW_OK
	case errors.Is(err, tracks.ErrClosed):
		return C.FW_ECLOSED
	case errors.Is(err, tracks.ErrBadFrame), errors.Is(err, engine.ErrInvalidModel), errors.Is(err, errInvalid):
		return C.FW_EINVAL
	case errors.Is(err, errNoDevice), errors.Is(err, gpu.ErrNoCUDA), errors.Is(err, tracks.ErrNoDevicePath):
		return C.FW_ENODEV
	case errors.Is(err, errHandle):
		return C.FW_EHANDLE
	case errors.Is(err, engine.ErrNoTransport):
		return C.FW_ENOCLIENT
	case errors.Is(err, engine.ErrSessionEnded):
		return C.FW_ECLOSED
	}
	return C.FW_EFAIL
}

var (
	errInvalid  = errors.New("invalid argument")
	errNoDevice = errors.New("no device path")
	errHandle   = errors.New("unknown handle")
)

// table hands out handles for values of type T. Lookups take a read lock
// and allocate nothing (a map keyed by the handle, no boxing).
type table[T any] struct {
	mu   sync.RWMutex
	m    map[uintptr]T
	what string
}

// next is shared by every table, so a handle of one kind never names a
// value of another.
var next atomic.Uintptr

func newTable[T any](what string) *table[T] { return &table[T]{m: map[uintptr]T{}, what: what} }

func (t *table[T]) add(v T) uintptr {
	h := next.Add(1)
	t.mu.Lock()
	t.m[h] = v
	t.mu.Unlock()
	return h
}

func (t *table[T]) get(h C.uintptr_t) (T, error) {
	t.mu.RLock()
	v, ok := t.m[uintptr(h)]
	t.mu.RUnlock()
	if !ok {
		return v, fmt.Errorf("%w: %s handle %d (ended, or never issued)", errHandle, t.what, uintptr(h))
	}
	return v, nil
}

func (t *table[T]) remove(h uintptr) {
	t.mu.Lock()
	delete(t.m, h)
	t.mu.Unlock()
}

func (t *table[T]) len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.m)
}

// goStr copies a C string; NULL is "".
func goStr(p *C.char) string {
	if p == nil {
		return ""
	}
	return C.GoString(p)
}

// fw_setenv sets an environment variable of the Go runtime, which copied
// the process environment when the library loaded and does not see later
// changes (setenv, os.environ): FRAMEWIRE_WEB_DIR, GODEBUG and the like.
//
//export fw_setenv
func fw_setenv(key, value *C.char, err *C.char, errcap C.int32_t) C.int32_t {
	if gerr := os.Setenv(goStr(key), goStr(value)); gerr != nil {
		return errBuf{err, errcap}.failf(C.FW_EINVAL, "setenv %q: %v", goStr(key), gerr)
	}
	return C.FW_OK
}
