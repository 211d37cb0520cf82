"""Track declarations (class attributes of a VideoModel) and the session
tracks get_track() returns, as on the Reactor tracks page.

    class FaceTransform(VideoModel):
        webcam = VideoIn()
        main_video = VideoOut(default=True)

The class attribute's name is the track's name, on the model and on the
wire.
"""

import ctypes

import numpy as np

from . import _abi, _frames

__all__ = ["VideoOut", "VideoIn", "AudioOut", "AudioIn", "OutputTrack", "InputTrack"]


class _Track:
    kind = 0

    def __init__(self, rate=0.0, default=False):
        if not isinstance(rate, (int, float)) or isinstance(rate, bool) or rate < 0:
            raise ValueError(f"{type(self).__name__}(rate={rate!r}): want a number >= 0 (0.0 is automatic)")
        self.rate = float(rate)
        self.default = bool(default)
        self.name = None

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        from ._runtime import get_ctx
        return get_ctx().get_track(self.name)

    def __repr__(self):
        return f"{type(self).__name__}(rate={self.rate}, default={self.default})  # {self.name}"


class VideoOut(_Track):
    """Model → client video. Send frames with emit()."""
    kind = _abi.VIDEO_OUT


class AudioOut(_Track):
    """Model → client audio. Send samples with emit()."""
    kind = _abi.AUDIO_OUT


class VideoIn(_Track):
    """Client → model video. Read with latest()."""
    kind = _abi.VIDEO_IN


class AudioIn(_Track):
    """Client → model audio. Read with latest()."""
    kind = _abi.AUDIO_IN


def declared(cls):
    """The track declarations of a model class, base classes first, in
    declaration order."""
    out, seen = [], set()
    for klass in reversed(cls.__mro__):
        for name, v in vars(klass).items():
            if isinstance(v, _Track) and name not in seen:
                seen.add(name)
                out.append(v)
    return out


class OutputTrack:
    """A session's output track: emit() sends frames (video) or samples
    (audio). Safe to call from any thread; never waits for the network."""

    def __init__(self, lib, handle, name, kind):
        self._lib, self._h, self.name, self.kind = lib, handle, name, kind
        self._err = _abi.errbuf()

    def emit(self, frame, copy=True):
        """Send one frame (H, W, 3), a batch (N, H, W, 3), a CUDA tensor (no
        host copy), or None (a black 1280x720 frame / 20 ms of silence).
        Raises TypeError/ValueError for bad input (the session goes on) and
        SessionEnded once the session is over.

        copy=False lends a host picture (H, W, 3) instead of copying it:
        the engine reads the array's memory on its own threads after emit
        returns, until it has encoded or dropped the frame, and holds a
        reference to the array until then. Do not write into the array in
        that time; a model that makes a new array every frame (as
        ``tensor.cpu().numpy()`` does) lends safely, and saves the copy
        (about 0.35 ms of CPU per 1280x720 frame). Batches and audio are
        always copied. lent() says how many lent pictures the engine holds."""
        if _abi._forked:
            _abi.lib()  # raises the fork error
        err = self._err
        if self.kind == _abi.VIDEO_OUT:
            rc = _frames.emit_video(self._lib, self._h, frame, err, copy)
        else:
            rc = _frames.emit_audio(self._lib, self._h, frame, err)
        if rc:
            _abi.check(rc, err)

    def lent(self):
        """How many pictures lent with emit(frame, copy=False), on any
        track, the engine still holds; it lets go of the others' arrays."""
        return _frames.collect_lent(self._lib)

    def stats(self):
        """The track's counters: emitted, dropped (queue full), rejected."""
        return _stats(self._lib, self._h)

    def __repr__(self):
        return f"<framewire output track {self.name!r}>"


class InputTrack:
    """A session's input track: latest() returns a copy of the most recent
    frame (video, (H, W, 3) uint8) or chunk (audio, (N,) int16 at 48 kHz),
    or None before the first one. It never blocks."""

    def __init__(self, lib, handle, name, kind):
        self._lib, self._h, self.name, self.kind = lib, handle, name, kind
        self._err = _abi.errbuf()
        self._a, self._b = ctypes.c_int32(), ctypes.c_int32()
        self._size = 640 * 480 * 3 if kind == _abi.VIDEO_IN else 4800

    def latest(self):
        video = self.kind == _abi.VIDEO_IN
        f = self._lib.fw_track_latest_video if video else self._lib.fw_track_latest_audio
        for _ in range(4):  # the size may change between calls
            out = np.empty(self._size, dtype=np.uint8 if video else np.int16)
            rc = f(self._h, out.ctypes.data, self._size, ctypes.byref(self._a), ctypes.byref(self._b),
                   self._err, _abi.ERR_CAP)
            if rc == _abi.ENONE:
                return None
            need = self._a.value * self._b.value * 3 if video else self._a.value
            if rc == _abi.ESHORT:
                self._size = need
                continue
            _abi.check(rc, self._err)
            return out[:need].reshape(self._a.value, self._b.value, 3) if video else out[:need]
        raise _abi.FramewireError(_abi.EFAIL, "latest: the input kept changing size")

    def stats(self):
        """The track's counters: delivered, dropped (on_media fell behind)."""
        return _stats(self._lib, self._h)

    def __repr__(self):
        return f"<framewire input track {self.name!r}>"


def _stats(lib, h):
    import json
    buf = ctypes.create_string_buffer(512)
    _abi.check(lib.fw_track_stats(h, buf, 512), buf)
    return json.loads(buf.value)
