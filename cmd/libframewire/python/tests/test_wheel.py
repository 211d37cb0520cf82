"""The wheel make python builds installs into a fresh virtual environment
(offline: no index) and serves a model with its demo page from there."""

import glob
import os
import re
import signal
import subprocess
import sys
import urllib.request

import pytest

from conftest import PKG_ROOT

WHEEL_DIR = os.environ.get("FRAMEWIRE_WHEEL_DIR", os.path.join(PKG_ROOT, "..", "..", "..", "build", "python"))


def test_wheel_installs_and_serves(tmp_path):
    wheels = sorted(glob.glob(os.path.join(WHEEL_DIR, "framewire-*-py3-none-linux_x86_64.whl")))
    if not wheels:
        if os.environ.get("FRAMEWIRE_E2E"):
            pytest.fail(f"no wheel in {WHEEL_DIR}; run make python")
        pytest.skip("no wheel; run make python")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    py = str(venv / "bin" / "python")
    subprocess.run([py, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps", wheels[-1]], check=True)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "FRAMEWIRE_LIB", "FRAMEWIRE_WEB_DIR")}
    r = subprocess.run([py, "-c", "import framewire, framewire._abi as a; print(a.lib().fw_abi_version(), framewire.__file__)"],
                       cwd=tmp_path, env=env, capture_output=True, text=True, check=True)
    version, where = r.stdout.split()
    assert version == "1" and where.startswith(str(venv)), r.stdout
    model = os.path.join(PKG_ROOT, "examples", "default_track.py")
    p = subprocess.Popen([py, "-m", "framewire", "serve", model, "-addr", "127.0.0.1:0"], cwd=tmp_path, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        m = re.search(rb"on (http://\S+?)/ ", p.stdout.readline())
        assert m, p.stderr.read() if p.poll() is not None else "no serving line"
        page = urllib.request.urlopen(m.group(1).decode().replace("localhost", "127.0.0.1") + "/", timeout=10).read()
        assert b'window.FRAMEWIRE_MODEL = "default-track"' in page  # the page bundle shipped in the wheel
    finally:
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=20) == 0
