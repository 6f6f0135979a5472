"""What a project needs from the index: pinned packages read from its lock file.

uv.lock, pylock.toml (PEP 751), poetry.lock and pdm.lock name each package's
version and its files (by name or URL) with their hashes. A requirements file is
no lock: `warm` has pip resolve it (see devpictl.warm).
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import canonicalize_name

from devpictl.errors import BadInput
from devpictl.simplepage import file_name


@dataclass(frozen=True)
class Pin:
    """One package at one version, and the files of it the lock allows (empty: any of that version)."""

    name: str  # PEP 503 normalised
    version: str
    filenames: frozenset[str] = frozenset()
    sha256: frozenset[str] = frozenset()


def _hashes(entries: Iterable[dict]) -> frozenset[str]:
    """sha256 digests from lock entries that carry ``hash = "sha256:..."`` or ``hashes = {sha256 = ...}``."""
    found = set()
    for entry in entries:
        value = entry.get("hash")
        if isinstance(value, str) and value.startswith("sha256:"):
            found.add(value.removeprefix("sha256:").lower())
        digest = (entry.get("hashes") or {}).get("sha256")
        if isinstance(digest, str):
            found.add(digest.lower())
    return frozenset(found)


def _names(entries: Iterable[dict]) -> frozenset[str]:
    names = set()
    for entry in entries:
        name = entry.get("file") or entry.get("name") or (file_name(entry["url"]) if entry.get("url") else None)
        if name:
            names.add(name)
    return frozenset(names)


def _pin(package: dict, files: list[dict]) -> Pin:
    return Pin(canonicalize_name(package["name"]), str(package["version"]), _names(files), _hashes(files))


def read_uv_lock(data: dict) -> list[Pin]:
    pins = []
    for package in data.get("package", []):
        if "registry" not in (package.get("source") or {}):  # the project itself, paths, git: not on an index
            continue
        files = list(package.get("wheels", [])) + ([package["sdist"]] if package.get("sdist") else [])
        pins.append(_pin(package, files))
    return pins


def read_pylock(data: dict) -> list[Pin]:
    pins = []
    for package in data.get("packages", []):
        files = list(package.get("wheels", [])) + ([package["sdist"]] if package.get("sdist") else [])
        if not files or "version" not in package:  # a directory, VCS or archive source
            continue
        pins.append(_pin(package, files))
    return pins


def read_poetry_or_pdm_lock(data: dict) -> list[Pin]:
    pins = []
    for package in data.get("package", []):
        source = package.get("source") or {}
        if source.get("type") in ("git", "directory", "file", "url"):
            continue
        if package.get("editable") or "path" in package or "git" in package:  # pdm's local and VCS packages
            continue
        pins.append(_pin(package, list(package.get("files", []))))
    return pins


READERS: dict[str, Callable[[dict], list[Pin]]] = {
    "uv.lock": read_uv_lock,
    "poetry.lock": read_poetry_or_pdm_lock,
    "pdm.lock": read_poetry_or_pdm_lock,
}


def lock_reader(path: Path) -> Callable[[dict], list[Pin]] | None:
    """The reader for a lock file by its name (pylock.toml, pylock.NAME.toml), or None for a requirements file."""
    if path.name in READERS:
        return READERS[path.name]
    if path.name == "pylock.toml" or (path.name.startswith("pylock.") and path.name.endswith(".toml")):
        return read_pylock
    return None


def read_lock(path: Path) -> list[Pin]:
    reader = lock_reader(path)
    if reader is None:
        raise BadInput(f"{path} is not a lock file devpictl reads (uv.lock, pylock.toml, poetry.lock, pdm.lock)")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BadInput(f"cannot read {path} ({exc.strerror}): give a readable lock file") from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise BadInput(f"{path} is not valid TOML ({exc}): give the lock file as its tool wrote it") from None
    try:
        return reader(data)
    except (KeyError, TypeError, AttributeError) as exc:
        raise BadInput(f"{path} does not look like a {path.name} lock ({type(exc).__name__}: {exc}): regenerate it with its tool") from None
