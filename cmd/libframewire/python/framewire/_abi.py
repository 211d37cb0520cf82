"""The ctypes binding of libframewire.so (framewire_abi.h): loading, the
functions' signatures, error codes as Python exceptions, and the guard
against calling the library in a forked child.

ctypes releases the GIL around every foreign call and takes it again in
every callback, so no call into the engine holds the GIL while it works.
"""

import ctypes
import os
import sys

ABI_VERSION = 1

OK, EINVAL, ECLOSED, ENODEV, ESHORT, EHANDLE, EFAIL, ENOCLIENT, ENONE = 0, -1, -2, -3, -4, -5, -6, -7, 1
VIDEO_OUT, AUDIO_OUT, VIDEO_IN, AUDIO_IN = 1, 2, 3, 4
RGB24, RGBA = 1, 2
ERR_CAP = 4096


class FramewireError(RuntimeError):
    """An engine call failed; ``code`` is the FW_E* code."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


class SessionEnded(FramewireError):
    """The session (or its track) has ended: stop emitting."""


class NoDevicePath(FramewireError):
    """Device frames cannot be encoded here: the library was built without
    CUDA, or no GPU opened."""


_c = ctypes
u8p = _c.POINTER(_c.c_uint8)
i16p = _c.POINTER(_c.c_int16)
f32p = _c.POINTER(_c.c_float)
i32p = _c.POINTER(_c.c_int32)
uptr = _c.c_size_t  # uintptr_t


class File_(_c.Structure):
    _fields_ = [("param", _c.c_char_p), ("name", _c.c_char_p), ("mime", _c.c_char_p),
                ("data", _c.c_void_p), ("size", _c.c_int64)]


class Media(_c.Structure):
    _fields_ = [("track", _c.c_char_p), ("kind", _c.c_int32), ("pixels", _c.c_void_p),
                ("width", _c.c_int32), ("height", _c.c_int32), ("pcm", _c.c_void_p),
                ("samples", _c.c_int32), ("channels", _c.c_int32), ("sample_rate", _c.c_int32),
                ("capture_unix_ns", _c.c_int64)]


INIT_FN = _c.CFUNCTYPE(_c.c_int32, uptr, _c.c_char_p, _c.c_void_p, _c.c_int32)
SESSION_FN = _c.CFUNCTYPE(_c.c_int32, uptr, _c.c_void_p, _c.c_int32)
COMMAND_FN = _c.CFUNCTYPE(_c.c_int32, uptr, _c.c_char_p, _c.c_char_p, _c.c_int32, _c.POINTER(File_),
                          _c.c_void_p, _c.c_int32)
MEDIA_FN = _c.CFUNCTYPE(_c.c_int32, uptr, _c.POINTER(Media), _c.c_void_p, _c.c_int32)
END_FN = _c.CFUNCTYPE(None, uptr)
RELEASE_FN = _c.CFUNCTYPE(None, uptr)
CLIENT_FN = _c.CFUNCTYPE(None, uptr, _c.c_int32, _c.c_int32, _c.c_int32)

_E = [_c.c_char_p, _c.c_int32]  # (err, errcap)
_SIGNATURES = {
    "fw_abi_version": ([], _c.c_int32),
    "fw_model_new": ([_c.c_char_p, _c.c_char_p, _c.POINTER(uptr)] + _E, _c.c_int32),
    "fw_model_add_track": ([uptr, _c.c_char_p, _c.c_int32, _c.c_double, _c.c_int32] + _E, _c.c_int32),
    "fw_model_add_command": ([uptr, _c.c_char_p, _c.c_char_p, _c.c_char_p] + _E, _c.c_int32),
    "fw_model_set_callbacks": ([uptr, INIT_FN, SESSION_FN, COMMAND_FN, MEDIA_FN, END_FN] + _E, _c.c_int32),
    "fw_model_set_client_callback": ([uptr, CLIENT_FN] + _E, _c.c_int32),
    "fw_serve": ([uptr, _c.c_char_p] + _E, _c.c_int32),
    "fw_session_send_to": ([uptr, _c.c_int32, _c.c_char_p, _c.c_int64] + _E, _c.c_int32),
    "fw_session_client": ([uptr], _c.c_int32),
    "fw_session_clients": ([uptr], _c.c_int32),
    "fw_stop": ([uptr], _c.c_int32),
    "fw_setenv": ([_c.c_char_p, _c.c_char_p] + _E, _c.c_int32),
    "fw_session_should_stop": ([uptr], _c.c_int32),
    "fw_session_id": ([uptr, _c.c_char_p, _c.c_int32], _c.c_int32),
    "fw_session_send": ([uptr, _c.c_char_p, _c.c_int64] + _E, _c.c_int32),
    "fw_session_stop": ([uptr, _c.c_char_p], _c.c_int32),
    "fw_session_track": ([uptr, _c.c_char_p, _c.POINTER(uptr), i32p] + _E, _c.c_int32),
    "fw_track_emit_video": ([uptr, _c.c_void_p, _c.c_int32, _c.c_int32, _c.c_int32, _c.c_int32] + _E, _c.c_int32),
    "fw_track_emit_video_lent": ([uptr, _c.c_void_p, _c.c_int32, _c.c_int32, _c.c_int32, _c.c_uint64] + _E,
                                 _c.c_int32),
    "fw_lent_released": ([_c.POINTER(_c.c_uint64), _c.c_int32], _c.c_int32),
    "fw_track_emit_audio": ([uptr, _c.c_void_p, _c.c_int32, _c.c_int32] + _E, _c.c_int32),
    "fw_track_emit_audio_f32": ([uptr, _c.c_void_p, _c.c_int32, _c.c_int32] + _E, _c.c_int32),
    "fw_track_latest_video": ([uptr, _c.c_void_p, _c.c_int64, i32p, i32p] + _E, _c.c_int32),
    "fw_track_latest_audio": ([uptr, _c.c_void_p, _c.c_int64, i32p, i32p] + _E, _c.c_int32),
    "fw_track_stats": ([uptr, _c.c_char_p, _c.c_int32], _c.c_int32),
    "fw_track_new_standalone": ([_c.c_char_p, _c.POINTER(uptr)] + _E, _c.c_int32),
    "fw_track_close": ([uptr], _c.c_int32),
    "fw_measure_emit": ([uptr, _c.c_void_p, _c.c_int32, _c.c_int32, _c.c_int32], _c.c_int64),
    "fw_track_emit_device": ([uptr, uptr, _c.c_int32, _c.c_int32, _c.c_int32, _c.c_int32, _c.c_int64,
                              _c.c_int64, uptr, uptr, RELEASE_FN, uptr] + _E, _c.c_int32),
}

_forked = False
_lib = None


def _after_fork_in_child():
    global _forked
    _forked = True


def cuda_usable():
    """(True, "") where the cuda build of the library can run: libcuda.so.1
    loads and cuInit finds a device; else (False, why). The cuda build's
    CUDA binding exits the process when cuInit fails, so this is asked
    before loading it (as the image's launcher does for the server)."""
    if os.environ.get("FRAMEWIRE_CPU"):
        return False, "FRAMEWIRE_CPU is set"
    try:
        cu = ctypes.CDLL("libcuda.so.1")
    except OSError as e:
        return False, f"libcuda.so.1 does not load ({e})"
    rc = cu.cuInit(0)
    if rc != 0:
        return False, f"cuInit failed (CUresult {rc})"
    n = ctypes.c_int()
    if cu.cuDeviceGetCount(ctypes.byref(n)) != 0 or n.value < 1:
        return False, "no CUDA device"
    return True, ""


def library_path():
    """Where the library is: $FRAMEWIRE_LIB, else _lib/ inside this package:
    the cuda build where it can run (cuda_usable), else the CPU build."""
    p = os.environ.get("FRAMEWIRE_LIB")
    if p:
        return p
    lib_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_lib")
    cuda = os.path.join(lib_dir, "libframewire-cuda.so")
    if os.path.exists(cuda):
        ok, why = cuda_usable()
        if ok:
            return cuda
        import logging
        logging.getLogger("framewire").info("the CPU build of the engine: %s", why)
    return os.path.join(lib_dir, "libframewire.so")


def lib():
    """The loaded library (loaded on first use; one per process)."""
    global _lib
    if _forked:
        raise RuntimeError(
            "framewire: this process was forked after libframewire was loaded; the engine's Go "
            "runtime does not survive fork, so the child cannot call it. Start worker processes "
            "with multiprocessing.set_start_method('spawn') (or 'forkserver'), or load framewire "
            "in the child only.")
    if _lib is not None:
        return _lib
    path = library_path()
    if not os.path.exists(path):
        raise ImportError(f"framewire: {path} not found; build it with `make python` (or set FRAMEWIRE_LIB)")
    l = ctypes.CDLL(path)
    for name, (args, res) in _SIGNATURES.items():
        f = getattr(l, name)
        f.argtypes, f.restype = args, res
    v = l.fw_abi_version()
    if v != ABI_VERSION:
        raise ImportError(f"framewire: {path} speaks ABI version {v}; this package wants {ABI_VERSION}")
    os.register_at_fork(after_in_child=_after_fork_in_child)
    web = os.environ.get("FRAMEWIRE_WEB_DIR") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "web")
    if os.path.exists(os.path.join(web, "app.js")):
        # The demo page's bundle, shipped in the package. The Go runtime
        # copied the environment at load: set it there.
        err = errbuf()
        check(l.fw_setenv(b"FRAMEWIRE_WEB_DIR", web.encode(), err, ERR_CAP), err)
    _warn_faulthandler()
    _lib = l
    return l


def _warn_faulthandler():
    """faulthandler enabled after the Go runtime loaded replaces Go's
    SIGSEGV handler; enabled before, Go chains to it. Say so once."""
    import faulthandler
    if faulthandler.is_enabled():
        return
    orig = faulthandler.enable

    def enable(*a, **k):
        print("framewire: faulthandler.enable() after libframewire loaded replaces the Go runtime's "
              "signal handlers (a recoverable fault becomes a crash); enable it before importing "
              "framewire's engine (python3 -X faulthandler) instead", file=sys.stderr)
        return orig(*a, **k)
    faulthandler.enable = enable


def errbuf():
    return ctypes.create_string_buffer(ERR_CAP)


def check(rc, err):
    """Raise the exception for a non-OK return code, with the engine's
    message."""
    if rc == OK:
        return
    msg = err.value.decode("utf-8", "replace") if err is not None else ""
    if rc in (ECLOSED, EHANDLE):  # a handle goes stale when its session ends
        raise SessionEnded(rc, msg or "the session has ended")
    if rc == ENODEV:
        raise NoDevicePath(rc, msg)
    if rc == EINVAL:
        raise ValueError(msg)
    raise FramewireError(rc, msg or f"engine call failed (code {rc})")


def write_error(buf, cap, text):
    """Write text, NUL-terminated and truncated, into a C error buffer the
    engine handed to a callback."""
    if not buf or cap <= 0:
        return
    data = text.encode("utf-8", "replace")[: cap - 1] + b"\0"
    ctypes.memmove(buf, data, len(data))
