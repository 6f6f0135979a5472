"""Keep a cache's disk in bounds: remove the least recently used mirrored files.

The work happens inside the container (templates/prune.py, run with the image's
Python): it sees the volume as devpi does, and never touches private uploads.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from devpictl.cache import Cache
from devpictl.errors import DevpiError
from devpictl.settings import Instance, duration_days, size_bytes

if TYPE_CHECKING:
    from docker import DockerClient


def parse_size(text: str) -> int:
    """Bytes from '20G', '500M', '1.5T' (powers of 1024, as du and Docker count) or a plain number."""
    return size_bytes(text, "--max-size", "20G")


def parse_days(text: str) -> float:
    """Days from '90d', '12h', '2w'."""
    return duration_days(text, "--unused-for", "90d")


@dataclass
class PruneResult:
    name: str
    files: int  # mirrored files before
    bytes: int
    freed_bytes: int
    kept_bytes: int
    dry_run: bool
    removed: list[dict] = field(default_factory=list)  # {"file", "bytes", "unused_days"}

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def prune(engine: DockerClient, instance: Instance, *, max_bytes: int | None, unused_days: float | None, dry_run: bool) -> PruneResult:
    """Remove (or with ``dry_run`` list) mirrored files beyond ``max_bytes`` or unused for ``unused_days``."""
    args = (
        *(["--max-bytes", str(max_bytes)] if max_bytes is not None else []),
        *(["--unused-days", str(unused_days)] if unused_days is not None else []),
        *(["--dry-run"] if dry_run else []),
    )
    with Cache.running(engine, instance) as cache:
        result = cache.run_python("prune.py", args)
    try:
        answer = json.loads(result.last_line) if result.ok else None
    except ValueError:
        answer = None
    if answer is None:
        raise DevpiError(f"pruning in {cache.name} failed ({result.last_line or result.code}): see `devpictl logs`")
    return PruneResult(
        instance.name, answer["files"], answer["bytes"], answer["freed_bytes"], answer["kept_bytes"], answer["dry_run"], answer["removed"]
    )
