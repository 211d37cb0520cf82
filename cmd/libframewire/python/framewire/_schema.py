"""@command: a method's type hints become the flat parameter schema the SDK
sees; the engine validates arguments against it before the method runs."""

import inspect
import typing
from dataclasses import dataclass

__all__ = ["command", "File", "Param", "commands"]


@dataclass(frozen=True)
class File:
    """An uploaded file, the type of a command parameter that takes one
    (``image: File``; ``mask: Optional[File] = None`` for an optional one)."""
    name: str
    mime_type: str
    data: bytes

    @property
    def size(self):
        return len(self.data)


@dataclass(frozen=True)
class Param:
    """Bounds and a description for a parameter, inside typing.Annotated:
    ``strength: Annotated[float, Param(min=0, max=1, description="…")] = 0.5``."""
    min: typing.Optional[float] = None
    max: typing.Optional[float] = None
    description: str = ""


def command(name=None, description=None):
    """Mark a model method as the command ``name`` (default: the method's
    name). Its annotated parameters are the command's: str, int, float,
    bool, Literal["a", "b"] (an enum), File, Optional[File]; defaults from
    the signature; bounds via Annotated[..., Param(min=, max=)]."""
    if callable(name):  # used bare: @command
        return command()(name)

    def mark(fn):
        fn._framewire_command = (name or fn.__name__, description)
        return fn
    return mark


_SIMPLE = {str: "string", bool: "boolean", int: "integer", float: "number"}


class _Command:
    def __init__(self, name, fn, description):
        self.name, self.fn = name, fn
        doc = inspect.getdoc(fn) or ""
        self.description = description if description is not None else doc.split("\n\n")[0].replace("\n", " ")
        self.schema, self.casts = _derive(name, fn)

    def call(self, instance, kwargs):
        for k, cast in self.casts.items():
            if k in kwargs and cast is not None:
                kwargs[k] = cast(kwargs[k])
        return self.fn(instance, **kwargs)


def _derive(cname, fn):
    hints = typing.get_type_hints(fn, include_extras=True)
    schema, casts = {}, {}
    params = list(inspect.signature(fn).parameters.values())[1:]  # after self
    for p in params:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise TypeError(f"command {cname!r}: *args/**kwargs are not parameters; declare each one")
        if p.name not in hints:
            raise TypeError(f"command {cname!r}: parameter {p.name!r} has no type annotation; "
                            "annotate it (str, int, float, bool, Literal[...], File)")
        d, cast = _param(cname, p, hints[p.name])
        schema[p.name], casts[p.name] = d, cast
    return schema, casts


def _param(cname, p, hint):
    d = {}
    extras = []
    if typing.get_origin(hint) is typing.Annotated:
        hint, *extras = typing.get_args(hint)
    for x in extras:
        if isinstance(x, Param):
            if x.min is not None:
                d["minimum"] = float(x.min)
            if x.max is not None:
                d["maximum"] = float(x.max)
            if x.description:
                d["description"] = x.description
        elif isinstance(x, str):
            d["description"] = x
    optional = False
    if typing.get_origin(hint) is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        optional, hint = len(args) == 1, args[0] if len(args) == 1 else hint
    has_default = p.default is not inspect.Parameter.empty
    cast = None
    if hint is File:
        d["type"] = "file"
        if has_default and p.default is not None:
            raise TypeError(f"command {cname!r}: file parameter {p.name!r} cannot have a default other than None")
        d["required"] = not (optional or has_default)
        return d, None
    if typing.get_origin(hint) is typing.Literal:
        vals = typing.get_args(hint)
        if not all(isinstance(v, str) for v in vals):
            raise TypeError(f"command {cname!r}: parameter {p.name!r}: Literal{list(vals)} must list strings "
                            "(use Annotated[int, Param(min=, max=)] for numbers)")
        d["type"], d["enum"] = "string", list(vals)
    elif hint in _SIMPLE:
        d["type"] = _SIMPLE[hint]
        cast = float if hint is float else None
    else:
        raise TypeError(f"command {cname!r}: parameter {p.name!r} has type {hint!r}; want str, int, float, bool, "
                        "Literal['a', 'b'], File or Optional[File]")
    if has_default:
        if p.default is None:
            raise TypeError(f"command {cname!r}: parameter {p.name!r} defaults to None; give it a value of its "
                            "type, or no default to make it required")
        d["default"] = p.default
    d["required"] = not has_default
    return d, cast


def commands(cls):
    """The @command methods of a model class by command name."""
    out = {}
    for klass in reversed(cls.__mro__):
        for attr, fn in vars(klass).items():
            mark = getattr(fn, "_framewire_command", None)
            if mark:
                name, desc = mark
                out[name] = _Command(name, fn, desc)
    return out
