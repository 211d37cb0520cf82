package main

/*
#include <stdint.h>
#include "framewire_abi.h"
*/
import "C"

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/framewire/framewire/gpu"
	"github.com/framewire/framewire/tracks"
)

// track is one session track behind a handle; exactly one of the typed
// fields is set, after kind.
type track struct {
	kind tracks.Kind
	t    tracks.Track
	vo   *tracks.VideoOut
	ao   *tracks.AudioOut
	vi   *tracks.VideoIn
	ai   *tracks.AudioIn
}

var trackTable = newTable[*track]("track")

func newTrack(t tracks.Track) *track {
	tr := &track{kind: t.Spec().Kind, t: t}
	switch v := t.(type) {
	case *tracks.VideoOut:
		tr.vo = v
	case *tracks.AudioOut:
		tr.ao = v
	case *tracks.VideoIn:
		tr.vi = v
	case *tracks.AudioIn:
		tr.ai = v
	}
	return tr
}

// lookup returns the track behind h if it has kind k, or writes why not.
func lookup(h C.uintptr_t, k tracks.Kind, op string, e errBuf) (*track, C.int32_t) {
	tr, err := trackTable.get(h)
	if err != nil {
		return nil, e.fail(err)
	}
	if tr.kind != k {
		return nil, e.failf(C.FW_EINVAL, "%s on track %q, which is a %s; want a %s", op, tr.t.Name(), tr.kind, k)
	}
	return tr, C.FW_OK
}

// fw_track_emit_video copies one picture (n == 0: shape (h, w, c)) or a
// batch of n pictures (shape (n, h, w, c)) of packed, C-ordered uint8 RGB
// (c == 3) from pix and queues it; pix NULL emits a black 1280×720 frame.
// It never waits for the network: a full queue drops its oldest frame
// (counted). The caller keeps pix.
//
//export fw_track_emit_video
func fw_track_emit_video(th C.uintptr_t, pix *C.uint8_t, n, h, w, c C.int32_t, err *C.char, errcap C.int32_t) C.int32_t {
	e := errBuf{err, errcap}
	tr, rc := lookup(th, tracks.KindVideoOut, "emit of video", e)
	if rc != C.FW_OK {
		return rc
	}
	var gerr error
	switch {
	case pix == nil:
		gerr = tr.vo.Emit(nil)
	case n == 0:
		gerr = tr.vo.Emit(unsafe.Slice((*byte)(pix), max(int(h)*int(w)*int(c), 0)), int(h), int(w), int(c))
	default:
		gerr = tr.vo.Emit(unsafe.Slice((*byte)(pix), max(int(n)*int(h)*int(w)*int(c), 0)), int(n), int(h), int(w), int(c))
	}
	if gerr != nil {
		return e.fail(gerr)
	}
	return C.FW_OK
}

// fw_track_emit_video_lent queues one packed, C-ordered uint8 RGB picture
// of shape (h, w, c) without copying it: the engine reads pix in place,
// on its own threads, after this call returns, until it has encoded the
// picture, dropped it for a newer one or discarded it at the session's
// end. The caller must keep the memory alive and unwritten until then:
// key (the caller's name for the picture) comes back from
// fw_lent_released exactly once, when the engine is done with pix, and
// also when this call fails (it then never read pix after returning).
// It never waits for the network: a full queue drops its oldest frame
// (counted), releasing it. A model that makes a new array every frame
// saves the copy fw_track_emit_video makes (2.7 MB, about 0.35 ms of CPU,
// per 1280×720 frame).
//
//export fw_track_emit_video_lent
func fw_track_emit_video_lent(th C.uintptr_t, pix *C.uint8_t, h, w, c C.int32_t, key C.uint64_t, err *C.char, errcap C.int32_t) C.int32_t {
	e := errBuf{err, errcap}
	lf := lent.frame(uint64(key))
	tr, rc := lookup(th, tracks.KindVideoOut, "lent emit of video", e)
	if rc != C.FW_OK {
		lf.Release()
		return rc
	}
	if pix == nil || h < 1 || w < 1 || c != 3 {
		lf.Release()
		return e.failf(C.FW_EINVAL, "lent emit on track %q: a picture at %p of shape (%d, %d, %d); want packed RGB, shape (H, W, 3) with H and W of at least 1, in memory the caller keeps until released", tr.t.Name(), pix, h, w, c)
	}
	img := tracks.Image{Pix: unsafe.Slice((*byte)(pix), int(h)*int(w)*3), Width: int(w), Height: int(h)}
	if gerr := tr.vo.EmitShared(context.Background(), img, lf); gerr != nil {
		return e.fail(gerr) // EmitShared released lf
	}
	return C.FW_OK
}

// fw_lent_released writes up to cap keys of lent pictures (from
// fw_track_emit_video_lent, any track or session) the engine is done
// with into keys, oldest first, and returns how many it wrote; the rest
// wait for the next call. Each key is returned once. It never blocks for
// long (one mutex) and is safe from any thread.
//
//export fw_lent_released
func fw_lent_released(keys *C.uint64_t, cap C.int32_t) C.int32_t {
	if keys == nil || cap <= 0 {
		return 0
	}
	return C.int32_t(lent.take(unsafe.Slice((*uint64)(unsafe.Pointer(keys)), int(cap))))
}

// lent is the library's record of lent pictures the engine is done with.
var lent lentKeys

// lentKeys queues the keys of released lent pictures until the binding
// takes them, and keeps the Releasers for reuse, so that a lent emit
// allocates nothing in steady state.
type lentKeys struct {
	mu       sync.Mutex
	released []uint64
	free     []*lentFrame
}

// lentFrame is the Releaser of one lent picture.
type lentFrame struct{ key uint64 }

// frame returns a Releaser for key.
func (l *lentKeys) frame(key uint64) *lentFrame {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := len(l.free); n > 0 {
		f := l.free[n-1]
		l.free = l.free[:n-1]
		f.key = key
		return f
	}
	return &lentFrame{key: key}
}

// Release queues f's key for fw_lent_released and recycles f. The track
// calls it exactly once per lent emit.
func (f *lentFrame) Release() {
	lent.mu.Lock()
	lent.released = append(lent.released, f.key)
	lent.free = append(lent.free, f)
	lent.mu.Unlock()
}

// take moves up to len(dst) released keys into dst, oldest first.
func (l *lentKeys) take(dst []uint64) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := copy(dst, l.released)
	l.released = l.released[:copy(l.released, l.released[n:])]
	return n
}

// fw_track_emit_audio copies int16 PCM and queues it: channels == 0 for a
// mono (samples,) array, else planar (channels, samples). pcm NULL emits
// 20 ms of silence.
//
//export fw_track_emit_audio
func fw_track_emit_audio(th C.uintptr_t, pcm *C.int16_t, channels, samples C.int32_t, err *C.char, errcap C.int32_t) C.int32_t {
	e := errBuf{err, errcap}
	tr, rc := lookup(th, tracks.KindAudioOut, "emit of audio", e)
	if rc != C.FW_OK {
		return rc
	}
	var gerr error
	switch {
	case pcm == nil:
		gerr = tr.ao.Emit(nil)
	case channels == 0:
		gerr = tr.ao.Emit(unsafe.Slice((*int16)(unsafe.Pointer(pcm)), max(int(samples), 0)), int(samples))
	default:
		gerr = tr.ao.Emit(unsafe.Slice((*int16)(unsafe.Pointer(pcm)), max(int(channels)*int(samples), 0)), int(channels), int(samples))
	}
	if gerr != nil {
		return e.fail(gerr)
	}
	return C.FW_OK
}

// fw_track_emit_audio_f32 is fw_track_emit_audio for float samples in
// [-1, 1] (clipped; NaN becomes 0).
//
//export fw_track_emit_audio_f32
func fw_track_emit_audio_f32(th C.uintptr_t, pcm *C.float, channels, samples C.int32_t, err *C.char, errcap C.int32_t) C.int32_t {
	e := errBuf{err, errcap}
	tr, rc := lookup(th, tracks.KindAudioOut, "emit of audio", e)
	if rc != C.FW_OK {
		return rc
	}
	s := unsafe.Slice((*float32)(unsafe.Pointer(pcm)), max(int(max(channels, 1))*int(samples), 0))
	var gerr error
	if channels == 0 {
		gerr = tr.ao.EmitFloat32(s, int(samples))
	} else {
		gerr = tr.ao.EmitFloat32(s, int(channels), int(samples))
	}
	if gerr != nil {
		return e.fail(gerr)
	}
	return C.FW_OK
}

// fw_track_latest_video copies the most recent input picture (packed
// RGB24, h*w*3 bytes) into buf of capacity bytes and writes its size. It
// returns FW_ENONE before the first picture, and FW_ESHORT (with the size
// written) when buf is too small. It never blocks.
//
//export fw_track_latest_video
func fw_track_latest_video(th C.uintptr_t, buf *C.uint8_t, capacity C.int64_t, h, w *C.int32_t, err *C.char, errcap C.int32_t) C.int32_t {
	e := errBuf{err, errcap}
	tr, rc := lookup(th, tracks.KindVideoIn, "latest of video", e)
	if rc != C.FW_OK {
		return rc
	}
	f := tr.vi.Borrow()
	if f == nil {
		return C.FW_ENONE
	}
	defer f.Release()
	*h, *w = C.int32_t(f.Height), C.int32_t(f.Width)
	if int64(capacity) < int64(len(f.Pix)) || buf == nil {
		return C.FW_ESHORT
	}
	copy(unsafe.Slice((*byte)(buf), len(f.Pix)), f.Pix)
	return C.FW_OK
}

// fw_track_latest_audio copies the most recent input chunk (mono int16 at
// *rate Hz) into buf of capacity samples; FW_ENONE and FW_ESHORT as for
// video.
//
//export fw_track_latest_audio
func fw_track_latest_audio(th C.uintptr_t, buf *C.int16_t, capacity C.int64_t, samples, rate *C.int32_t, err *C.char, errcap C.int32_t) C.int32_t {
	e := errBuf{err, errcap}
	tr, rc := lookup(th, tracks.KindAudioIn, "latest of audio", e)
	if rc != C.FW_OK {
		return rc
	}
	f := tr.ai.Borrow()
	if f == nil {
		return C.FW_ENONE
	}
	defer f.Release()
	*samples, *rate = C.int32_t(len(f.PCM)), C.int32_t(f.SampleRate)
	if int64(capacity) < int64(len(f.PCM)) || buf == nil {
		return C.FW_ESHORT
	}
	copy(unsafe.Slice((*int16)(unsafe.Pointer(buf)), len(f.PCM)), f.PCM)
	return C.FW_OK
}

// fw_track_stats writes the track's counters as a JSON object (emitted,
// dropped, rejected, delivered, queue_depth, queue_cap) into buf.
//
//export fw_track_stats
func fw_track_stats(th C.uintptr_t, buf *C.char, n C.int32_t) C.int32_t {
	e := errBuf{buf, n}
	tr, err := trackTable.get(th)
	if err != nil {
		return e.fail(err)
	}
	st := tr.t.Stats()
	doc, _ := json.Marshal(map[string]any{
		"emitted": st.Emitted, "dropped": st.Dropped, "rejected": st.Rejected, "delivered": st.Delivered,
		"queue_depth": st.QueueDepth, "queue_cap": st.QueueCap,
	})
	if int(n) <= len(doc) {
		return C.FW_ESHORT
	}
	e.set(string(doc))
	return C.FW_OK
}

// deviceFrame is a device picture handed over through the ABI: the
// release callback runs exactly once, when the engine is done with it.
type deviceFrame struct {
	gpu.Frame
	release C.fw_release_fn
	ctx     C.uintptr_t
	done    atomic.Bool
}

// Release calls the binding's release callback, once.
func (d *deviceFrame) Release() {
	if d.done.CompareAndSwap(false, true) && d.release != nil {
		C.fw_call_release(d.release, d.ctx)
	}
}

// fw_track_emit_device queues a picture (n == 0) or a batch of n pictures
// in CUDA device memory of the device's primary context, without a copy:
// format FW_RGB24 or FW_RGBA, pitch bytes between rows (0: packed), stride
// bytes between pictures (0: pitch*h). The engine's stream waits for event
// (a CUevent recorded after the producer's writes) or, when event is 0,
// for stream (the CUstream the producer wrote on; 0 is the legacy default
// stream): never a device-wide synchronisation. release(ctx) is called
// exactly once whatever happens: after the encoder has read the frame, or
// when it is dropped, or before this call returns an error. It runs on an
// engine thread. Without a device path (a build without CUDA, or no GPU)
// it fails with FW_ENODEV.
//
//export fw_track_emit_device
func fw_track_emit_device(th C.uintptr_t, ptr C.uintptr_t, n, h, w, format C.int32_t, pitch, stride C.int64_t, stream, event C.uintptr_t, release C.fw_release_fn, ctx C.uintptr_t, err *C.char, errcap C.int32_t) C.int32_t {
	e := errBuf{err, errcap}
	df := &deviceFrame{release: release, ctx: ctx}
	defer func() {
		if r := recover(); r != nil {
			df.Release()
			panic(r)
		}
	}()
	tr, rc := lookup(th, tracks.KindVideoOut, "emit of a device frame", e)
	if rc != C.FW_OK {
		df.Release()
		return rc
	}
	df.Frame = gpu.Frame{Ptr: uintptr(ptr), Pitch: int(pitch), Width: int(w), Height: int(h), Format: gpu.PixelFormat(format),
		Count: int(n), Stride: int(stride), Stream: uintptr(stream), Event: uintptr(event)}
	if verr := df.Frame.Validate(); verr != nil {
		df.Release()
		return e.failf(C.FW_EINVAL, "%v", verr)
	}
	if gerr := tr.vo.EmitDevice(df); gerr != nil {
		df.Release()
		return e.fail(gerr)
	}
	return C.FW_OK
}
