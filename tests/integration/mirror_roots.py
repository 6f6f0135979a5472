"""The fallback test upstreams: other mirrors of the test upstream's wheels, as real mirrors differ.

- ``fallback``: another host and path (/pypi/web/simple), absolute file links on its own
  host, a release behind (no dpctl-lib 1.1), and one project the primary lacks.
- ``bad``: the same pages as ``fallback`` but relative links, and files whose bytes do not
  match the sha256 its pages promise (a corrupt mirror).
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from tests.integration.wheels import make_wheel

LAGGING = "dpctl_lib-1.1-py3-none-any.whl"  # the release the fallback has not mirrored yet
EXTRA = ("dpctl-extra", "1.0", [], 0)  # only on the fallbacks
FALLBACK_PATH = "/pypi/web"  # the fallback's root on its host


def make_fallback_root(root: Path, primary_files: Path, host_url: str) -> Path:
    """The ``fallback`` tree: its pages link files absolutely, at ``host_url`` + /pypi/web/files/."""
    web = root / FALLBACK_PATH.strip("/")
    files = web / "files"
    files.mkdir(parents=True)
    for wheel in primary_files.glob("*.whl"):
        if wheel.name != LAGGING:
            shutil.copy(wheel, files / wheel.name)
    make_wheel(files, *EXTRA)
    write_pages(web, lambda wheel: f"{host_url}{FALLBACK_PATH}/files/{wheel.name}")
    return root


def make_bad_root(root: Path, fallback_root: Path) -> Path:
    """The ``bad`` tree: ``fallback``'s pages and hashes, each file with its last byte changed."""
    files = root / "files"
    files.mkdir(parents=True)
    good = fallback_root / FALLBACK_PATH.strip("/") / "files"
    for wheel in good.glob("*.whl"):
        data = bytearray(wheel.read_bytes())
        data[-1] ^= 0xFF
        (files / wheel.name).write_bytes(bytes(data))
    write_pages(root, lambda wheel: f"../../files/{wheel.name}", hashes_from=good)
    return root


def write_pages(web: Path, href, hashes_from: Path | None = None) -> None:
    """PEP 503 pages under ``web``/simple for the wheels in ``web``/files, linked by ``href(wheel)``."""
    projects: dict[str, list[Path]] = {}
    for wheel in sorted((web / "files").glob("*.whl")):
        projects.setdefault(wheel.name.split("-")[0].lower().replace("_", "-"), []).append(wheel)
    for name, wheels in projects.items():
        page = web / "simple" / name
        page.mkdir(parents=True)
        links = "\n".join(
            f'<a href="{href(w)}#sha256={hashlib.sha256(((hashes_from or w.parent) / w.name).read_bytes()).hexdigest()}">{w.name}</a><br>'
            for w in wheels
        )
        (page / "index.html").write_text(f"<!DOCTYPE html><html><body>\n{links}\n</body></html>\n")
    (web / "simple" / "index.html").write_text(
        "<!DOCTYPE html><html><body>\n" + "\n".join(f'<a href="{n}/">{n}</a>' for n in projects) + "\n</body></html>\n"
    )
