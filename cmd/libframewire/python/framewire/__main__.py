"""python3 -m framewire serve model.py[:ClassName] [flags of the framewire command]"""

import importlib.util
import os
import sys

USAGE = """usage: python3 -m framewire serve MODEL.py[:ClassName] [flags]

Serves the model with the Framewire engine, exactly as `make run` serves a
Go model: the Reactor local-mode protocol (the SDK with local: true) on
127.0.0.1:8080 by default, the demo page when the model has a main_video
output, /health and /metrics; --mode node serves it as a production node.
The flags are the framewire command's (--addr, --mode, --capacity, …);
--help lists them. Ctrl-C or SIGTERM stops it cleanly."""


def load_class(spec):
    path, _, cls_name = spec.partition(":")
    if not os.path.exists(path):
        raise SystemExit(f"framewire: {path}: no such file")
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
    mod_name = os.path.splitext(os.path.basename(path))[0]
    s = importlib.util.spec_from_file_location(mod_name, path)
    mod = importlib.util.module_from_spec(s)
    sys.modules[mod_name] = mod
    s.loader.exec_module(mod)
    models = [v for v in vars(mod).values() if isinstance(v, type) and getattr(v, "_framewire_model", None)
              and v.__module__ == mod_name]
    if cls_name:
        c = getattr(mod, cls_name, None)
        if c is None or not getattr(c, "_framewire_model", None):
            raise SystemExit(f"framewire: {path} has no @model class {cls_name!r}; it has {[m.__name__ for m in models]}")
        return c
    if len(models) != 1:
        raise SystemExit(f"framewire: {path} declares {len(models)} @model classes "
                         f"({', '.join(m.__name__ for m in models) or 'none'}); name one: {path}:ClassName")
    return models[0]


def main(argv):
    if len(argv) < 2 or argv[0] != "serve" or argv[1] in ("-h", "--help"):
        print(USAGE, file=sys.stderr)
        return 2 if not argv or argv[0] not in ("-h", "--help") else 0
    from . import FramewireError, serve
    cls = load_class(argv[1])
    try:
        serve(cls, argv[2:])
    except (FramewireError, ValueError) as e:
        print(f"framewire: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
