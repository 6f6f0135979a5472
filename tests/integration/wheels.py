"""Wheels made for the tests: a small dependency tree installers must resolve, and one of a few MB.

They are real wheels (METADATA, WHEEL, RECORD with hashes) that pip and uv install, so
the test upstreams need nothing from the network for them.
"""

from __future__ import annotations

import base64
import hashlib
import os
import zipfile
from pathlib import Path

# (project, version, requirements, bytes of incompressible payload)
PROJECT_SET = [
    ("dpctl-app", "1.0", ["dpctl-lib>=1.0", "dpctl-util"], 0),
    ("dpctl-lib", "1.0", [], 0),
    ("dpctl-lib", "1.1", ["dpctl-util>=1.0"], 0),
    ("dpctl-util", "1.0", [], 0),
    ("dpctl-big", "1.0", [], 4_000_000),
]
BIG = "dpctl_big-1.0-py3-none-any.whl"
# Only on the test upstream: its path in devpi-export's directory is longer than tar's 100 characters (test_restore.py).
LONG_NAMED = ("dpctl-a-project-whose-name-makes-its-backup-path-long", "1.0", [], 0)


def make_project_set(directory: Path) -> list[Path]:
    return [make_wheel(directory, *spec) for spec in PROJECT_SET]


def make_wheel(directory: Path, project: str, version: str, requires: list[str], payload: int = 0) -> Path:
    module = project.replace("-", "_")
    dist_info = f"{module}-{version}.dist-info"
    metadata = (
        "\n".join(
            ["Metadata-Version: 2.1", f"Name: {project}", f"Version: {version}", "Summary: made by devpictl's tests"]
            + [f"Requires-Dist: {r}" for r in requires]
        )
        + "\n"
    )
    members = {
        f"{module}/__init__.py": f"VERSION = {version!r}\n".encode(),
        f"{dist_info}/METADATA": metadata.encode(),
        f"{dist_info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: devpictl-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    if payload:
        members[f"{module}/payload.bin"] = os.urandom(payload)
    record = "".join(f"{name},sha256={_urlsafe_digest(data)},{len(data)}\n" for name, data in members.items())
    members[f"{dist_info}/RECORD"] = (record + f"{dist_info}/RECORD,,\n").encode()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{module}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as wheel:
        for name, data in members.items():
            wheel.writestr(name, data)
    return path


def wheel_metadata(wheel: Path) -> bytes:
    """The wheel's METADATA: what an index serves as ``<wheel>.metadata``."""
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        return archive.read(name)


def _urlsafe_digest(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
