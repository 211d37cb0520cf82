"""Recording switched on from a Python model's config file (its
`recording:` block, read by the engine like the rest of the file) and
stored where -recordings says; the clip routes answer over HTTP. Media
needs a WebRTC viewer (the recording muxes the live encoder's packets),
which these tests have none of: the recorded file itself, H.264 + AAC with
the model's tone, is checked by the Go test TestPythonRecording
(cmd/framewire/python_recording_test.go) on tests/models/recording.py,
driven by the real SDK in Chromium."""

import json
import os
import signal
import textwrap
import urllib.error
import urllib.request
import uuid

from test_process import start

HDR = {"Content-Type": "application/json", "Reactor-API-Version": "1", "Reactor-API-Accept-Version": "1"}


def get(url):
    try:
        r = urllib.request.urlopen(url, timeout=10)
        return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def test_recording_from_the_models_config(tmp_path):
    (tmp_path / "config.yml").write_text("prompt: neon\nrecording:\n  enabled: true\n  chunk_seconds: 2\n")
    (tmp_path / "rec_model.py").write_text(textwrap.dedent('''
        import time
        from framewire import VideoModel, model, get_ctx

        @model(name="rec", config="config.yml")
        class Rec(VideoModel):
            def __init__(self, config):
                assert config["prompt"] == "neon", config  # the model's keys reach it

            def start_session(self):
                while not get_ctx().should_stop():
                    time.sleep(0.05)
    '''))
    recs = tmp_path / "recordings"
    p, url = start(str(tmp_path / "rec_model.py") + ":Rec", "-recordings", str(recs))
    try:
        rid = str(uuid.uuid4())
        req = urllib.request.Request(url + "/start_session", data=json.dumps({"session_id": rid}).encode(),
                                     method="POST", headers=HDR)
        d = json.loads(urllib.request.urlopen(req, timeout=10).read())
        assert d["recording"] == {"enabled": True, "chunk_seconds": 2}
        # Registered, nothing recorded yet: the playlist waits.
        code, headers, body = get(f"{url}/clips?session_id={rid}&start=0&end=2")
        assert (code, body, headers["Retry-After"]) == (202, b"", "2")
        code, _, body = get(f"{url}/clips?session_id={uuid.uuid4()}&start=0&end=2")
        assert code == 410 and json.loads(body) == {"detail": "Recording unknown or aged out"}
        code, _, body = get(f"{url}/clips/chunks/{rid}/secrets.txt")
        assert code == 404 and json.loads(body) == {"detail": "Segment not found"}
        assert recs.is_dir()
    finally:
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=20) == 0
    err = p.stderr.read()
    assert b"sessions are recorded" in err and str(recs).encode() in err, err[-2000:]
    assert b"level=ERROR" not in err, err[-2000:]
