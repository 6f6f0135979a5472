"""Remove the least recently used mirrored files of a devpictl cache (runs inside the container).

    prune.py [--max-bytes N] [--unused-days D] [--dry-run]

Only the mirror's files ({{ mirror_files }}) are ever removed,
never a file uploaded to a private index. devpi fetches a removed mirror file
from its upstream again on the next request (it serves what is not on disk
from the upstream). "Last used" is the later of the file's access and
modification times: nginx reads the file on every download, and the volume's
relatime updates the access time at least once a day. The files devpi's last
write transaction stored stay too: at every start devpi checks that they exist
(its crash recovery), and refuses to start, or to export, without them. Prints
one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import time

MIRROR_FILES = "{{ mirror_files }}"
SERVER_DIR = "{{ server_dir }}"


def last_stored(server_dir: str) -> list[str]:
    """Paths devpi's last write transaction renamed into place or removed (its crash recovery looks for them); [] without a database."""
    database = os.path.join(server_dir, ".sqlite")
    if not os.path.exists(database):
        return []
    import sqlite3

    from devpi_server.fileutil import loads  # devpi's own changelog format: prune runs with devpi's Python

    with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as connection:
        row = connection.execute("SELECT data FROM changelog ORDER BY serial DESC LIMIT 1").fetchone()
    if row is None:
        return []
    _changes, renames = loads(bytes(row[0]))
    return [os.path.join(server_dir, rename) for rename in renames or ()]


def mirrored_files(root: str) -> list[tuple[float, int, str]]:
    """(last used, size, path) of every stored file under ``root``."""
    found = []
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            try:
                info = os.stat(path)
            except FileNotFoundError:  # removed meanwhile
                continue
            if name.startswith(".") or name.endswith("-tmp"):  # devpi's files being written
                continue
            found.append((max(info.st_atime, info.st_mtime), info.st_size, path))
    return found


def choose(
    files: list[tuple[float, int, str]], max_bytes: int | None, unused_days: float | None, now: float, keep: frozenset[str] = frozenset()
) -> list[tuple[float, int, str]]:
    """The files to remove: unused for longer than ``unused_days``, then the least recently used until the rest fit ``max_bytes``."""
    oldest_first = sorted(files)
    chosen = []
    kept = sum(size for _, size, _ in files)
    for used, size, path in oldest_first:
        if path in keep:
            continue
        too_old = unused_days is not None and now - used > unused_days * 86400
        too_big = max_bytes is not None and kept > max_bytes
        if not (too_old or too_big):
            continue
        chosen.append((used, size, path))
        kept -= size
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--max-bytes", type=int)
    parser.add_argument("--unused-days", type=float)
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("--root", default=MIRROR_FILES)
    parser.add_argument("--server-dir", default=SERVER_DIR)
    args = parser.parse_args()
    now = time.time()
    files = mirrored_files(args.root)
    stored_last = last_stored(args.server_dir)
    # A rename's name is the file's own, or the file's with devpi's temporary suffix.
    keep = frozenset(path for _, _, path in files if any(rename.startswith(path) for rename in stored_last))
    chosen = choose(files, args.max_bytes, args.unused_days, now, keep)
    removed = []
    freed = 0
    for used, size, path in chosen:
        if not args.dry_run:
            try:
                os.remove(path)
            except FileNotFoundError:
                continue
        removed.append({"file": os.path.relpath(path, args.root), "bytes": size, "unused_days": round((now - used) / 86400, 1)})
        freed += size
    total = sum(size for _, size, _ in files)
    print(
        json.dumps(
            {
                "files": len(files),
                "bytes": total,
                "removed": removed,
                "freed_bytes": freed,
                "kept_bytes": total - freed,
                "dry_run": args.dry_run,
            }
        )
    )


if __name__ == "__main__":
    main()
