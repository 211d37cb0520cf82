"""The tracks page's Morpheus example: webcam frames pushed through
on_media into a pipeline whose prompt a command sets. Only the imports
differ from the page; load_pipeline() is this file's own (the "prompt"
picks a tint; the pipeline emits the newest pushed frame, tinted, at 30
fps, and black frames until the webcam arrives)."""

import threading
import time
import zlib

import numpy as np

from framewire import VideoModel, model, command, get_ctx
from framewire.tracks import VideoOut, VideoIn
from framewire.transports.media import MediaBundle


class Pipeline:
    def __init__(self, config):
        self.fps = float(config.get("fps", 30))
        self.lock = threading.Lock()
        self.prompt = config.get("prompt", "neon")
        self.frame = None

    def set_prompt(self, prompt):
        with self.lock:
            self.prompt = prompt
        get_ctx().send({"type": "prompt_set", "prompt": prompt})

    def push_frame(self, frame):
        with self.lock:
            self.frame = frame

    def tint(self):
        h = zlib.crc32(self.prompt.encode())
        return np.array([h & 0xFF, (h >> 8) & 0xFF, (h >> 16) & 0xFF], dtype=np.uint16)

    def run(self):
        ctx = get_ctx()
        next_t = time.monotonic()
        while not ctx.should_stop():
            with self.lock:
                frame, tint = self.frame, self.tint()
            if frame is None:
                ctx.get_track().emit(None)  # black until the webcam arrives
            else:
                ctx.get_track().emit(((frame.astype(np.uint16) + tint) // 2).astype(np.uint8))
            next_t += 1 / self.fps
            time.sleep(max(0.0, next_t - time.monotonic()))


def load_pipeline(config):
    return Pipeline(config or {})


# As on the page:
@model(name="morpheus", config="config.yml")
class Morpheus(VideoModel):
    webcam = VideoIn()
    main_video = VideoOut(default=True)

    def __init__(self, config):
        self.pipeline = load_pipeline(config)

    @command("set_prompt")
    def set_prompt(self, prompt: str):
        self.pipeline.set_prompt(prompt)

    def on_media(self, bundle: MediaBundle):
        webcam_data = bundle.get_track("webcam")
        if webcam_data is not None:
            self.pipeline.push_frame(webcam_data.data)

    def start_session(self):
        ctx = get_ctx()
        ctx.get_track().emit(None)  # black frame while pipeline warms up
        self.pipeline.run()
