"""Installer configuration for a cache: what to set, and editing pip's file in place."""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path
from urllib.parse import urlsplit

BACKUP_SUFFIX = ".devpictl-backup"


def pip_settings(index_url: str) -> dict[str, str]:
    """The [global] keys that point pip at ``index_url``."""
    settings = {"index-url": index_url}
    parts = urlsplit(index_url)
    if parts.scheme == "http" and parts.hostname:
        # pip refuses plain http unless the host is trusted (loopback aside).
        settings["trusted-host"] = parts.hostname
    return settings


def render_pip_conf(settings: dict[str, str]) -> str:
    return "[global]\n" + "".join(f"{key} = {value}\n" for key, value in settings.items())


def pip_user_config_file(environ: dict[str, str] | None = None) -> Path:
    """The per-user file pip reads (pip's own rule: XDG on Linux, platform dirs elsewhere)."""
    env = os.environ if environ is None else environ
    if sys.platform.startswith("linux") or sys.platform.startswith("freebsd"):
        base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME", str(Path.home()))) / ".config")
        return Path(base) / "pip" / "pip.conf"
    import platformdirs

    name = "pip.ini" if sys.platform == "win32" else "pip.conf"
    return Path(platformdirs.user_config_dir("pip", appauthor=False, roaming=True)) / name


SECTION = re.compile(r"^\s*\[([^\]]+)\]\s*$")
KEY = re.compile(r"^\s*([A-Za-z0-9_.-]+)\s*[=:]")
COMMENT = re.compile(r"^\s*[#;]")


def set_ini_keys(text: str, section: str, values: dict[str, str]) -> str:
    """Set ``values`` in ``section`` of an INI text, keeping every other line as it was.

    As in configparser, indented lines after a key continue its value (pip allows
    a multi-line trusted-host); pip treats ``index-url`` and ``index_url`` as one key.
    """
    def norm(key: str) -> str:
        return key.lower().replace("_", "-")

    wanted = {norm(k): (k, v) for k, v in values.items()}
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    out: list[str] = []
    current = None
    section_end = None  # index in out after the last line of the target section
    done: set[str] = set()
    key_open = False  # the previous line belongs to a key's value
    replacing = False  # ... and that key is one being replaced
    for line in lines:
        header = SECTION.match(line)
        if header:
            key_open = replacing = False
            current = header.group(1).strip()
            out.append(line)
            if current == section:
                section_end = len(out)
            continue
        if key_open and line[:1] in (" ", "\t") and line.strip() and not COMMENT.match(line):
            if not replacing:
                out.append(line)
                if current == section:
                    section_end = len(out)
            continue
        key = KEY.match(line)
        key_open = key is not None
        replacing = False
        if current == section and key and norm(key.group(1)) in wanted:
            name = norm(key.group(1))
            replacing = True
            if name in done:
                continue  # a second spelling of the same key: drop it
            done.add(name)
            original, value = wanted[name]
            out.append(f"{original} = {value}\n")
            section_end = len(out)
            continue
        out.append(line)
        if current == section and line.strip():
            section_end = len(out)
    missing = [f"{wanted[n][0]} = {wanted[n][1]}\n" for n in wanted if n not in done]
    if section_end is None:
        if out and out[-1].strip():
            out.append("\n")
        out.append(f"[{section}]\n")
        out.extend(missing)
    else:
        out[section_end:section_end] = missing
    return "".join(out)


def write_with_backup(path: Path, new_text: str) -> Path | None:
    """Write ``new_text`` to ``path``; the first time, keep the old file beside it."""
    backup = path.with_name(path.name + BACKUP_SUFFIX)
    made_backup = None
    if path.exists() and not backup.exists():
        shutil.copy2(path, backup)
        made_backup = backup
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".devpictl-tmp")
    tmp.write_text(new_text)
    if path.exists():
        shutil.copymode(path, tmp)  # a 0600 pip.conf may hold credentials
    os.replace(tmp, path)
    return made_backup


def write_pip_config(path: Path, index_url: str) -> Path | None:
    old = path.read_text() if path.exists() else ""
    return write_with_backup(path, set_ini_keys(old, "global", pip_settings(index_url)))
