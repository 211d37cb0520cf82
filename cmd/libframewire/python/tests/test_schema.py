"""@command type hints → the flat schema the SDK sees, and the engine
validating against it (CommandFromSchema through the real library)."""

import ctypes
import json
from typing import Annotated, Literal, Optional

import pytest

from framewire import File, Param, VideoModel, command, model
from framewire import _abi, _schema


@model(name="schema-test")
class M(VideoModel):
    @command("paint", description="Paint it")
    def paint(self, colour: Literal["red", "blue"], strength: Annotated[float, Param(min=0, max=1, description="how much")] = 0.5,
              steps: int = 4, loop: bool = False, prompt: str = "cat"):
        pass

    @command()
    def upload(self, image: File, mask: Optional[File] = None):
        """Takes an image.

        More text that is not the description."""

    @command
    def bare(self):
        pass


def test_schema_from_hints():
    cmds = _schema.commands(M)
    assert set(cmds) == {"paint", "upload", "bare"}
    p = cmds["paint"]
    assert p.description == "Paint it"
    assert p.schema == {
        "colour": {"type": "string", "enum": ["red", "blue"], "required": True},
        "strength": {"type": "number", "minimum": 0.0, "maximum": 1.0, "description": "how much", "default": 0.5,
                     "required": False},
        "steps": {"type": "integer", "default": 4, "required": False},
        "loop": {"type": "boolean", "default": False, "required": False},
        "prompt": {"type": "string", "default": "cat", "required": False},
    }
    u = cmds["upload"]
    assert u.description == "Takes an image."
    assert u.schema == {"image": {"type": "file", "required": True}, "mask": {"type": "file", "required": False}}
    assert cmds["bare"].schema == {}


def test_float_parameter_gets_a_float():
    got = {}

    class X:
        def f(self, x: float):
            got["x"] = x
    c = _schema._Command("f", X.f, None)
    c.call(X(), {"x": 3})
    assert got["x"] == 3.0 and isinstance(got["x"], float)


@pytest.mark.parametrize("src,says", [
    ("def f(self, x): pass", "has no type annotation"),
    ("def f(self, x: list): pass", "want str, int, float, bool"),
    ("def f(self, x: Literal[1, 2]): pass", "must list strings"),
    ("def f(self, x: str = None): pass", "defaults to None"),
    ("def f(self, *xs: int): pass", "*args/**kwargs"),
    ("def f(self, x: File = b'x'): pass", "cannot have a default other than None"),
])
def test_bad_signatures(src, says):
    ns = {"Literal": Literal, "File": File}
    exec(src, ns)
    with pytest.raises(TypeError, match=says.replace("*", r"\*").replace("(", r"\(")):
        _schema._Command("f", ns["f"], None)


def test_engine_validates_the_schema():
    """The schema Python derives is one the engine accepts, and a bad one
    is refused with the engine's message."""
    lib = _abi.lib()
    err, h = _abi.errbuf(), _abi.uptr()
    _abi.check(lib.fw_model_new(b"schema-check", None, ctypes.byref(h), err, _abi.ERR_CAP), err)
    for c in _schema.commands(M).values():
        _abi.check(lib.fw_model_add_command(h, c.name.encode(), c.description.encode(), json.dumps(c.schema).encode(),
                                            err, _abi.ERR_CAP), err)
    bad = json.dumps({"x": {"type": "integer", "minimum": 5, "maximum": 1, "required": True}}).encode()
    rc = lib.fw_model_add_command(h, b"bad", b"", bad, err, _abi.ERR_CAP)
    assert rc == _abi.EINVAL and b"min 5 is greater than max 1" in err.value


def test_model_decorator_checks():
    with pytest.raises(ValueError, match="non-empty string"):
        model(name="")
    with pytest.raises(TypeError, match="VideoModel subclasses"):
        model(name="x")(object)
