"""A test model that exercises what the page's examples do not: typed
commands (Literal, Annotated ranges, defaults), an upload, audio out, every
bad emit input (reported to the client, the session going on), get_ctx()
on each session's own threads, and a model error in a command."""

import hashlib
import threading
import time
from typing import Annotated, Literal, Optional

import numpy as np
import torch

from framewire import File, Param, VideoModel, command, get_ctx, model
from framewire.tracks import AudioOut, VideoIn, VideoOut

W, H = 320, 240


@model(name="studio")
class Studio(VideoModel):
    main_video = VideoOut(rate=30, default=True)
    tone = AudioOut()
    webcam = VideoIn()

    def __init__(self, config):
        super().__init__(config)
        self.lock = threading.Lock()
        self.colour = {}  # session id → RGB
        self.media = {}  # session id → webcam frames seen by on_media

    def start_session(self):
        ctx = get_ctx()
        sid = ctx.session_id
        t0, n = time.monotonic(), 0
        while not ctx.should_stop():
            with self.lock:
                rgb = self.colour.get(sid, (40, 40, 200))
            frame = np.empty((H, W, 3), dtype=np.uint8)
            frame[:] = rgb
            if n % 4 == 1:
                ctx.get_track().emit(torch.from_numpy(frame))  # a CPU tensor
            elif n % 4 == 3:
                self.main_video.emit(frame, copy=False)  # lent: a new array every frame
            else:
                self.main_video.emit(frame)  # the descriptor resolves this session's track
            ctx.get_track("tone").emit((np.sin(np.arange(960) / 8) * 8000).astype(np.int16))
            n += 1
            time.sleep(max(0.0, t0 + n / 30 - time.monotonic()))

    @command("set_colour", description="Fill colour")
    def set_colour(self, name: Literal["red", "green", "blue"],
                   level: Annotated[int, Param(min=0, max=255, description="channel value")] = 255):
        rgb = {"red": (level, 0, 0), "green": (0, level, 0), "blue": (0, 0, level)}[name]
        sid = get_ctx().session_id
        with self.lock:
            self.colour[sid] = rgb
        get_ctx().send({"type": "colour_set", "name": name, "level": level, "session": sid})

    @command("inspect")
    def inspect(self, file: File, note: Optional[File] = None, scale: float = 1.5):
        """Report an upload's name, size and SHA-256."""
        get_ctx().send({"type": "file_info", "name": file.name, "size": file.size, "scale": scale,
                        "scale_type": type(scale).__name__, "sha256": hashlib.sha256(file.data).hexdigest(),
                        "note": note is not None})

    def on_media(self, bundle):
        """Counts webcam frames; every 10th raises, as a buggy model would:
        the engine reports it and goes on."""
        d = bundle.get_track("webcam")
        sid = get_ctx().session_id
        with self.lock:
            n = self.media[sid] = self.media.get(sid, 0) + 1
        if n % 10 == 0:
            raise RuntimeError(f"on_media cannot handle frame {n} of shape {d.data.shape}")

    @command("media_count")
    def media_count(self):
        sid = get_ctx().session_id
        with self.lock:
            n = self.media.get(sid, 0)
        get_ctx().send({"type": "media_count", "frames": n})

    @command("whoami")
    def whoami(self):
        """Which session get_ctx() sees on this command's thread."""
        ctx = get_ctx()
        ctx.send({"type": "whoami", "session": ctx.session_id, "tracks": [self.main_video.name]})

    @command("fail")
    def fail(self):
        raise RuntimeError("the model refused")

    @command("emit_checks")
    def emit_checks(self):
        """Every bad emit input: the error each raises, sent to the client."""
        out = get_ctx().get_track()
        cases = {
            "float": np.zeros((H, W, 3), dtype=np.float32),
            "int16": np.zeros((H, W, 3), dtype=np.int16),
            "gray": np.zeros((H, W), dtype=np.uint8),
            "rgba": np.zeros((H, W, 4), dtype=np.uint8),
            "noncontig": np.zeros((H, W * 2, 3), dtype=np.uint8)[:, ::2],
            "list": [[0, 0, 0]],
            "5d": np.zeros((1, 1, H, W, 3), dtype=np.uint8),
            "empty": np.zeros((0, W, 3), dtype=np.uint8),
            "torch_float": torch.zeros((H, W, 3)),
            "cai_v2": _CAI(version=2),
            "audio_on_video": None,
        }
        res = {}
        for k, v in cases.items():
            try:
                if k == "audio_on_video":
                    get_ctx().get_track("tone").emit(np.zeros((H, W, 3), dtype=np.uint8))
                else:
                    out.emit(v)
                res[k] = "accepted"
            except (TypeError, ValueError) as e:
                res[k] = f"{type(e).__name__}: {e}"
        get_ctx().send({"type": "emit_checks", "results": res, "stats": out.stats()})


class _CAI:
    """A CUDA-array-interface object without a stream (v2)."""

    def __init__(self, version):
        self.__cuda_array_interface__ = {"shape": (H, W, 3), "typestr": "|u1", "data": (4096, False),
                                         "version": version}
