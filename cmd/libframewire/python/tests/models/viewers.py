"""A test model for many clients on one session: connected/disconnected
hooks greet and count clients, a command replies to its sender only and
another broadcasts."""

import time

import numpy as np

from framewire import VideoModel, command, connected, disconnected, get_ctx, model
from framewire.tracks import VideoOut


@model(name="viewers")
class Viewers(VideoModel):
    main_video = VideoOut(rate=30, default=True)

    def start_session(self):
        ctx = get_ctx()
        frame = np.full((240, 320, 3), 90, dtype=np.uint8)
        t0, n = time.monotonic(), 0
        while not ctx.should_stop():
            self.main_video.emit(frame)
            n += 1
            time.sleep(max(0.0, t0 + n / 30 - time.monotonic()))

    @connected
    def hello(self, client):
        client.send({"type": "welcome", "id": client.id, "live": client.live})

    @disconnected
    def bye(self, client):
        get_ctx().send({"type": "left", "id": client.id, "live": client.live})

    @command("whoami")
    def whoami(self):
        get_ctx().reply({"type": "you", "id": get_ctx().client.id, "clients": get_ctx().clients})
