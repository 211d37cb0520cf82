"""Python emit vs Go Emit of the same 1280x720 frame, side by side in one
process (make bench prints it; make bench-gate fails above 1.35x).

Each round times N Python OutputTrack.emit calls on a standalone track and
N calls of the Go VideoOut.Emit on the same track (fw_measure_emit),
interleaved; the ratio is the median over rounds. It also counts the
Python memory blocks still allocated after 5000 emits (tracemalloc): emit
keeps nothing per frame (a few blocks in free lists are not per frame).
Then it times emit(frame, copy=False), which lends the array instead of
copying it, against emit's copy of the same frames.

usage: python3 bench_emit.py [--gate 1.35]
"""

import ctypes
import statistics
import sys
import time
import tracemalloc

import numpy as np

sys.path.insert(0, __import__("os").path.dirname(__import__("os").path.abspath(__file__)))

from framewire import _abi  # noqa: E402
from framewire.tracks import OutputTrack  # noqa: E402

H, W, N, ROUNDS = 720, 1280, 100, 15


def main():
    gate = float(sys.argv[sys.argv.index("--gate") + 1]) if "--gate" in sys.argv else None
    lib = _abi.lib()
    h, err = _abi.uptr(), _abi.errbuf()
    _abi.check(lib.fw_track_new_standalone(b"bench", ctypes.byref(h), err, _abi.ERR_CAP), err)
    track = OutputTrack(lib, h.value, "bench", _abi.VIDEO_OUT)
    frame = np.random.default_rng(1).integers(0, 255, (H, W, 3), dtype=np.uint8)
    for _ in range(50):  # warm the queue's buffers
        track.emit(frame)
    ratios, py_ns, go_ns = [], [], []
    for _ in range(ROUNDS):
        t0 = time.perf_counter_ns()
        for _ in range(N):
            track.emit(frame)
        p = (time.perf_counter_ns() - t0) / N
        g = lib.fw_measure_emit(h.value, frame.ctypes.data, H, W, N)
        if g <= 0:
            sys.exit(f"fw_measure_emit failed: {g}")
        py_ns.append(p)
        go_ns.append(g)
        ratios.append(p / g)
    tracemalloc.start()
    for _ in range(1000):  # first calls under tracing fill caches
        track.emit(frame)
    before = tracemalloc.take_snapshot()
    for _ in range(5000):
        track.emit(frame)
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    left = sum(s.count_diff for s in after.compare_to(before, "filename")
               if not str(s.traceback).startswith(("<frozen", tracemalloc.__file__)))
    # Lending (emit(copy=False)) against copying, interleaved: 8 distinct
    # arrays, as a model that makes a new one each frame lends them.
    frames = [np.random.default_rng(i).integers(0, 255, (H, W, 3), dtype=np.uint8) for i in range(8)]
    lend_ns, copy_ns = [], []
    for _ in range(ROUNDS):
        for copy, out in ((True, copy_ns), (False, lend_ns)):
            t0 = time.perf_counter_ns()
            for i in range(N):
                track.emit(frames[i % 8], copy=copy)
            out.append((time.perf_counter_ns() - t0) / N)
    held = track.lent()
    lib.fw_track_close(h.value)
    if track.lent() != 0:
        sys.exit(f"FAIL: {track.lent()} lent frames still held after the track closed")
    print(f"python emit 1280x720, lent (copy=False): {statistics.median(lend_ns) / 1e3:.1f} us/frame against "
          f"{statistics.median(copy_ns) / 1e3:.1f} copying (median of {ROUNDS} interleaved rounds of {N}); "
          f"{held} held by the queue before close, 0 after")
    ratio = statistics.median(ratios)
    print(f"python emit 1280x720: {statistics.median(py_ns) / 1e3:.1f} us/frame, go Emit {statistics.median(go_ns) / 1e3:.1f} "
          f"us/frame, ratio {ratio:.3f} (median of {ROUNDS} interleaved rounds of {N}); "
          f"Python blocks left after 5000 emits: {left} (a per-frame allocation that outlives emit would leave >= 5000)")
    if gate is not None and (ratio > gate or left >= 500):
        sys.exit(f"FAIL: python emit costs {ratio:.3f}x the Go Emit (gate {gate}x) or left {left} blocks")


if __name__ == "__main__":
    main()
