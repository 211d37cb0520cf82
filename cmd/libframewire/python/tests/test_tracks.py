"""Track descriptors, the standalone track's emit checks, latest(), stale
handles."""

import ctypes

import numpy as np
import pytest
import torch

from framewire import VideoModel, model
from framewire import _abi, _frames
from framewire.tracks import AudioIn, AudioOut, OutputTrack, VideoIn, VideoOut, declared


class Base(VideoModel):
    webcam = VideoIn(rate=30)


@model(name="t")
class M(Base):
    main_video = VideoOut(default=True)
    narration = AudioOut(rate=48000)
    microphone = AudioIn()


def test_declarations_in_order_names_from_attributes():
    d = declared(M)
    assert [(t.name, t.kind, t.rate, t.default) for t in d] == [
        ("webcam", _abi.VIDEO_IN, 30.0, False),
        ("main_video", _abi.VIDEO_OUT, 0.0, True),
        ("narration", _abi.AUDIO_OUT, 48000.0, False),
        ("microphone", _abi.AUDIO_IN, 0.0, False),
    ]
    assert M.main_video is d[1]  # on the class: the declaration


@pytest.mark.parametrize("rate", [-1, "30", True])
def test_bad_rate(rate):
    with pytest.raises(ValueError, match="want a number >= 0"):
        VideoOut(rate=rate)


@pytest.fixture
def track():
    lib = _abi.lib()
    h, err = _abi.uptr(), _abi.errbuf()
    _abi.check(lib.fw_track_new_standalone(b"main_video", ctypes.byref(h), err, _abi.ERR_CAP), err)
    t = OutputTrack(lib, h.value, "main_video", _abi.VIDEO_OUT)
    yield t
    lib.fw_track_close(h.value)


def test_emit_accepts_numpy_batches_torch_and_none(track):
    track.emit(np.zeros((48, 64, 3), np.uint8))
    track.emit(np.zeros((2, 48, 64, 3), np.uint8))
    track.emit(torch.zeros((48, 64, 3), dtype=torch.uint8))
    track.emit(None)
    assert track.stats()["emitted"] == 5  # 1 + 2 + 1 + the black frame


@pytest.mark.parametrize("frame,exc,says", [
    (np.zeros((8, 8, 3), np.float32), TypeError, "want uint8 values 0-255"),
    (np.zeros((8, 8, 3), np.int16), TypeError, "dtype int16; want a NumPy uint8 array"),
    (np.zeros((8, 8), np.uint8), ValueError, r"want shape \(H, W, 3\) or \(N, H, W, 3\)"),
    (np.zeros((8, 8, 4), np.uint8), ValueError, "4 channels; want 3"),
    (np.zeros((8, 16, 3), np.uint8)[:, ::2], ValueError, "not C-contiguous"),
    (np.zeros((0, 8, 3), np.uint8), ValueError, "zero or negative size"),
    ([[1, 2, 3]], TypeError, "got list; want"),
    ("frame", TypeError, "got str; want"),
    (torch.zeros((8, 8, 3)), TypeError, "torch.Tensor of shape .* torch.float32; want uint8"),
])
def test_bad_emits_say_what_and_what_is_expected(track, frame, exc, says):
    with pytest.raises(exc, match=says):
        track.emit(frame)
    track.emit(np.zeros((8, 8, 3), np.uint8))  # the track goes on


def test_lent_pictures_are_held_until_the_engine_lets_go(track):
    """emit(copy=False) keeps each array alive while the engine may read
    it: the standalone track queues its newest 4 and drops (releases) the
    rest; closing it releases those 4; a lent array is then freed."""
    import gc
    import weakref
    assert track.lent() == 0
    frames = [np.full((48, 64, 3), i, np.uint8) for i in range(6)]
    refs = [weakref.ref(f) for f in frames]
    for f in frames:
        track.emit(f, copy=False)
    del frames, f
    gc.collect()
    assert track.lent() == 4
    assert [r() is None for r in refs] == [True, True, False, False, False, False]
    track.emit(np.zeros((2, 48, 64, 3), np.uint8), copy=False)  # a batch is copied
    assert track.lent() == 2  # its 2 frames pushed out 2 more lent pictures
    assert track.stats()["emitted"] == 8 and track.stats()["dropped"] == 4
    lib = track._lib
    assert lib.fw_track_close(track._h) == _abi.OK
    gc.collect()
    assert track.lent() == 0 and all(r() is None for r in refs)
    with pytest.raises(_abi.SessionEnded):
        track.emit(np.zeros((8, 8, 3), np.uint8), copy=False)
    assert track.lent() == 0  # a failed lent emit is released at once
    h, err = _abi.uptr(), _abi.errbuf()
    _abi.check(lib.fw_track_new_standalone(b"main_video", ctypes.byref(h), err, _abi.ERR_CAP), err)
    track._h = h.value  # for the fixture's close


def test_bad_lent_emits_say_what_and_are_released(track):
    assert track.lent() == 0
    with pytest.raises(ValueError, match="not C-contiguous"):
        track.emit(np.zeros((8, 16, 3), np.uint8)[:, ::2], copy=False)
    with pytest.raises(ValueError, match="4 channels; want 3"):
        track.emit(np.zeros((8, 8, 4), np.uint8), copy=False)
    lib, err = _abi.lib(), _abi.errbuf()
    K = 1 << 60  # keys no lent emit of this process uses
    keep = np.zeros((8, 8, 4), np.uint8)
    rc = lib.fw_track_emit_video_lent(track._h, keep.ctypes.data, 8, 8, 4, K + 77, err, _abi.ERR_CAP)
    assert rc == _abi.EINVAL and b"want packed RGB, shape (H, W, 3)" in err.value
    rc = lib.fw_track_emit_video_lent(987654321, keep.ctypes.data, 8, 8, 3, K + 78, err, _abi.ERR_CAP)
    assert rc == _abi.EHANDLE
    keys = (ctypes.c_uint64 * 8)()
    assert sorted(keys[i] for i in range(lib.fw_lent_released(keys, 8))) == [K + 77, K + 78]
    t = OutputTrack(lib, 987654321, "gone", _abi.VIDEO_OUT)
    with pytest.raises(_abi.FramewireError, match="ended, or never issued"):
        t.emit(np.zeros((8, 8, 3), np.uint8), copy=False)
    assert t.lent() == 0
    track.emit(np.zeros((8, 8, 3), np.uint8), copy=False)  # the track goes on
    assert track.lent() == 1


class CAI:
    def __init__(self, **over):
        self.__cuda_array_interface__ = {"shape": (8, 8, 3), "typestr": "|u1", "data": (1 << 20, False), "version": 3,
                                         "stream": 1}
        self.__cuda_array_interface__.update(over)


@pytest.mark.parametrize("frame,exc,says", [
    (CAI(version=2), ValueError, "version 2 without a 'stream'"),
    (CAI(typestr="<f4"), TypeError, "typestr '<f4'; want '|u1'"),
    (CAI(stream=2), ValueError, "per-thread default stream"),
    (CAI(shape=(8, 8, 2)), ValueError, "2 channels; want 3 .* or 4"),
    (CAI(strides=(24, 1, 8)), ValueError, "want packed pixels"),
])
def test_bad_device_frames(track, frame, exc, says):
    with pytest.raises(exc, match=says):
        track.emit(frame)
    assert _frames.pending_device_frames() == 0


def test_device_frame_without_cuda_is_refused_and_released(track):
    """Without a device path a well-formed device frame gets NoDevicePath
    and its keep-alive is released at once (exactly once)."""
    from framewire import NoDevicePath
    with pytest.raises(NoDevicePath, match="cannot emit a device frame"):
        track.emit(CAI())
    assert _frames.pending_device_frames() == 0


def test_stale_handles_are_errors_not_crashes():
    lib = _abi.lib()
    err = _abi.errbuf()
    assert lib.fw_session_should_stop(987654321) == 1
    rc = lib.fw_track_emit_video(987654321, None, 0, 0, 0, 0, err, _abi.ERR_CAP)
    assert rc == _abi.EHANDLE and b"unknown handle: track handle 987654321" in err.value
    t = OutputTrack(lib, 987654321, "gone", _abi.VIDEO_OUT)
    with pytest.raises(_abi.FramewireError, match="ended, or never issued"):
        t.emit(None)


def test_closed_track_handle_is_retired():
    lib = _abi.lib()
    h, err = _abi.uptr(), _abi.errbuf()
    _abi.check(lib.fw_track_new_standalone(b"v", ctypes.byref(h), err, _abi.ERR_CAP), err)
    t = OutputTrack(lib, h.value, "v", _abi.VIDEO_OUT)
    t.emit(np.zeros((8, 8, 3), np.uint8))
    assert lib.fw_track_close(h.value) == _abi.OK
    with pytest.raises(_abi.SessionEnded, match="ended, or never issued"):
        t.emit(np.zeros((8, 8, 3), np.uint8))
    assert lib.fw_track_close(h.value) == _abi.EHANDLE  # Close is idempotent: a second one is refused, no crash
