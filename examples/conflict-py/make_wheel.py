"""Builds a pure-Python wheel (PEP 427) of one package directory, offline and
reproducibly, the way a build backend would: NAME-VERSION-py3-none-any.whl
with NAME-VERSION.dist-info/{METADATA,WHEEL,RECORD}.

    python3 make_wheel.py SRC_DIR NAME VERSION OUT_DIR

SRC_DIR holds the importable package (SRC_DIR/pycodec/__init__.py). The
conflict example packs the wheels it makes with `troupe pack --wheel`.
"""

import base64
import hashlib
import os
import sys
import zipfile


def record_hash(data):
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def main(src, name, version, out):
    dist_info = "%s-%s.dist-info" % (name, version)
    files = []
    for root, dirs, names in os.walk(src):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for n in sorted(names):
            if n.endswith(".pyc"):
                continue
            path = os.path.join(root, n)
            with open(path, "rb") as f:
                files.append((os.path.relpath(path, src).replace(os.sep, "/"), f.read()))
    files.append((dist_info + "/METADATA",
                  ("Metadata-Version: 2.1\nName: %s\nVersion: %s\n" % (name, version)).encode()))
    files.append((dist_info + "/WHEEL",
                  b"Wheel-Version: 1.0\nGenerator: make_wheel.py\nRoot-Is-Purelib: true\nTag: py3-none-any\n"))
    record = "".join("%s,%s,%d\n" % (p, record_hash(d), len(d)) for p, d in files)
    files.append((dist_info + "/RECORD", (record + dist_info + "/RECORD,,\n").encode()))
    os.makedirs(out, exist_ok=True)
    wheel = os.path.join(out, "%s-%s-py3-none-any.whl" % (name, version))
    with zipfile.ZipFile(wheel + ".tmp", "w", zipfile.ZIP_DEFLATED) as z:
        for path, data in files:
            info = zipfile.ZipInfo(path, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            z.writestr(info, data, zipfile.ZIP_DEFLATED)
    os.replace(wheel + ".tmp", wheel)


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit("usage: make_wheel.py SRC_DIR NAME VERSION OUT_DIR")
    main(*sys.argv[1:])
