"""The tracks page's "Default Track" example: no track declarations, so the
model gets one video output, main_video. Only the import differs from the
page (reactor_runtime → framewire); generate() is this file's own."""

import time

import numpy as np

from framewire import VideoModel, model
from framewire import get_ctx


@model(name="default-track")
class DefaultTrack(VideoModel):
    def generate(self):
        """A 640x360 gradient that scrolls, at 30 frames per second."""
        now = time.monotonic()
        wait = getattr(self, "_next", now) - now
        if wait > 0:
            time.sleep(wait)
        self._next = max(now, getattr(self, "_next", now)) + 1 / 30
        self._t = getattr(self, "_t", 0) + 1
        x = (np.arange(640, dtype=np.uint16) + 4 * self._t) % 256
        frame = np.empty((360, 640, 3), dtype=np.uint8)
        frame[:, :, 0] = x
        frame[:, :, 1] = 90
        frame[:, :, 2] = 255 - x
        return frame

    # As on the page:
    def start_session(self):
        while not get_ctx().should_stop():
            frame = self.generate()
            get_ctx().get_track().emit(frame)
