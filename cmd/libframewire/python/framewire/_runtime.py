"""Sessions, get_ctx(), the callbacks the engine calls, and serving."""

import ctypes
import inspect
import json
import os
import signal
import sys
import threading
import traceback

import numpy as np

from . import _abi, _frames, _schema
from .tracks import InputTrack, OutputTrack, declared
from .transports.media import MediaBundle, TrackData

_local = threading.local()
_sessions = {}  # session handle → Context
_sessions_lock = threading.Lock()


class Context:
    """One session as the model sees it. get_ctx() returns the calling
    session's; its methods are safe from any thread."""

    def __init__(self, lib, handle):
        self._lib, self._h = lib, handle
        self._tracks = {}
        self._lock = threading.Lock()
        self._err = _abi.errbuf()

    @property
    def session_id(self):
        buf = ctypes.create_string_buffer(128)
        _abi.check(self._lib.fw_session_id(self._h, buf, 128), buf)
        return buf.value.decode()

    def should_stop(self):
        """True once the session should end: the client left or stopped,
        or the server is shutting down. Loops in start_session poll it."""
        return bool(self._lib.fw_session_should_stop(self._h))

    def get_track(self, name=None):
        """The named track, or the default output with no name."""
        key = name or ""
        t = self._tracks.get(key)
        if t is not None:
            return t
        with self._lock:
            h, kind, err = _abi.uptr(), ctypes.c_int32(), _abi.errbuf()
            rc = self._lib.fw_session_track(self._h, key.encode(), ctypes.byref(h), ctypes.byref(kind),
                                            err, _abi.ERR_CAP)
            if rc == _abi.EINVAL:
                raise KeyError(err.value.decode())
            _abi.check(rc, err)
            n = name or "default"
            cls = OutputTrack if kind.value in (_abi.VIDEO_OUT, _abi.AUDIO_OUT) else InputTrack
            t = self._tracks.setdefault(key, cls(self._lib, h.value, n, kind.value))
        return t

    def send(self, msg, to=None):
        """Send a JSON-serialisable message to every connected client (the
        SDK's "message" event), or, with ``to`` (a client id or a Client),
        to that client only. Does not wait for the client. Returns True when
        handed to a client, False when no client is attached right now
        (before it connected, or while it reconnects): that message is not
        delivered. Raises TypeError for a value JSON cannot express and
        SessionEnded after the session ended."""
        try:
            doc = json.dumps(msg, allow_nan=False).encode()
        except (TypeError, ValueError) as e:
            raise TypeError(f"send: {type(msg).__name__} is not JSON-serialisable: {e}") from None
        err = _abi.errbuf()
        if to is not None:
            cid = to.id if isinstance(to, Client) else int(to)
            rc = self._lib.fw_session_send_to(self._h, cid, doc, len(doc), err, _abi.ERR_CAP)
        else:
            rc = self._lib.fw_session_send(self._h, doc, len(doc), err, _abi.ERR_CAP)
        if rc == _abi.ENOCLIENT:
            return False
        _abi.check(rc, err)
        return True

    @property
    def client(self):
        """The Client whose command (or connected/disconnected hook) runs
        now, None elsewhere."""
        cid = self._lib.fw_session_client(self._h)
        return Client(self, cid) if cid else None

    @property
    def clients(self):
        """How many clients are connected to the session now."""
        return self._lib.fw_session_clients(self._h)

    def reply(self, msg):
        """Send msg to the client whose command runs now only (see
        send). Raises RuntimeError outside a command from a client."""
        c = self.client
        if c is None:
            raise RuntimeError("reply() outside a command or hook of a client; use send()")
        return self.send(msg, to=c.id)

    def stop(self, reason="model"):
        """Ask the session to end; should_stop() turns true."""
        self._lib.fw_session_stop(self._h, str(reason).encode())

    def __repr__(self):
        return f"<framewire session {self._h}>"


class Client:
    """One client (connection) of a session: ``id`` is its connection id
    (1001 for the single-connection SDK path), ``live`` how many clients
    were connected after it came or went (hooks only, else None)."""

    def __init__(self, ctx, cid, live=None):
        self.ctx, self.id, self.live = ctx, cid, live

    def send(self, msg):
        """Send msg to this client only (see Context.send)."""
        return self.ctx.send(msg, to=self.id)

    def __repr__(self):
        return f"<framewire client {self.id}>"


def connected(fn):
    """Mark a model method ``fn(self, client)`` as the hook called when a
    client connects (its data channel open, so client.send arrives). It
    runs on the session's command thread, before that client's commands;
    get_ctx() is the session's context."""
    fn._framewire_hook = "connected"
    return fn


def disconnected(fn):
    """Mark a model method ``fn(self, client)`` as the hook called when a
    client is lost while the session goes on (not when the session ends)."""
    fn._framewire_hook = "disconnected"
    return fn


def get_ctx():
    """The calling session's Context: in start_session, command handlers,
    on_media and code they call on those threads. From another thread it
    is the one session running, or a RuntimeError naming the fix when
    several run (a node serves many at once: pass ctx to your threads)."""
    ctx = getattr(_local, "ctx", None)
    if ctx is not None:
        return ctx
    with _sessions_lock:
        live = list(_sessions.values())
    if len(live) == 1:
        return live[0]
    if not live:
        raise RuntimeError("get_ctx(): no session is running; call it from start_session, a command or on_media")
    raise RuntimeError(f"get_ctx() on a thread that belongs to no session while {len(live)} sessions run; "
                       "call it on the session's own thread, or pass the Context to threads you start")


def _context(handle):
    with _sessions_lock:
        ctx = _sessions.get(handle)
        if ctx is None:
            ctx = _sessions[handle] = Context(_abi.lib(), handle)
        return ctx


def _guarded(where, err, cap, fn, *args):
    """Run fn reporting an exception as the model's error: its traceback
    into the engine's error buffer, return 1. SessionEnded (an emit that
    raced the session's end) is the session ending, not an error."""
    try:
        fn(*args)
        return 0
    except _abi.SessionEnded:
        return 0
    except BaseException as e:  # noqa: BLE001 - every error goes to the engine, never a crash
        if isinstance(e, KeyboardInterrupt):
            text = f"{where}: interrupted"
        else:
            text = f"{where}: {type(e).__name__}: {e}\n" + "".join(traceback.format_exception(e)[-6:])
        _abi.write_error(err, cap, text)
        return 1


class _Served:
    """A model class bound to the engine: the declaration, the instance
    (built by the init callback) and the callbacks."""

    def __init__(self, cls, name, config):
        self.cls, self.name, self.config = cls, name, config
        self.instance = None
        self.commands = _schema.commands(cls)
        self.has_media = getattr(cls, "on_media", None) is not getattr(_base(), "on_media", None)
        self.cbs = (_abi.INIT_FN(self._init), _abi.SESSION_FN(self._session),
                    _abi.COMMAND_FN(self._command),
                    _abi.MEDIA_FN(self._media) if self.has_media else _abi.MEDIA_FN(),
                    _abi.END_FN(self._end))
        self.hooks = {}
        for attr in dir(cls):
            kind = getattr(getattr(cls, attr, None), "_framewire_hook", None)
            if kind:
                self.hooks[kind] = attr
        self.client_cb = _abi.CLIENT_FN(self._client) if self.hooks else None

    def _init(self, _m, config_json, err, cap):
        def build():
            cfg = json.loads(config_json.decode()) if config_json else None
            self.instance = self.cls(cfg if cfg is not None else {})
        return _guarded(f"{self.cls.__name__}.__init__", err, cap, build)

    def _session(self, h, err, cap):
        ctx = _context(h)
        _local.ctx = ctx
        try:
            return _guarded("start_session", err, cap, self.instance.start_session)
        finally:
            _local.ctx = None

    def _command(self, h, name, args_json, nfiles, files, err, cap):
        _local.ctx = _context(h)
        try:
            return _guarded(f"command {name.decode()}", err, cap, self._run_command, name.decode(),
                            args_json, nfiles, files)
        finally:
            _local.ctx = None

    def _run_command(self, name, args_json, nfiles, files):
        spec = self.commands[name]
        kwargs = json.loads(args_json.decode()) if args_json else {}
        for i in range(nfiles):
            f = files[i]
            kwargs[f.param.decode()] = _schema.File(
                name=f.name.decode(), mime_type=f.mime.decode(),
                data=ctypes.string_at(f.data, f.size) if f.size else b"")
        spec.call(self.instance, kwargs)

    def _media(self, h, media, err, cap):
        _local.ctx = _context(h)
        try:
            return _guarded("on_media", err, cap, self._run_media, media.contents)
        finally:
            _local.ctx = None

    def _run_media(self, m):
        name = m.track.decode()
        if m.kind == _abi.VIDEO_IN:
            n = m.height * m.width * 3
            data = np.ctypeslib.as_array(ctypes.cast(m.pixels, ctypes.POINTER(ctypes.c_uint8)), (n,)).copy()
            data = data.reshape(m.height, m.width, 3)
            td = TrackData(name, "video", data, m.capture_unix_ns / 1e9)
        else:
            n = m.samples * m.channels
            data = np.ctypeslib.as_array(ctypes.cast(m.pcm, ctypes.POINTER(ctypes.c_int16)), (n,)).copy()
            td = TrackData(name, "audio", data, m.capture_unix_ns / 1e9, m.sample_rate)
        self.instance.on_media(MediaBundle([td]))

    def _client(self, h, is_connected, cid, live):
        attr = self.hooks.get("connected" if is_connected else "disconnected")
        if attr is None:
            return
        ctx = _context(h)
        _local.ctx = ctx
        err = ctypes.create_string_buffer(_abi.ERR_CAP)
        try:
            if _guarded(attr, err, _abi.ERR_CAP, getattr(self.instance, attr), Client(ctx, cid, live)):
                sys.stderr.write(f"framewire: {err.value.decode(errors='replace')}\n")  # a hook's error is logged, the model goes on
        finally:
            _local.ctx = None

    def _end(self, h):
        with _sessions_lock:
            _sessions.pop(h, None)
        _frames.collect_lent(_abi.lib())  # the session's lent pictures are released by now

    def declare(self, lib):
        err = _abi.errbuf()
        h = _abi.uptr()
        cfg = self.config.encode() if self.config else None
        _abi.check(lib.fw_model_new(self.name.encode(), cfg, ctypes.byref(h), err, _abi.ERR_CAP), err)
        for t in declared(self.cls):
            _abi.check(lib.fw_model_add_track(h, t.name.encode(), t.kind, t.rate, int(t.default), err,
                                              _abi.ERR_CAP), err)
        for c in self.commands.values():
            _abi.check(lib.fw_model_add_command(h, c.name.encode(), c.description.encode(),
                                                json.dumps(c.schema).encode(), err, _abi.ERR_CAP), err)
        _abi.check(lib.fw_model_set_callbacks(h, *self.cbs, err, _abi.ERR_CAP), err)
        if self.client_cb is not None:
            _abi.check(lib.fw_model_set_client_callback(h, self.client_cb, err, _abi.ERR_CAP), err)
        return h.value


def _base():
    from . import VideoModel
    return VideoModel


def model_info(cls):
    """(name, config path) of a class decorated with @model."""
    info = getattr(cls, "_framewire_model", None)
    if info is None:
        raise TypeError(f"{cls.__name__} is not decorated with @framewire.model(name=...)")
    name, config = info
    if config and not os.path.isabs(config):
        base = os.path.dirname(os.path.abspath(inspect.getsourcefile(cls) or "."))
        cand = os.path.join(base, config)
        config = cand if os.path.exists(cand) or not os.path.exists(config) else os.path.abspath(config)
    return name, config


def serve(cls, args=(), *, install_signals=True):
    """Serve model class cls with cmd/framewire's flags (args, e.g.
    ["-addr", "127.0.0.1:8080"] or ["-mode", "node", …]) until SIGINT or
    SIGTERM (or stop()). Blocks; the engine runs on its own threads while
    this thread waits for a signal. Raises FramewireError when serving
    fails (a bad flag, a taken port, a model whose __init__ raised)."""
    lib = _abi.lib()
    name, config = model_info(cls)
    served = _Served(cls, name, config)
    handle = served.declare(lib)
    result = {}

    def run():
        err = _abi.errbuf()
        result["rc"] = lib.fw_serve(handle, json.dumps(list(args)).encode(), err, _abi.ERR_CAP)
        result["err"] = err

    t = threading.Thread(target=run, name="framewire-serve", daemon=True)
    stop = threading.Event()
    _serving.append((handle, stop))
    old = {}
    if install_signals and threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            old[sig] = signal.signal(sig, lambda *_: stop.set())
    try:
        t.start()
        while t.is_alive() and not stop.wait(0.2):
            pass
    finally:
        lib.fw_stop(handle)
        t.join()
        _serving.remove((handle, stop))
        for sig, h in old.items():
            signal.signal(sig, h)
    rc = result.get("rc", _abi.EFAIL)
    if rc != _abi.OK:
        _abi.check(rc if rc != _abi.EINVAL else _abi.EFAIL, result.get("err"))


_serving = []


def stop():
    """Make every serve() of this process return (as SIGTERM would)."""
    for _h, ev in list(_serving):
        ev.set()
