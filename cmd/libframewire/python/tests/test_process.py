"""The pitfalls of a Go runtime inside a Python process: fork, spawn,
faulthandler, signals, and a model's exceptions reported, never a crash."""

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from framewire import FramewireError, _abi, serve

from conftest import PKG_ROOT

PY = sys.executable
ENV = dict(os.environ, PYTHONPATH=PKG_ROOT, PYTHONUNBUFFERED="1")
SERVING = re.compile(rb"serving model \S+ on (http://[0-9a-z.:]+)")


def run_py(code, timeout=60):
    return subprocess.run([PY, "-c", code], env=ENV, capture_output=True, timeout=timeout)


def test_fork_after_load_fails_clearly_in_the_child():
    r = run_py("""
import os, sys
from framewire import _abi
_abi.lib()
pid = os.fork()
if pid == 0:
    try:
        _abi.lib()
        os._exit(3)
    except RuntimeError as e:
        os.write(1, str(e).encode())
        os._exit(0)
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
""", timeout=30)
    assert r.returncode == 0, r.stderr
    assert b"forked after libframewire was loaded" in r.stdout and b"'spawn'" in r.stdout


def _version(_):
    from framewire import _abi
    return _abi.lib().fw_abi_version()


def test_spawn_workers_use_the_engine():
    import multiprocessing
    ctx = multiprocessing.get_context("spawn")
    _abi.lib()  # loaded in the parent first, as in a real server
    with ctx.Pool(2) as pool:
        assert pool.map(_version, range(4)) == [_abi.ABI_VERSION] * 4


def test_faulthandler_after_load_is_warned_about():
    r = run_py("import faulthandler\nfrom framewire import _abi\n_abi.lib()\nfaulthandler.enable()\n")
    assert r.returncode == 0
    assert b"replaces the Go runtime's signal handlers" in r.stderr


def test_faulthandler_before_load_is_fine():
    r = run_py("import faulthandler\nfaulthandler.enable()\nfrom framewire import _abi\n_abi.lib()\n")
    assert r.returncode == 0 and b"replaces" not in r.stderr


def test_init_error_is_reported_and_the_process_survives():
    sys.path.insert(0, os.path.join(PKG_ROOT, "tests", "models"))
    from broken import BrokenInit
    with pytest.raises(FramewireError, match=r"BrokenInit.__init__: FileNotFoundError: weights/model.pt"):
        serve(BrokenInit, ["-addr", "127.0.0.1:0"], install_signals=False)
    assert _abi.lib().fw_abi_version() == _abi.ABI_VERSION  # still usable


def test_bad_flag_is_an_error():
    sys.path.insert(0, os.path.join(PKG_ROOT, "tests", "models"))
    from broken import BrokenSession
    with pytest.raises(FramewireError, match="-mode \"cluster\": want local or node"):
        serve(BrokenSession, ["-mode", "cluster"], install_signals=False)


def start(model, *args):
    p = subprocess.Popen([PY, "-m", "framewire", "serve", model, "-addr", "127.0.0.1:0", *args], env=ENV,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    line = p.stdout.readline()
    m = SERVING.search(line)
    assert m, (line, p.stderr.read() if p.poll() is not None else b"")
    return p, m.group(1).decode().replace("localhost", "127.0.0.1")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signals_stop_the_server_cleanly(sig):
    p, url = start(os.path.join(PKG_ROOT, "examples", "default_track.py"))
    assert urllib.request.urlopen(url + "/health", timeout=5).read() == b"ok\n"
    p.send_signal(sig)
    assert p.wait(timeout=20) == 0
    assert b"level=ERROR" not in p.stderr.read()


def test_start_session_exception_is_the_models_error():
    p, url = start(os.path.join(PKG_ROOT, "tests", "models", "broken.py") + ":BrokenSession")
    try:
        req = urllib.request.Request(url + "/start_session", data=b"{}", method="POST", headers={
            "Content-Type": "application/json", "Reactor-API-Version": "1", "Reactor-API-Accept-Version": "1"})
        sid = json.loads(urllib.request.urlopen(req, timeout=10).read())["session_id"]
        deadline = time.time() + 10
        while time.time() < deadline:  # the session ends with the model's error
            try:
                urllib.request.urlopen(f"{url}/sessions/{sid}/transport/webrtc/ice_servers", timeout=5)
            except urllib.error.HTTPError:
                break
            time.sleep(0.1)
        assert urllib.request.urlopen(url + "/health", timeout=5).read() == b"ok\n"  # the process goes on
    finally:
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=20) == 0
    err = p.stderr.read()
    assert b"start_session: ValueError: the model cannot start: weights missing" in err, err[-2000:]
