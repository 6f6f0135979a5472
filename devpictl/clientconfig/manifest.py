"""Planned changes to installers' files, the manifest of what devpictl changed, and undo."""

from __future__ import annotations

import datetime
import difflib
import hashlib
import json
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

from devpictl.clientconfig.base import Installer, real_path
from devpictl.errors import BadInput, Conflict, DevpictlError
from devpictl.files import default_mode, write_atomic


@dataclass
class Change:
    """What writing one tool's file would do; nothing is touched until ``apply_change``."""

    tool: str
    path: Path
    old: bytes | None  # None: the file does not exist
    new: bytes
    scope: str | None = None
    added: dict = field(default_factory=dict)  # insecure settings devpictl added, to take back later
    notes: list[str] = field(default_factory=list)
    legacy_backup: Path | None = None  # where an older devpictl may have kept the original
    secret: bool = False  # it holds a password (.pypirc): written 0600 whatever the file's mode was

    @property
    def changed(self) -> bool:
        return self.old != self.new

    def diff(self) -> str:
        return unified_diff(self.path, self.old, self.new)


def unified_diff(path: Path, old: bytes | None, new: bytes | None) -> str:
    def lines(data: bytes | None) -> list[str]:
        return [] if data is None else data.decode("utf-8", "replace").splitlines(keepends=True)

    diff = difflib.unified_diff(
        lines(old),
        lines(new),
        fromfile=str(path) if old is not None else "/dev/null",
        tofile=str(path) if new is not None else "/dev/null",
    )
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in diff)


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise BadInput(f"{path} is a directory, not a config file: move it away, then run devpictl again") from None
    except OSError as exc:
        raise DevpictlError(f"cannot read {path} ({exc.strerror}): fix its permissions, or run as its owner") from None


def _decode(data: bytes | None, where: Path) -> str:
    if data is None:
        return ""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise BadInput(f"{where} is not UTF-8 text: fix it, then run devpictl again") from None


def plan_change(
    installer: Installer,
    path: Path,
    index_url: str,
    *,
    scope: str | None = None,
    force: bool = False,
    manifest: Manifest | None = None,
    environ: dict[str, str] | None = None,
) -> Change:
    """What pointing ``installer``'s file ``path`` at ``index_url`` would change (raises, changing nothing, if it can't)."""
    env = os.environ if environ is None else environ
    path = real_path(path)
    old = _read(path)
    text = _decode(old, path)
    entry = manifest.get(path) if manifest is not None else None
    added = dict(entry.get("added", {})) if entry else {}
    # Edit LF text, and give back the file's own line endings (CRLF stays CRLF).
    crlf = "\r\n" in text
    new_text, added = installer.edit(text.replace("\r\n", "\n") if crlf else text, index_url, added=added, force=force, where=str(path))
    if crlf:
        new_text = new_text.replace("\n", "\r\n")
    suffix = installer.legacy_backup_suffix
    change = Change(
        installer.name,
        path,
        old,
        new_text.encode("utf-8"),
        scope,
        added,
        legacy_backup=path.with_name(path.name + suffix) if suffix else None,
    )
    change.notes = [f"{name} is set in your environment and wins over {path}" for name in installer.overriding_env if env.get(name)]
    change.notes += installer.notes(path, new_text, env)
    return change


def _sha256(data: bytes | None) -> str | None:
    return None if data is None else hashlib.sha256(data).hexdigest()


def _mode(path: Path) -> int | None:
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return None


class Manifest:
    """The files devpictl changed, each with its bytes from before devpictl's first write.

    It lives in devpictl's data dir (``clientconfig/manifest.json``, and the old bytes in
    ``clientconfig/backups/``), so a later write never replaces the original, and a file
    that did not exist is remembered as absent.
    """

    def __init__(self, root: Path | None = None):
        if root is None:
            from devpictl.settings import data_dir

            root = data_dir() / "clientconfig"
        self.root = Path(root)
        self.file = self.root / "manifest.json"
        self.backups = self.root / "backups"

    def entries(self) -> dict[str, dict]:
        try:
            text = self.file.read_text("utf-8")
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise DevpictlError(f"cannot read {self.file} ({exc.strerror}): fix its permissions") from None
        try:
            data = json.loads(text)
            return dict(data["files"])
        except (ValueError, KeyError, TypeError):
            raise BadInput(f"{self.file} is damaged: fix it, or move it away to forget what devpictl changed") from None

    def get(self, path: Path) -> dict | None:
        return self.entries().get(str(path))

    def _save(self, entries: dict[str, dict]) -> None:
        data = json.dumps({"version": 1, "files": entries}, indent=2, sort_keys=True) + "\n"
        try:
            self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
            write_atomic(self.file, data.encode(), 0o600)
        except OSError as exc:
            raise DevpictlError(
                f"cannot write {self.file} ({exc.strerror}): fix the permissions of devpictl's data dir (DEVPICTL_DATA_DIR)"
            ) from None

    def backup_path(self, entry: dict) -> Path | None:
        return self.backups / entry["backup"] if entry.get("backup") else None

    def original(self, entry: dict) -> bytes | None:
        backup = self.backup_path(entry)
        if backup is None:
            return None
        try:
            return backup.read_bytes()
        except OSError as exc:
            raise DevpictlError(
                f"the saved original {backup} cannot be read ({exc.strerror}): devpictl cannot restore {entry['path']}"
            ) from None

    def record(self, change: Change) -> tuple[dict, bool]:
        """Remember ``change``'s file before it is written: the original only the first time."""
        entries = self.entries()
        key = str(change.path)
        entry = entries.get(key)
        first = entry is None
        if entry is None:
            original, legacy = change.old, change.legacy_backup
            if legacy is not None and legacy.is_file():
                original = legacy.read_bytes()  # an older devpictl already saved the real original there
            entry = {
                "path": key,
                "tool": change.tool,
                "scope": change.scope,
                "backup": None,
                "mode": _mode(change.path),
                "first_write": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            }
            if original is not None:
                name = f"{hashlib.sha256(key.encode()).hexdigest()[:16]}-{change.path.name}"
                try:
                    self.backups.mkdir(parents=True, exist_ok=True, mode=0o700)
                    write_atomic(self.backups / name, original, 0o600)  # it may hold index credentials
                except OSError as exc:
                    raise DevpictlError(
                        f"cannot save the original of {change.path} in {self.backups} ({exc.strerror}): fix the permissions of devpictl's data dir"
                    ) from None
                entry["backup"] = name
        entry = {**entry, "added": change.added, "written_sha256": _sha256(change.new)}
        entries[key] = entry
        self._save(entries)
        return entry, first

    def forget(self, path: Path) -> None:
        entries = self.entries()
        entry = entries.pop(str(path), None)
        if entry is None:
            return
        self._save(entries)
        backup = self.backup_path(entry)
        if backup is not None:
            backup.unlink(missing_ok=True)


@dataclass
class Applied:
    change: Change
    first: bool  # this write saved the original
    backup: Path | None  # where the original is kept (None: the file did not exist)


CREDENTIALS_IN_URL = re.compile(rb"https?://[^/\s@\"']+@")


def apply_change(change: Change, manifest: Manifest) -> Applied:
    """Write ``change`` atomically, keeping the file's mode, after recording its original."""
    before = manifest.get(change.path)
    entry, first = manifest.record(change)
    mode = _mode(change.path)
    if change.secret or CREDENTIALS_IN_URL.search(change.new):
        # An index URL with a user and password: no one else may read the file.
        mode = (default_mode() if mode is None else mode) & ~0o077
    try:
        write_atomic(change.path, change.new, mode)
    except OSError as exc:
        if first:
            manifest.forget(change.path)
        elif before is not None:
            entries = manifest.entries()
            entries[str(change.path)] = before
            manifest._save(entries)
        raise DevpictlError(f"cannot write {change.path} ({exc.strerror}): run as a user who may change it{_scope_hint(change)}") from None
    return Applied(change, first, manifest.backup_path(entry))


def _scope_hint(change: Change) -> str:
    return ", or use --scope user" if change.scope in ("global", "site") else ""


@dataclass
class Restore:
    """Putting one file back as it was before devpictl's first write."""

    tool: str
    path: Path
    current: bytes | None
    original: bytes | None  # None: the file did not exist, so it is deleted
    mode: int | None
    entry: dict

    def diff(self) -> str:
        return unified_diff(self.path, self.current, self.original)


@dataclass
class Undone:
    """`pip-config --undo --json`: the files put back (or, with ``dry_run``, that would be, with their diffs)."""

    dry_run: bool
    restores: list[Restore]

    def as_dict(self) -> dict[str, object]:
        return {
            "dry_run": self.dry_run,
            "undone": [
                {"tool": r.tool, "file": str(r.path), "deleted": r.original is None, **({"diff": r.diff()} if self.dry_run else {})}
                for r in self.restores
            ],
        }


def plan_undo(
    manifest: Manifest, tools: tuple[str, ...] | None = None, paths: list[Path] | None = None, force: bool = False
) -> list[Restore]:
    """What ``--undo`` would restore (nothing: an empty list); refuses (changing nothing) if a
    file changed since devpictl wrote it and ``force`` is off."""
    wanted = {str(real_path(p)) for p in paths} if paths else None
    restores = []
    for key, entry in sorted(manifest.entries().items()):
        if tools and entry.get("tool") not in tools:
            continue
        if wanted is not None and key not in wanted:
            continue
        path = Path(key)
        current = _read(path)
        restores.append(Restore(entry.get("tool", "?"), path, current, manifest.original(entry), entry.get("mode"), entry))
    if not force:
        for restore in restores:
            if _sha256(restore.current) != restore.entry.get("written_sha256"):
                raise Conflict(
                    f"{restore.path} changed since devpictl wrote it, and undo would lose that change: "
                    "look with --undo --dry-run, then add --force to restore it anyway"
                )
    return restores


def apply_restore(restore: Restore, manifest: Manifest) -> None:
    """Put the exact original bytes and mode back (or delete a file devpictl created), then forget it."""
    try:
        if restore.original is None:
            restore.path.unlink(missing_ok=True)
        else:
            write_atomic(restore.path, restore.original, restore.mode)
    except OSError as exc:
        raise DevpictlError(f"cannot restore {restore.path} ({exc.strerror}): run as a user who may change it") from None
    manifest.forget(restore.path)
