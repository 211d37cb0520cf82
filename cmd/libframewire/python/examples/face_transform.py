"""The tracks page's FaceTransform example: webcam in, main_video out.
Only the imports differ from the page; transform() is this file's own (a
mirror image with a warm tint, so a test can tell input from output)."""

import time

import numpy as np

from framewire import VideoModel, model, get_ctx
from framewire.tracks import VideoOut, VideoIn


@model(name="face-transform", config="config.yml")
class FaceTransform(VideoModel):
    webcam = VideoIn()
    main_video = VideoOut(default=True)

    def transform(self, frame):
        time.sleep(1 / 30)  # the model's own pace; latest() never blocks
        out = frame[:, ::-1].astype(np.uint16)
        out[:, :, 0] = np.minimum(out[:, :, 0] + int(self.config.get("warmth", 60)), 255)
        return out.astype(np.uint8)

    # As on the page:
    def start_session(self):
        ctx = get_ctx()
        while not ctx.should_stop():
            frame = ctx.get_track("webcam").latest()
            if frame is not None:
                output = self.transform(frame)
                ctx.get_track().emit(output)
            else:
                time.sleep(0.01)  # this file's: no busy wait before the first webcam frame
