"""A model whose config turns recording on, emitting a grey picture and a
440 Hz tone in real time (48 kHz, one video frame's worth of samples per
frame): the Go test TestPythonRecording drives it with the real SDK and
reads the recorded file back, audio included."""

import time

import numpy as np

from framewire import VideoModel, get_ctx, model
from framewire.tracks import AudioOut, VideoOut

W, H, FPS, RATE, FREQ = 320, 240, 30, 48000, 440.0


@model(name="recording", config="recording.yml")
class Recording(VideoModel):
    main_video = VideoOut(rate=FPS, default=True)
    tone = AudioOut(rate=RATE)

    def start_session(self):
        ctx = get_ctx()
        frame = np.full((H, W, 3), 128, dtype=np.uint8)
        per = RATE // FPS
        t0, n = time.monotonic(), 0
        while not ctx.should_stop():
            self.main_video.emit(frame)
            k = np.arange(n * per, (n + 1) * per)
            self.tone.emit((np.sin(2 * np.pi * FREQ * k / RATE) * 8000).astype(np.int16))
            n += 1
            time.sleep(max(0.0, t0 + n / FPS - time.monotonic()))
