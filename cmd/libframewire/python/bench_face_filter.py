"""detect_ms of the Python face filter (examples/face_filter.py) at a
640x360 input, as the model runs it: every frame of the face video
(Megamind.avi as Y4M, made by `.ci/deps.sh facevideo`) cropped to 16:9
and scaled to 640x360, detected with the model's own detect() at the
default settings (min_size 60, scale 1.1), one thread. Prints p50, p95
and the share of frames with a face, like the Go benchmark
(cmd/framewire/internal/facedetect BenchmarkDetect).

usage: python3 bench_face_filter.py [build/testdata/megamind.y4m] [rounds]
"""

import os
import statistics
import sys
import time

import cv2
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "examples"))

import face_filter  # noqa: E402


def read_y4m(path):
    """The frames of a yuv420p Y4M file as RGB arrays."""
    with open(path, "rb") as f:
        header = f.readline().split()
        w = int(next(t[1:] for t in header if t.startswith(b"W")))
        h = int(next(t[1:] for t in header if t.startswith(b"H")))
        size = w * h * 3 // 2
        frames = []
        while f.readline().startswith(b"FRAME"):
            yuv = np.frombuffer(f.read(size), dtype=np.uint8).reshape(h * 3 // 2, w)
            frames.append(cv2.cvtColor(yuv, cv2.COLOR_YUV2RGB_I420))
        return frames


def crop_scale(rgb, dw, dh):
    """rgb cropped to dw:dh around its centre and scaled to dw x dh."""
    h, w = rgb.shape[:2]
    ch = w * dh // dw
    y0 = (h - ch) // 2
    return cv2.resize(rgb[y0:y0 + ch], (dw, dh), interpolation=cv2.INTER_NEAREST)


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "../../../build/testdata/megamind.y4m")
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    pics = [crop_scale(f, 640, 360) for f in read_y4m(path)]
    cascade = face_filter.load_cascade()
    ms, with_face = [], 0
    for _ in range(rounds):
        for p in pics:
            t0 = time.perf_counter()
            boxes = face_filter.detect(cascade, p, 60, 1.1)
            ms.append((time.perf_counter() - t0) * 1000)
            with_face += bool(boxes)
    ms.sort()
    print(f"{len(ms)} detections of 640x360 (OpenCV {cv2.__version__}, {cv2.getNumThreads()} threads): "
          f"detect_ms p50 {statistics.median(ms):.1f}, p95 {ms[min(len(ms) - 1, len(ms) * 95 // 100)]:.1f}; "
          f"a face in {100 * with_face / len(ms):.0f} % of the frames")


if __name__ == "__main__":
    main()
