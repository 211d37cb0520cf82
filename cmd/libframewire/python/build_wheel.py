"""Builds framewire-<version>-py3-none-linux_x86_64.whl from the package
directory (its Python files, _lib/ with libframewire.so and the FFmpeg
libraries it loads, web/ with the demo page) with the standard library
only: a wheel is a zip with a dist-info folder (PEP 427), nothing from
outside is needed.

usage: python3 build_wheel.py OUT_DIR
"""

import base64
import hashlib
import os
import re
import sys
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
PKG = os.path.join(HERE, "framewire")
TAG = "py3-none-linux_x86_64"


def version():
    src = open(os.path.join(PKG, "__init__.py")).read()
    return re.search(r'^__version__ = "([^"]+)"', src, re.M).group(1)


def files():
    for root, dirs, names in os.walk(PKG):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for n in sorted(names):
            if n.endswith((".pyc", ".h")):
                continue
            full = os.path.join(root, n)
            yield full, os.path.relpath(full, HERE)


def record_line(arc, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{arc},sha256={digest},{len(data)}"


def main(out):
    v = version()
    if not os.path.exists(os.path.join(PKG, "_lib", "libframewire.so")):
        sys.exit("build_wheel: framewire/_lib/libframewire.so is missing; run `make python`")
    dist = f"framewire-{v}.dist-info"
    meta = {
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: framewire\nVersion: {v}\n"
                            "Summary: Real-time video models served over WebRTC by the Framewire engine\n"
                            "Requires-Python: >=3.9\nRequires-Dist: numpy\nLicense-File: LICENSE\n",
        f"{dist}/WHEEL": f"Wheel-Version: 1.0\nGenerator: framewire build_wheel.py\nRoot-Is-Purelib: false\nTag: {TAG}\n",
        f"{dist}/top_level.txt": "framewire\n",
    }
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, f"framewire-{v}-{TAG}.whl")
    records = []
    with zipfile.ZipFile(path + ".tmp", "w", zipfile.ZIP_DEFLATED) as z:
        for full, arc in files():
            data = open(full, "rb").read()
            info = zipfile.ZipInfo(arc, date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = (os.stat(full).st_mode & 0o777) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)
            records.append(record_line(arc, data))
        for arc, text in meta.items():
            data = text.encode()
            z.writestr(zipfile.ZipInfo(arc, date_time=(2020, 1, 1, 0, 0, 0)), data)
            records.append(record_line(arc, data))
        records.append(f"{dist}/RECORD,,")
        z.writestr(zipfile.ZipInfo(f"{dist}/RECORD", date_time=(2020, 1, 1, 0, 0, 0)), "\n".join(records) + "\n")
    os.replace(path + ".tmp", path)
    print(path)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "dist"))
