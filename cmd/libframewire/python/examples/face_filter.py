"""The Go demo's face filter (model "framewire-demo", cmd/framewire/demo.go)
as a Python model, "framewire-demo-py": the same tracks, commands,
messages and behaviour, served by the same engine, so that a client (and
TestBrowserFaceFilter) cannot tell them apart but by the model's name.

Once the client publishes its webcam the model shows it (fitted into
640x360, its shape kept, the animated pattern around it), finds the faces
in it with OpenCV's frontal-face Haar cascade (Debian's python3-opencv and
opencv-data) on a thread of its own, and hides or boxes each one. Without
a webcam it draws the pattern: stripes moving at 30 fps and a bouncing
square.

Commands:

    set_filter   mode (boxes | blur | pixelate | off; default pixelate)
    set_detector min_size (integer 20..200, output pixels), scale (1.05..1.5)
    set_color    hue (0..360), mode (stripes | solid | checker): the
                 pattern, and the colour of the boxes
    set_speed    speed (0..10)
    inspect_file file (an upload): answers {type:"file_info", name,
                 mime_type, size, sha256}

While webcam frames arrive it sends {type:"webcam", width, height, frames}
and {type:"faces", count, boxes: [[x, y, w, h], ...] (output pixels),
detect_ms, detections} once per second.

Serve it with ``python3 -m framewire serve examples/face_filter.py``.
"""

import colorsys
import hashlib
import threading
import time
from typing import Annotated, Literal

import cv2
import numpy as np

from framewire import VideoModel, model, command, get_ctx, File, Param, SessionEnded
from framewire.tracks import VideoOut, VideoIn

W, H = 640, 360  # the output picture
FPS = 30
CASCADE = "/usr/share/opencv4/haarcascades/haarcascade_frontalface_default.xml"

# Detection, as in cmd/framewire/faces.go: at most DETECT_RATE times a
# second on the latest webcam picture scaled to DETECT_WIDTH (or larger when
# min_size asks for faces smaller than the cascade's CASCADE_WINDOW); the
# last boxes are kept for FACE_HOLD after a detection that finds nothing,
# so that a face the cascade misses for a few frames is not shown.
DETECT_RATE = FPS // 2
DETECT_WIDTH = 320
CASCADE_WINDOW = 24
FACE_HOLD = 0.5
MAX_FACES = 32
NEIGHBORS = 3

PIXEL_BLOCK = 16  # pixelate cells sit on this grid, the encoder's macroblocks


class Fit:
    """Where a w x h webcam picture lands in the output: scaled by s (shape
    kept), centred; the rest keeps the pattern."""

    def __init__(self, w, h):
        self.s = min(W / w, H / h)
        self.dw, self.dh = int(w * self.s + 0.5), int(h * self.s + 0.5)
        self.x0, self.y0 = (W - self.dw) // 2, (H - self.dh) // 2

    def to_output(self, box):
        """A box (x, y, w, h) in camera pixels as [x, y, w, h] in output
        pixels, clipped to the camera's rectangle; None when empty."""
        x, y, w, h = box
        x0 = max(self.x0, self.x0 + int(x * self.s + 0.5))
        y0 = max(self.y0, self.y0 + int(y * self.s + 0.5))
        x1 = min(self.x0 + self.dw, self.x0 + int((x + w) * self.s + 0.5))
        y1 = min(self.y0 + self.dh, self.y0 + int((y + h) * self.s + 0.5))
        return [x0, y0, x1 - x0, y1 - y0] if x1 > x0 and y1 > y0 else None


def hue_rgb(hue):
    """The colour of hue (degrees) at full saturation and value."""
    r, g, b = colorsys.hsv_to_rgb((hue % 360) / 360, 1, 1)
    return np.array([int(r * 255), int(g * 255), int(b * 255)], dtype=np.uint8)


class Session:
    """One session's state: what the commands change, the detector's last
    boxes, and the draw loop's reused picture."""

    def __init__(self):
        self.lock = threading.Lock()
        self.hue, self.mode, self.speed = 200.0, "stripes", 3.0
        self.filter, self.min_size, self.scale = "pixelate", 60, 1.1
        self.boxes = []  # output pixels, [x, y, w, h] each

    def look(self):
        """What one frame draws, read under the lock."""
        with self.lock:
            return self.hue, self.mode, self.speed, self.filter, self.boxes

    def detector_settings(self):
        with self.lock:
            return self.min_size, self.scale

    def set_boxes(self, boxes):
        with self.lock:
            self.boxes = boxes


# The pattern's index pictures, made once: stripes are ((x+y+off)/32) even,
# the checker ((x+off)/40 + y/40) even.
_XY = np.add.outer(np.arange(H), np.arange(W)).astype(np.int32)
_XS, _YS = np.arange(W, dtype=np.int32), (np.arange(H, dtype=np.int32) // 40)[:, None]


def draw_pattern(img, i, pos, hue, mode):
    """Frame number i of the pattern into img: stripes, checker or solid in
    hue (the off cells a quarter as bright) and a white square bouncing
    left and right."""
    on = hue_rgb(hue)
    two = np.stack([on, on // 4])  # index 0: on, 1: off
    off = int(pos)
    if mode == "stripes":
        img[:] = two[((_XY + off) >> 5) & 1]
    elif mode == "checker":
        img[:] = two[(((_XS + off) // 40)[None, :] + _YS) & 1]
    else:
        img[:] = on
    span = W - 60
    bx = (i * 6) % (2 * span)
    if bx > span:
        bx = 2 * span - bx
    img[H - 80:H - 20, bx:bx + 60] = 255


def draw_camera(img, cam, f):
    """cam fitted into img at its place, nearest neighbour."""
    img[f.y0:f.y0 + f.dh, f.x0:f.x0 + f.dw] = cv2.resize(cam, (f.dw, f.dh), interpolation=cv2.INTER_NEAREST)


def apply_filter(img, mode, boxes, rgb):
    """mode drawn over each box (output pixels) of img; rgb is the colour
    of the boxes."""
    for x, y, w, h in boxes:
        x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, W), min(y + h, H)
        if x1 <= x0 or y1 <= y0:
            continue
        if mode == "boxes":
            outline(img, x0, y0, x1, y1, 3, rgb)
        elif mode == "blur":
            blur(img, x0, y0, x1, y1, max(4, (x1 - x0) // 10))
        elif mode == "pixelate":
            pixelate(img, x0, y0, x1, y1)


def outline(img, x0, y0, x1, y1, t, rgb):
    """A t pixels wide frame just inside the box in colour rgb."""
    img[y0:min(y0 + t, y1), x0:x1] = rgb
    img[max(y1 - t, y0):y1, x0:x1] = rgb
    img[y0:y1, x0:min(x0 + t, x1)] = rgb
    img[y0:y1, max(x1 - t, x0):x1] = rgb


def blur(img, x0, y0, x1, y1, radius):
    """Two passes of a (2*radius+1)-wide box blur inside the box, edges
    clamped to it (the Go demo's blur)."""
    roi = img[y0:y1, x0:x1]
    k = 2 * radius + 1
    out = cv2.blur(roi, (k, k), borderType=cv2.BORDER_REPLICATE)
    roi[:] = cv2.blur(out, (k, k), borderType=cv2.BORDER_REPLICATE)


def pixelate(img, x0, y0, x1, y1):
    """Each PIXEL_BLOCK cell of the fixed grid, within the box, filled with
    its mean colour."""
    for cy in range(y0 // PIXEL_BLOCK * PIXEL_BLOCK, y1, PIXEL_BLOCK):
        for cx in range(x0 // PIXEL_BLOCK * PIXEL_BLOCK, x1, PIXEL_BLOCK):
            cell = img[max(cy, y0):min(cy + PIXEL_BLOCK, y1), max(cx, x0):min(cx + PIXEL_BLOCK, x1)]
            cell[:] = cell.reshape(-1, 3).mean(axis=0).astype(np.uint8)


def detector_params(w, f, min_size):
    """The detection picture's scale over the camera's and the smallest
    face in detection pixels, for a camera picture w wide placed by f."""
    min_cam = min_size / f.s
    down = min(1.0, max(DETECT_WIDTH / w, CASCADE_WINDOW / min_cam))
    return down, int(int(min_cam) * down)


def detect(cascade, frame, min_size, scale):
    """The faces in frame (RGB, camera pixels) as Fit's output boxes:
    grey, scaled down, equalised, then the cascade."""
    h, w = frame.shape[:2]
    f = Fit(w, h)
    down, min_det = detector_params(w, f, min_size)
    grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    if down < 1:
        grey = cv2.resize(grey, None, fx=down, fy=down, interpolation=cv2.INTER_AREA)
    grey = cv2.equalizeHist(grey)
    found = cascade.detectMultiScale(grey, scaleFactor=scale, minNeighbors=NEIGHBORS, minSize=(min_det, min_det))
    boxes = []
    for r in list(found)[:MAX_FACES]:
        b = f.to_output([int(v / down + 0.5) for v in r])
        if b is not None:
            boxes.append(b)
    return boxes


class FaceReport:
    """One second of detections for the faces message."""

    def __init__(self):
        self.next, self.count, self.total = time.monotonic() + 1, 0, 0.0

    def add(self, seconds):
        self.count += 1
        self.total += seconds

    def due(self, now):
        return self.count > 0 and now >= self.next

    def message(self, now, boxes):
        """The faces message for boxes; starts a new second."""
        ms = self.total * 1000 / self.count
        m = {"type": "faces", "count": len(boxes), "boxes": boxes, "detect_ms": round(ms, 1),
             "detections": self.count}
        self.next, self.count, self.total = now + 1, 0, 0.0
        return m


def run_detector(ctx, st, cascade):
    """The session's detector thread: detects on each new webcam picture,
    at most DETECT_RATE times a second, until the session stops, and
    publishes the boxes (held FACE_HOLD when a detection finds none). An
    error stops the session with the reason."""
    cam = ctx.get_track("webcam")
    rep, seen, last_face = FaceReport(), 0, 0.0
    period, next_t = 1 / DETECT_RATE, time.monotonic()
    try:
        while not ctx.should_stop():
            next_t = pace(next_t, period)
            n = cam.stats()["delivered"]
            frame = cam.latest() if n != seen else None
            if frame is None:
                continue
            seen = n
            min_size, scale = st.detector_settings()
            t0 = time.monotonic()
            boxes = detect(cascade, frame, min_size, scale)
            now = time.monotonic()
            rep.add(now - t0)
            if boxes or now - last_face >= FACE_HOLD:
                last_face = now if boxes else last_face
                st.set_boxes(boxes)
            if rep.due(now):
                ctx.send(rep.message(now, st.look()[4]))
    except SessionEnded:
        pass  # the session ended between should_stop() and a call
    except Exception as e:
        ctx.stop(f"face detector: {e}")  # as the Go demo: a failing detector ends the session
        raise  # and the thread's traceback goes to stderr


def pace(next_t, period):
    """Sleeps until next_t + period and returns that time; a loop that fell
    more than a period behind starts again from now (like a Go ticker,
    which drops the ticks it missed)."""
    next_t = max(next_t + period, time.monotonic())
    time.sleep(max(0.0, next_t - time.monotonic()))
    return next_t


def load_cascade():
    """The frontal-face cascade; a missing opencv-data raises naming it."""
    c = cv2.CascadeClassifier(CASCADE)
    if c.empty():
        raise RuntimeError(f"cannot load the face cascade {CASCADE} (Debian's opencv-data)")
    return c


@model(name="framewire-demo-py")
class FaceFilter(VideoModel):
    webcam = VideoIn()
    main_video = VideoOut(rate=FPS, default=True)

    def __init__(self, config=None):
        super().__init__(config)
        load_cascade()  # fail at start, with the reason, not in a session
        self.lock = threading.Lock()
        self.sessions = {}

    def state(self):
        """The calling session's state, made on first use (a command may
        run before start_session does)."""
        sid = get_ctx().session_id
        with self.lock:
            return self.sessions.setdefault(sid, Session())

    @command("set_filter", "What to draw over each face found in the webcam")
    def set_filter(self, mode: Annotated[Literal["boxes", "blur", "pixelate", "off"],
                                         Param(description="what to draw over each face found")] = "pixelate"):
        st = self.state()
        with st.lock:
            st.filter = mode
        get_ctx().send({"type": "filter_set", "mode": mode})

    @command("set_detector", "Face detector settings")
    def set_detector(self,
                     min_size: Annotated[int, Param(min=20, max=200, description="smallest face looked for, in "
                                                    "output pixels (smaller costs more)")] = 60,
                     scale: Annotated[float, Param(min=1.05, max=1.5, description="cascade scale step (smaller "
                                                   "finds more, costs more)")] = 1.1):
        st = self.state()
        with st.lock:
            st.min_size, st.scale = min_size, scale
        get_ctx().send({"type": "detector_set", "min_size": min_size, "scale": scale})

    @command("set_color", "Colour and pattern of the picture")
    def set_color(self, hue: Annotated[float, Param(min=0, max=360, description="hue in degrees")],
                  mode: Annotated[Literal["stripes", "solid", "checker"], Param(description="pattern")] = "stripes"):
        st = self.state()
        with st.lock:
            st.hue, st.mode = hue, mode
        get_ctx().send({"type": "color_set", "hue": hue, "mode": mode})

    @command("set_speed", "Animation speed")
    def set_speed(self, speed: Annotated[float, Param(min=0, max=10, description="pixels per frame / 2")]):
        st = self.state()
        with st.lock:
            st.speed = speed
        get_ctx().send({"type": "speed_set", "speed": speed})

    @command("inspect_file", "Report an uploaded file's size and SHA-256")
    def inspect_file(self, file: Annotated[File, Param(description="any file")]):
        get_ctx().send({"type": "file_info", "name": file.name, "mime_type": file.mime_type, "size": file.size,
                        "sha256": hashlib.sha256(file.data).hexdigest()})

    def start_session(self):
        """Starts the session's detector thread, then draws at 30 fps until
        the session stops: the pattern and, once the webcam is published,
        its latest picture with the filter over the detector's last boxes;
        once a second, while webcam frames arrive, the webcam message."""
        ctx, st = get_ctx(), self.state()
        det = threading.Thread(target=run_detector, args=(ctx, st, load_cascade()), daemon=True)
        det.start()
        try:
            self.draw_loop(ctx, st)  # SessionEnded from emit() is a normal end
        finally:
            det.join()
            with self.lock:
                self.sessions.pop(ctx.session_id, None)

    def draw_loop(self, ctx, st):
        out, cam = ctx.get_track("main_video"), ctx.get_track("webcam")
        img = np.empty((H, W, 3), dtype=np.uint8)
        pos, reported, next_report = 0.0, 0, time.monotonic() + 1
        next_t = time.monotonic()
        i = 0
        while not ctx.should_stop():
            hue, mode, speed, filt, boxes = st.look()
            pos += speed * 2
            draw_pattern(img, i, pos, hue, mode)
            frame = cam.latest()
            if frame is not None:
                draw_camera(img, frame, Fit(frame.shape[1], frame.shape[0]))
                apply_filter(img, filt, boxes, hue_rgb(hue))
            out.emit(img)
            now = time.monotonic()
            if frame is not None and now >= next_report:
                next_report = now + 1
                n = cam.stats()["delivered"]
                if n != reported:
                    reported = n
                    ctx.send({"type": "webcam", "width": frame.shape[1], "height": frame.shape[0], "frames": n})
            i += 1
            next_t = pace(next_t, 1 / FPS)
