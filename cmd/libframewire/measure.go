package main

/*
#include <stdint.h>
#include "framewire_abi.h"
*/
import "C"

import (
	"time"
	"unsafe"

	"github.com/framewire/framewire/tracks"
)

// fw_track_new_standalone makes a video output track that belongs to no
// session: frames emitted on it are queued and recycled (the queue keeps
// its newest 4, dropping and counting the rest) and reach no encoder. It
// is for measuring what emit costs from a binding against the Go Emit of
// the same frames (fw_measure_emit), and for a binding's tests. Close it
// with fw_track_close.
//
//export fw_track_new_standalone
func fw_track_new_standalone(name *C.char, out *C.uintptr_t, err *C.char, errcap C.int32_t) C.int32_t {
	e := errBuf{err, errcap}
	set, gerr := tracks.NewSet([]tracks.Spec{tracks.VideoOutput(goStr(name))})
	if gerr != nil {
		return e.failf(C.FW_EINVAL, "%v", gerr)
	}
	t, _ := set.Track("")
	*out = C.uintptr_t(trackTable.add(newTrack(t)))
	return C.FW_OK
}

// fw_track_close closes a standalone track and retires its handle.
//
//export fw_track_close
func fw_track_close(th C.uintptr_t) C.int32_t {
	tr, err := trackTable.get(th)
	if err != nil {
		return code(err)
	}
	trackTable.remove(uintptr(th))
	_ = tr.t.Close()
	return C.FW_OK
}

// fw_measure_emit calls the Go VideoOut.Emit of one (h, w, 3) picture at
// pix n times on video track th and returns the mean nanoseconds per call
// (negative: the error code of the first failing call). It is the Go
// baseline a binding's own emit loop is compared with in the same
// process.
//
//export fw_measure_emit
func fw_measure_emit(th C.uintptr_t, pix *C.uint8_t, h, w, n C.int32_t) C.int64_t {
	tr, err := trackTable.get(th)
	if err != nil {
		return C.int64_t(code(err))
	}
	if tr.vo == nil || pix == nil || n < 1 {
		return C.FW_EINVAL
	}
	frame := unsafe.Slice((*byte)(pix), int(h)*int(w)*3)
	start := time.Now()
	for range int(n) {
		if err := tr.vo.Emit(frame, int(h), int(w), 3); err != nil {
			return C.int64_t(code(err))
		}
	}
	return C.int64_t(time.Since(start).Nanoseconds() / int64(n))
}
