"""Test models that fail where a model can: in __init__ and in
start_session."""

import os

from framewire import VideoModel, model


@model(name="broken-session")
class BrokenSession(VideoModel):
    def start_session(self):
        raise ValueError("the model cannot start: weights missing")


@model(name="broken-init")
class BrokenInit(VideoModel):
    def __init__(self, config):
        raise FileNotFoundError(os.path.join("weights", "model.pt"))

    def start_session(self):
        pass
