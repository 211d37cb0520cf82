"""get_ctx() on session threads and elsewhere, and where @model's config
file is looked for."""

import os
import threading

import pytest

from framewire import VideoModel, _runtime, get_ctx, model


def test_get_ctx_is_the_calling_threads_session():
    a, b = _runtime.Context(None, 1), _runtime.Context(None, 2)
    with _runtime._sessions_lock:
        _runtime._sessions.update({1: a, 2: b})
    try:
        seen = {}

        def on_session(ctx, key):
            _runtime._local.ctx = ctx  # what the engine's callbacks do
            seen[key] = get_ctx()

        threads = [threading.Thread(target=on_session, args=(c, k)) for k, c in (("a", a), ("b", b))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert seen == {"a": a, "b": b}
        with pytest.raises(RuntimeError, match="while 2 sessions run; call it on the session's own thread"):
            get_ctx()  # this thread belongs to no session
        with _runtime._sessions_lock:
            del _runtime._sessions[2]
        assert get_ctx() is a  # the one session running
    finally:
        with _runtime._sessions_lock:
            _runtime._sessions.clear()
    with pytest.raises(RuntimeError, match="no session is running"):
        get_ctx()


@model(name="cfg", config="config.yml")
class WithConfig(VideoModel):
    pass


def test_config_is_relative_to_the_model_file(tmp_path):
    name, path = _runtime.model_info(WithConfig)
    assert name == "cfg" and path == os.path.join(os.path.dirname(os.path.abspath(__file__)), "config.yml")


def test_undecorated_class_is_refused():
    class Plain(VideoModel):
        pass
    with pytest.raises(TypeError, match="not decorated with @framewire.model"):
        _runtime.model_info(Plain)
