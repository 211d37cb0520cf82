"""examples/face_filter.py's drawing and detection, without a session:
the webcam's placement and box mapping match the Go demo's (filter.go),
each filter changes what it should, the faces message has the Go demo's
keys, and the cascade finds Megamind's face where the Go detector's test
does (the face video `.ci/deps.sh facevideo` makes)."""

import os
import sys

import numpy as np
import pytest

from conftest import PKG_ROOT

sys.path.insert(0, os.path.join(PKG_ROOT, "examples"))
ff = pytest.importorskip("face_filter", reason="needs python3-opencv (.ci/deps.sh python)")

FACE_VIDEO = os.path.join(os.environ.get("BUILD", os.path.join(PKG_ROOT, "../../../build")), "testdata", "megamind.y4m")


def test_fit_keeps_the_shape_like_the_go_demo():
    f = ff.Fit(720, 528)  # Megamind: fills the height, pattern at the sides
    assert (f.x0, f.y0, f.dw, f.dh) == (74, 0, 491, 360)
    assert ff.Fit(1280, 720).__dict__ == {"s": 0.5, "dw": 640, "dh": 360, "x0": 0, "y0": 0}
    assert f.to_output([0, 0, 10, 10]) == [74, 0, 7, 7]
    assert f.to_output([700, 500, 100, 100]) == [551, 341, 14, 19]  # clipped to the camera
    assert f.to_output([900, 0, 10, 10]) is None


def test_detector_params_scale_down_unless_min_size_needs_more():
    f = ff.Fit(640, 360)
    assert ff.detector_params(640, f, 60) == (0.5, 30)
    down, min_det = ff.detector_params(640, f, 20)  # 20 px faces need the full picture
    assert down == 1 and min_det == 20


def picture():
    rng = np.random.default_rng(1)
    return rng.integers(0, 256, (ff.H, ff.W, 3), dtype=np.uint8)


def test_pixelate_fills_grid_cells_inside_the_box_only():
    img = picture()
    before = img.copy()
    ff.apply_filter(img, "pixelate", [[40, 20, 40, 30]], ff.hue_rgb(0))
    cell = img[32:48, 48:64].reshape(-1, 3)  # a whole grid cell inside
    assert (cell == cell[0]).all()
    edge = img[20:32, 40:48].reshape(-1, 3)  # a cell cut by the box
    assert (edge == edge[0]).all()
    mask = np.ones((ff.H, ff.W), bool)
    mask[20:50, 40:80] = False
    assert (img[mask] == before[mask]).all()


def test_blur_smooths_and_boxes_outline_in_the_colour():
    img = picture()
    ff.apply_filter(img, "blur", [[100, 100, 80, 80]], ff.hue_rgb(0))
    assert img[110:170, 110:170].std() < 0.2 * picture()[110:170, 110:170].std()
    img = picture()
    ff.apply_filter(img, "boxes", [[100, 100, 80, 80]], ff.hue_rgb(120))
    assert (img[100:103, 100:180] == [0, 255, 0]).all() and (img[100:180, 177:180] == [0, 255, 0]).all()
    assert (img[103:177, 103:177] == picture()[103:177, 103:177]).all()
    img = picture()
    ff.apply_filter(img, "off", [[100, 100, 80, 80]], ff.hue_rgb(0))
    assert (img == picture()).all()


def test_pattern_moves_and_square_bounces():
    a, b = np.empty((ff.H, ff.W, 3), np.uint8), np.empty((ff.H, ff.W, 3), np.uint8)
    ff.draw_pattern(a, 0, 0, 200, "stripes")
    ff.draw_pattern(b, 1, 6, 200, "stripes")
    assert (a != b).any()
    assert (a[ff.H - 80:ff.H - 20, 0:60] == 255).all()
    ff.draw_pattern(a, 0, 0, 120, "solid")
    assert (a[0, 0] == [0, 255, 0]).all()


def test_faces_message_keys_like_the_go_demo():
    rep = ff.FaceReport()
    rep.add(0.0123)
    rep.add(0.0157)
    assert not rep.due(rep.next - 0.1) and rep.due(rep.next)
    m = rep.message(rep.next, [[1, 2, 3, 4]])
    assert m == {"type": "faces", "count": 1, "boxes": [[1, 2, 3, 4]], "detect_ms": 14.0, "detections": 2}
    assert rep.count == 0 and not rep.due(rep.next)


def test_cascade_finds_megamind():
    if not os.path.exists(FACE_VIDEO):
        if os.environ.get("FRAMEWIRE_E2E"):
            pytest.fail(f"{FACE_VIDEO} missing (.ci/deps.sh facevideo)")
        pytest.skip(f"{FACE_VIDEO} missing (.ci/deps.sh facevideo)")
    sys.path.insert(0, PKG_ROOT)
    import bench_face_filter
    all_frames = bench_face_filter.read_y4m(FACE_VIDEO)
    frames = all_frames[::9]  # as the Go test (facedetect's TestDetectMegamind)
    cascade = ff.load_cascade()
    found = [ff.detect(cascade, f, 60, 1.1) for f in frames]
    assert sum(bool(b) for b in found) >= 0.8 * len(frames)
    f = ff.Fit(720, 528)
    for boxes in found:
        for x, y, w, h in boxes:
            assert f.x0 <= x and x + w <= f.x0 + f.dw and 60 <= w <= 360
    # Frame 135's face is at x 410..590, y 120..330 of the 720x528 picture:
    # in output pixels x 354..476, y 82..225.
    centres = [(x + w / 2, y + h / 2) for x, y, w, h in ff.detect(cascade, all_frames[135], 60, 1.1)]
    assert any(354 <= cx <= 476 and 82 <= cy <= 225 for cx, cy in centres), centres
