"""What emit() accepts, checked and turned into engine calls: NumPy arrays,
PyTorch CPU tensors, anything exposing __dlpack__ (CPU or CUDA) or
__cuda_array_interface__ (v3, with its stream), and None."""

import ctypes
import threading

import numpy as np

from . import _abi

_U8 = np.dtype(np.uint8)
_I16 = np.dtype(np.int16)
_F32 = np.dtype(np.float32)
_KDL_CPU, _KDL_CUDA, _KDL_CUDA_HOST, _KDL_CUDA_MANAGED = 1, 2, 3, 13

WANT_VIDEO = ("a NumPy uint8 array of shape (H, W, 3) or (N, H, W, 3) (RGB, values 0-255), a PyTorch "
              "uint8 tensor of that shape (CPU or CUDA), an object with __dlpack__ or "
              "__cuda_array_interface__, or None for a black frame")


def describe(x):
    """Names what the caller passed, for error messages."""
    t = type(x)
    name = f"{t.__module__}.{t.__qualname__}" if t.__module__ not in ("builtins",) else t.__qualname__
    shape = getattr(x, "shape", None)
    dtype = getattr(x, "dtype", None)
    if shape is not None:
        return f"{name} of shape {tuple(shape)} and dtype {dtype}"
    return name


def _check_video_array(a, given):
    """Check a host array's dtype, shape and layout; return (n, h, w, c).
    Errors describe given, what the caller passed."""
    if a.dtype is not _U8 and a.dtype != _U8:
        if a.dtype.kind == "f":
            raise TypeError(f"emit: got {describe(given)}; want uint8 values 0-255 "
                            "(convert floats with (x * 255).clip(0, 255).astype(np.uint8))")
        raise TypeError(f"emit: got {describe(given)}; want {WANT_VIDEO}")
    shape = a.shape
    if len(shape) == 3:
        n, (h, w, c) = 0, shape
    elif len(shape) == 4:
        n, h, w, c = shape
    else:
        raise ValueError(f"emit: got {describe(given)}; want shape (H, W, 3) or (N, H, W, 3)")
    if c != 3:
        raise ValueError(f"emit: got {describe(given)} with {c} channels; want 3 (RGB)")
    if not a.flags.c_contiguous:
        raise ValueError(f"emit: got {describe(given)} that is not C-contiguous (a slice, transpose or "
                         "channel-first view); pass np.ascontiguousarray(frame)")
    return n, h, w, c


def host_view(x, what):
    """A NumPy view (no copy) of a CPU array-like, or None when x is not
    one; CUDA objects return None too."""
    if type(x) is np.ndarray:
        return x
    if hasattr(x, "__cuda_array_interface__"):
        return None
    dev = getattr(x, "__dlpack_device__", None)
    if dev is not None:
        kind, _ = dev()
        if kind in (_KDL_CUDA, _KDL_CUDA_MANAGED):
            return None
        if kind not in (_KDL_CPU, _KDL_CUDA_HOST):
            raise TypeError(f"{what}: got {describe(x)} on DLPack device type {kind}; want CPU or CUDA memory")
        if hasattr(x, "detach") and getattr(x, "requires_grad", False):
            x = x.detach()
        if hasattr(x, "numpy") and type(x).__module__.startswith("torch"):
            return x.numpy()  # shares memory
        return np.from_dlpack(x)
    if isinstance(x, np.ndarray) or hasattr(x, "__array_interface__"):
        return np.asarray(x)
    return None


def emit_video(lib, th, frame, err, copy=True):
    """Emit one frame or batch on video track handle th; copy=False lends
    a single host picture (see OutputTrack.emit)."""
    if frame is None:
        return lib.fw_track_emit_video(th, None, 0, 0, 0, 0, err, _abi.ERR_CAP)
    a = host_view(frame, "emit")
    if a is None:
        if hasattr(frame, "__dlpack__") or hasattr(frame, "__cuda_array_interface__"):
            return emit_device(lib, th, frame, err)
        raise TypeError(f"emit: got {describe(frame)}; want {WANT_VIDEO}")
    n, h, w, c = _check_video_array(a, frame)
    if copy or n:
        return lib.fw_track_emit_video(th, a.ctypes.data, n, h, w, c, err, _abi.ERR_CAP)
    collect_lent(lib)
    with _lent_lock:
        _next_lent[0] += 1
        key = _next_lent[0]
        _lent[key] = a  # a keeps the caller's memory alive (a view holds its base)
    return lib.fw_track_emit_video_lent(th, a.ctypes.data, h, w, c, key, err, _abi.ERR_CAP)


# Host pictures lent with emit(frame, copy=False) that the engine may still
# read: key → the array. Keys come back from fw_lent_released once the
# engine is done (encoded, dropped, discarded at the session's end, or the
# emit failed), never earlier, so an array is never freed under a read.
_lent = {}
_lent_lock = threading.Lock()
_next_lent = [0]
_LENT_BATCH = 64
_lent_keys = (ctypes.c_uint64 * _LENT_BATCH)()


def collect_lent(lib):
    """Drop the arrays of every lent picture the engine is done with;
    return how many it still holds."""
    with _lent_lock:
        while True:
            k = lib.fw_lent_released(_lent_keys, _LENT_BATCH)
            for i in range(k):
                _lent.pop(_lent_keys[i], None)
            if k < _LENT_BATCH:
                return len(_lent)


def emit_audio(lib, th, pcm, err):
    """Emit PCM on audio track handle th: int16 or float32, (N,) mono or
    (C, N) planar; None is 20 ms of silence."""
    if pcm is None:
        return lib.fw_track_emit_audio(th, None, 0, 0, err, _abi.ERR_CAP)
    a = host_view(pcm, "emit")
    if a is None:
        raise TypeError(f"emit: got {describe(pcm)}; want a NumPy int16 or float32 array of shape (N,) or "
                        "(C, N) on the CPU, or None for silence")
    if a.dtype not in (_I16, _F32):
        raise TypeError(f"emit: got {describe(pcm)}; want int16 or float32 samples")
    if a.ndim == 1:
        ch, n = 0, a.shape[0]
    elif a.ndim == 2:
        ch, n = a.shape
    else:
        raise ValueError(f"emit: got {describe(pcm)}; want shape (N,) for mono or (C, N) planar")
    if not a.flags.c_contiguous:
        raise ValueError(f"emit: got {describe(pcm)} that is not C-contiguous; pass np.ascontiguousarray(pcm)")
    f = lib.fw_track_emit_audio if a.dtype == _I16 else lib.fw_track_emit_audio_f32
    return f(th, a.ctypes.data, ch, n, err, _abi.ERR_CAP)


# Device frames in flight: release key → what keeps the memory alive (a
# DLPack managed tensor to delete, or the exporting object).
_pending = {}
_pending_lock = threading.Lock()
_next_key = [0]


class _DLDevice(ctypes.Structure):
    _fields_ = [("device_type", ctypes.c_int32), ("device_id", ctypes.c_int32)]


class _DLDataType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


class _DLTensor(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("device", _DLDevice), ("ndim", ctypes.c_int32),
                ("dtype", _DLDataType), ("shape", ctypes.POINTER(ctypes.c_int64)),
                ("strides", ctypes.POINTER(ctypes.c_int64)), ("byte_offset", ctypes.c_uint64)]


class _DLManagedTensor(ctypes.Structure):
    pass


_DELETER = ctypes.CFUNCTYPE(None, ctypes.POINTER(_DLManagedTensor))
_DLManagedTensor._fields_ = [("dl_tensor", _DLTensor), ("manager_ctx", ctypes.c_void_p), ("deleter", _DELETER)]

_capsule_get = ctypes.pythonapi.PyCapsule_GetPointer
_capsule_get.restype, _capsule_get.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
_capsule_valid = ctypes.pythonapi.PyCapsule_IsValid
_capsule_valid.restype, _capsule_valid.argtypes = ctypes.c_int, [ctypes.py_object, ctypes.c_char_p]
_capsule_rename = ctypes.pythonapi.PyCapsule_SetName
_capsule_rename.restype, _capsule_rename.argtypes = ctypes.c_int, [ctypes.py_object, ctypes.c_char_p]


def _layout(shape, strides, what):
    """(n, h, w, c, fmt, pitch, stride) of a device picture or batch with
    element strides (None for C order), or a ValueError saying why not."""
    if len(shape) == 3:
        n, (h, w, c) = 0, shape
    elif len(shape) == 4:
        n, h, w, c = shape
    else:
        raise ValueError(f"emit: {what} has shape {tuple(shape)}; want (H, W, 3|4) or (N, H, W, 3|4)")
    if c not in (3, 4):
        raise ValueError(f"emit: {what} has {c} channels; want 3 (RGB) or 4 (RGBA)")
    fmt = _abi.RGB24 if c == 3 else _abi.RGBA
    if strides is None:
        return n, h, w, c, fmt, 0, 0
    st = tuple(strides)
    if st[-1] != 1 or st[-2] != c or st[-3] < w * c:
        raise ValueError(f"emit: {what} has strides {st} (elements); want packed pixels with rows at least "
                         f"{w * c} apart (C order, or a row pitch)")
    return n, h, w, c, fmt, st[-3], (st[0] if len(st) == 4 else 0)


def _dlpack(frame):
    """Export frame's DLPack capsule ordered on the legacy default stream
    (the producer's pending writes are made to precede it), and take
    ownership of the managed tensor. Returns (managed pointer, tensor)."""
    try:
        capsule = frame.__dlpack__(stream=1)
    except TypeError:
        raise ValueError(f"emit: {describe(frame)}.__dlpack__ does not take a stream; the engine cannot order "
                         "its read after your writes. Export with a stream or pass __cuda_array_interface__ v3")
    if not _capsule_valid(capsule, b"dltensor"):
        raise ValueError(f"emit: {describe(frame)}.__dlpack__ returned a used or invalid capsule")
    ptr = _capsule_get(capsule, b"dltensor")
    _capsule_rename(capsule, b"used_dltensor")  # ours now: the capsule's destructor will not delete it
    managed = ctypes.cast(ptr, ctypes.POINTER(_DLManagedTensor))
    return managed, managed.contents.dl_tensor


def _delete(managed):
    d = managed.contents.deleter
    if d:
        d(managed)


def emit_device(lib, th, frame, err):
    """Hand a CUDA object's memory to the device encoder without a copy,
    kept alive until the engine's release callback."""
    if hasattr(frame, "__dlpack__") and hasattr(frame, "__dlpack_device__"):
        managed, t = _dlpack(frame)
        try:
            if t.device.device_type not in (_KDL_CUDA, _KDL_CUDA_MANAGED):
                raise ValueError(f"emit: {describe(frame)} is on DLPack device type {t.device.device_type}; want CUDA")
            if (t.dtype.code, t.dtype.bits, t.dtype.lanes) != (1, 8, 1):
                raise TypeError(f"emit: {describe(frame)} has DLPack dtype (code {t.dtype.code}, {t.dtype.bits} bits); "
                                "want uint8")
            shape = [t.shape[i] for i in range(t.ndim)]
            strides = [t.strides[i] for i in range(t.ndim)] if t.strides else None
            lay = _layout(shape, strides, describe(frame))
            _check_device_id(t.device.device_id, frame)
        except BaseException:
            _delete(managed)
            raise
        ptr = (t.data or 0) + t.byte_offset
        return _hand_over(lib, th, ptr, lay, 0, ("dlpack", managed), err)
    cai = frame.__cuda_array_interface__
    if cai.get("typestr") not in ("|u1", "<u1", ">u1"):
        raise TypeError(f"emit: {describe(frame)} has __cuda_array_interface__ typestr {cai.get('typestr')!r}; "
                        "want '|u1' (uint8)")
    if cai.get("version", 0) < 3 or "stream" not in cai:
        raise ValueError(f"emit: {describe(frame)} exposes __cuda_array_interface__ version {cai.get('version')} "
                         "without a 'stream': the engine cannot order its read after your writes. Pass an object "
                         "with __dlpack__ (a PyTorch tensor) or __cuda_array_interface__ v3 with its stream")
    stream = cai["stream"]
    if stream == 2:
        raise ValueError("emit: the frame was written on the per-thread default stream (2), which another "
                         "thread cannot wait for; write it on a stream you own, or synchronize first")
    stream = 0 if stream in (None, 1) else stream
    ptr, _ro = cai["data"]
    st = cai.get("strides")
    if st is not None:
        st = [s for s in st]  # bytes == elements for uint8
    lay = _layout(cai["shape"], st, describe(frame))
    return _hand_over(lib, th, ptr, lay, stream, ("object", frame), err)


def _check_device_id(dev, frame):
    if dev != 0:
        raise ValueError(f"emit: {describe(frame)} is on cuda:{dev}; the engine encodes on cuda:0 "
                         "(set CUDA_VISIBLE_DEVICES so the model's GPU is device 0)")


def _hand_over(lib, th, ptr, lay, stream, keep, err):
    n, h, w, _c, fmt, pitch, stride = lay
    with _pending_lock:
        _next_key[0] += 1
        key = _next_key[0]
        _pending[key] = keep
    return lib.fw_track_emit_device(th, ptr, n, h, w, fmt, pitch, stride, stream, 0, _release_cb, key,
                                    err, _abi.ERR_CAP)


def _release(key):
    """The engine is done with device frame key: delete the DLPack tensor
    (or drop the object), exactly once. Runs on an engine thread with the
    GIL (ctypes took it)."""
    with _pending_lock:
        keep = _pending.pop(key, None)
    if keep is None:
        return
    kind, obj = keep
    if kind == "dlpack":
        _delete(obj)


_release_cb = _abi.RELEASE_FN(_release)


def pending_device_frames():
    """How many device frames the engine still holds (for tests and stats)."""
    with _pending_lock:
        return len(_pending)
