"""Framewire for Python: the Reactor tracks page's model API, served by the
Framewire engine (libframewire.so, the Go engine over a C ABI).

    from framewire import VideoModel, model, command, get_ctx
    from framewire.tracks import VideoOut, VideoIn

    @model(name="face-transform")
    class FaceTransform(VideoModel):
        webcam = VideoIn()
        main_video = VideoOut(default=True)

        def start_session(self):
            ctx = get_ctx()
            while not ctx.should_stop():
                frame = ctx.get_track("webcam").latest()
                if frame is not None:
                    ctx.get_track().emit(frame[:, ::-1].copy())

Serve it with ``python3 -m framewire serve face.py`` (the flags of the
framewire command: --addr, --mode node, …).

Threads: start_session runs once per session on its own thread; commands
of a session run one at a time, concurrently with it; on_media sees every
inbound frame on another. get_ctx() returns the calling session's context
on each of them. Every engine call releases the GIL while it works.

Processes: one engine per process, loaded on first use and never
unloaded. A child made by fork() after that cannot use it: use
multiprocessing's "spawn" start method.
"""

from ._abi import FramewireError, NoDevicePath, SessionEnded
from ._runtime import Client, Context, connected, disconnected, get_ctx, serve, stop
from ._schema import File, Param, command
from . import tracks

__version__ = "0.1.0"

__all__ = ["VideoModel", "model", "command", "get_ctx", "Context", "Client", "connected", "disconnected",
           "File", "Param", "serve", "stop",
           "tracks", "FramewireError", "SessionEnded", "NoDevicePath"]


class VideoModel:
    """Base class of a model. Declare tracks as class attributes, override
    start_session (runs once per session, until get_ctx().should_stop())
    and optionally on_media(bundle) to see every inbound frame. One
    instance serves every session of the process."""

    def __init__(self, config=None):
        self.config = config

    def start_session(self):
        raise NotImplementedError(f"{type(self).__name__} must define start_session(self)")

    def on_media(self, bundle):
        """Called with every inbound media event when overridden."""


def model(name, config=None):
    """Declare a VideoModel subclass as the model ``name`` (the SDK's
    modelName), with an optional YAML config file (relative to the model's
    source file) parsed and passed to __init__(self, config)."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"@model(name={name!r}): want a non-empty string")

    def mark(cls):
        if not (isinstance(cls, type) and issubclass(cls, VideoModel)):
            raise TypeError(f"@model applies to VideoModel subclasses, not {cls!r}")
        cls._framewire_model = (name, config)
        return cls
    return mark
