"""A test model that emits CUDA device frames through both hand-over
paths, as a PyTorch or CuPy model would, over the CUDA driver API
(ctypes; the tests run it against the emulated driver): every picture is
its own allocation, written by an asynchronous copy on the model's own
stream and emitted at once, so the engine must order its read after the
copy. Odd frames go as __cuda_array_interface__ v3 with the stream, even
ones as a DLPack capsule (kDLCUDA) whose producer orders the legacy
default stream after its stream. Each picture's memory is freed when the
engine releases it: by the DLPack deleter, or the exporter's finalizer.
The "report" command says how many were emitted and released, whether any
was released twice, and on which threads releases ran."""

import ctypes
import threading
import time
import weakref

import numpy as np

from framewire import VideoModel, command, get_ctx, model
from framewire.tracks import VideoOut

W, H = 320, 240
SLOW_OPS = 160  # stream operations queued before each picture's copy: about 40 ms emulated
cu = ctypes.CDLL("libcuda.so.1")
_P, _U64, _VP = ctypes.POINTER, ctypes.c_uint64, ctypes.c_void_p
for _name, _args in {
    "cuInit": [ctypes.c_uint], "cuDevicePrimaryCtxRetain": [_P(_VP), ctypes.c_int],
    "cuCtxPushCurrent_v2": [_VP], "cuCtxPopCurrent_v2": [_P(_VP)],
    "cuMemAlloc_v2": [_P(_U64), ctypes.c_size_t], "cuMemFree_v2": [_U64],
    "cuMemcpyHtoDAsync_v2": [_U64, _VP, ctypes.c_size_t, _VP],
    "cuStreamCreate": [_P(_VP), ctypes.c_uint], "cuStreamSynchronize": [_VP], "cuStreamDestroy_v2": [_VP],
    "cuEventCreate": [_P(_VP), ctypes.c_uint], "cuEventRecord": [_VP, _VP], "cuEventDestroy_v2": [_VP],
    "cuStreamWaitEvent": [_VP, _VP, ctypes.c_uint],
    "cuMemAllocHost_v2": [_P(_VP), ctypes.c_size_t], "cuMemFreeHost": [_VP], "cuMemsetD8Async": [_U64, ctypes.c_ubyte, ctypes.c_size_t, _VP],
}.items():
    getattr(cu, _name).argtypes, getattr(cu, _name).restype = _args, ctypes.c_int


def check(rc, what):
    if rc != 0:
        raise RuntimeError(f"{what}: CUresult {rc}")


class Device:
    """The primary context of device 0 (the one the engine and PyTorch
    use), made current around each call from any thread."""

    def __init__(self):
        self.ctx = ctypes.c_void_p()
        check(cu.cuInit(0), "cuInit")
        check(cu.cuDevicePrimaryCtxRetain(ctypes.byref(self.ctx), 0), "cuDevicePrimaryCtxRetain")

    def __enter__(self):
        check(cu.cuCtxPushCurrent_v2(self.ctx), "cuCtxPushCurrent")

    def __exit__(self, *exc):
        popped = ctypes.c_void_p()
        cu.cuCtxPopCurrent_v2(ctypes.byref(popped))


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.emitted = self.released = self.twice = 0
        self.threads = set()
        self.done = set()

    def release(self, key):
        with self.lock:
            if key in self.done:
                self.twice += 1
            self.done.add(key)
            self.released += 1
            self.threads.add(threading.get_ident())


class DLDevice(ctypes.Structure):
    _fields_ = [("device_type", ctypes.c_int32), ("device_id", ctypes.c_int32)]


class DLDataType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


class DLTensor(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("device", DLDevice), ("ndim", ctypes.c_int32), ("dtype", DLDataType),
                ("shape", ctypes.POINTER(ctypes.c_int64)), ("strides", ctypes.POINTER(ctypes.c_int64)),
                ("byte_offset", ctypes.c_uint64)]


class DLManagedTensor(ctypes.Structure):
    pass


DELETER = ctypes.CFUNCTYPE(None, ctypes.POINTER(DLManagedTensor))
DLManagedTensor._fields_ = [("dl_tensor", DLTensor), ("manager_ctx", ctypes.c_void_p), ("deleter", DELETER)]
_capsule_new = ctypes.pythonapi.PyCapsule_New
_capsule_new.restype, _capsule_new.argtypes = ctypes.py_object, [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]


class SessionStream:
    """A session's stream and event, destroyed once the session has ended
    and the engine released its last picture (the engine orders its reads
    on the stream until then)."""

    def __init__(self, dev, rgb):
        self.dev, self.lock, self.live, self.ended = dev, threading.Lock(), 0, False
        self.stream, self.event, self.pinned = ctypes.c_void_p(), ctypes.c_void_p(), ctypes.c_void_p()
        with dev:
            check(cu.cuStreamCreate(ctypes.byref(self.stream), 1), "cuStreamCreate")  # non-blocking
            check(cu.cuEventCreate(ctypes.byref(self.event), 2), "cuEventCreate")  # no timing
            # The picture's source in pinned memory: a copy from it is
            # truly asynchronous (one from pageable memory is not).
            check(cu.cuMemAllocHost_v2(ctypes.byref(self.pinned), H * W * 3), "cuMemAllocHost")
        src = np.ctypeslib.as_array(ctypes.cast(self.pinned, ctypes.POINTER(ctypes.c_uint8)), (H, W, 3))
        src[:] = rgb

    def hold(self):
        with self.lock:
            self.live += 1

    def drop(self, ending=False):
        with self.lock:
            if ending:
                self.ended = True
            else:
                self.live -= 1
            last = self.ended and self.live == 0
        if last:
            with self.dev:
                check(cu.cuStreamSynchronize(self.stream), "cuStreamSynchronize")
                cu.cuEventDestroy_v2(self.event)
                cu.cuStreamDestroy_v2(self.stream)
                cu.cuMemFreeHost(self.pinned)


class Picture:
    """One picture in device memory, written asynchronously on the
    session's stream."""

    def __init__(self, dev, ss, stats, key):
        self.dev, self.ss, self.stats, self.key = dev, ss, stats, key
        self.stream, self.event = ss.stream, ss.event
        ss.hold()
        self.ptr = ctypes.c_uint64()
        with dev:
            check(cu.cuMemAlloc_v2(ctypes.byref(self.ptr), H * W * 3), "cuMemAlloc")
            # Busy the stream first (each emulated operation takes a while),
            # so the picture is written well after emit returns: a read not
            # ordered after this stream would see the allocator's fill.
            for _ in range(SLOW_OPS):
                check(cu.cuMemsetD8Async(self.ptr, 0xA5, 1, self.stream), "cuMemsetD8Async")
            check(cu.cuMemcpyHtoDAsync_v2(self.ptr, ss.pinned, H * W * 3, self.stream), "cuMemcpyHtoDAsync")

    def free(self):
        with self.dev:
            check(cu.cuMemFree_v2(self.ptr), "cuMemFree")
        self.stats.release(self.key)
        self.ss.drop()


class CAIFrame:
    """Exposes a Picture through __cuda_array_interface__ v3 with its stream;
    the picture is freed when the engine drops the last reference."""

    def __init__(self, pic):
        self.__cuda_array_interface__ = {"shape": (H, W, 3), "typestr": "|u1", "data": (pic.ptr.value, False),
                                         "version": 3, "strides": None, "stream": pic.stream.value}
        weakref.finalize(self, pic.free)


_live = {}  # DLManagedTensor address → (struct, shape, picture): alive until the deleter


@DELETER
def _dl_deleter(managed):
    addr = ctypes.addressof(managed.contents)
    _struct, _shape, pic = _live.pop(addr)
    pic.free()


class DLPackFrame:
    """Exposes a Picture through DLPack; __dlpack__(stream=S) orders S
    after the model's stream (event + wait), as PyTorch does."""

    def __init__(self, pic):
        self.pic = pic

    def __dlpack_device__(self):
        return (2, 0)  # kDLCUDA, device 0

    def __dlpack__(self, stream=None):
        pic = self.pic
        if stream is not None:
            consumer = ctypes.c_void_p(0 if stream == 1 else stream)
            with pic.dev:
                check(cu.cuEventRecord(pic.event, pic.stream), "cuEventRecord")
                check(cu.cuStreamWaitEvent(consumer, pic.event, 0), "cuStreamWaitEvent")
        shape = (ctypes.c_int64 * 3)(H, W, 3)
        m = DLManagedTensor()
        m.dl_tensor = DLTensor(ctypes.c_void_p(pic.ptr.value), DLDevice(2, 0), 3, DLDataType(1, 8, 1), shape, None, 0)
        m.deleter = _dl_deleter
        _live[ctypes.addressof(m)] = (m, shape, pic)
        return _capsule_new(ctypes.addressof(m), b"dltensor", None)


@model(name="device-frames")
class DeviceFrames(VideoModel):
    main_video = VideoOut(rate=15, default=True)

    def __init__(self, config):
        super().__init__(config)
        self.dev = Device()
        self.stats = Stats()
        self.model_threads = set()

    def start_session(self):
        ctx = get_ctx()
        self.model_threads.add(threading.get_ident())
        ss = SessionStream(self.dev, (40, 200, 40))
        t0, n = time.monotonic(), 0
        try:
            while not ctx.should_stop():
                with self.stats.lock:
                    self.stats.emitted += 1
                pic = Picture(self.dev, ss, self.stats, n)
                ctx.get_track().emit(CAIFrame(pic) if n % 2 else DLPackFrame(pic))
                n += 1
                time.sleep(max(0.0, t0 + n / 15 - time.monotonic()))  # 15 fps: the stream keeps up
        finally:
            ss.drop(ending=True)

    @command("report")
    def report(self):
        s = self.stats
        with s.lock:
            get_ctx().send({"type": "report", "emitted": s.emitted, "released": s.released, "twice": s.twice,
                            "release_threads": len(s.threads),
                            "on_model_thread": bool(s.threads & self.model_threads)})
