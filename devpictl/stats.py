"""What a cache has been doing: requests, what was served locally and what was fetched, top projects.

Read from the front server's request lines in the container's log (one line a
request, see templates/nginx.conf.j2), so it covers what the engine's bounded log
still holds: `stats` says from when.
"""

from __future__ import annotations

import datetime
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from devpictl import frontlog, layout
from devpictl.page_policy import refused_project
from devpictl.simplepage import name_and_version

if TYPE_CHECKING:
    from devpictl.cache import Cache


@dataclass
class Counts:
    local: int = 0  # served from the cache's disk or the front server's cache
    fetched: int = 0  # went to devpi, which asked the upstream

    @property
    def hit_ratio(self) -> float | None:
        total = self.local + self.fetched
        return self.local / total if total else None

    def as_dict(self) -> dict[str, object]:
        return {"local": self.local, "fetched": self.fetched, "hit_ratio": self.hit_ratio}


@dataclass
class Stats:
    since: str | None  # the first request counted (ISO 8601), None without any
    requests: int = 0
    bytes_served: int = 0
    bytes_fetched: int = 0  # of files that went upstream
    pages: Counts = field(default_factory=Counts)
    files: Counts = field(default_factory=Counts)
    metadata: Counts = field(default_factory=Counts)
    projects: Counter = field(default_factory=Counter)
    hourly: Counter = field(default_factory=Counter)  # "YYYY-MM-DDTHH" -> requests
    hourly_counts: defaultdict = field(default_factory=lambda: defaultdict(Counts))  # hour -> pages, files and metadata
    index_bytes: dict[str, int] = field(default_factory=dict)  # "user/index" -> bytes of its stored files
    # The page policy: page answers that left young files off, the files they left off (summed over the
    # answers), per project; and requests for the files of refused projects (deny, allow-only).
    held_back_pages: int = 0
    held_back_files: int = 0
    held_back_projects: Counter = field(default_factory=Counter)  # project -> page answers with files held back
    refused: int = 0
    refused_projects: Counter = field(default_factory=Counter)

    def as_dict(self, top: int = 10) -> dict[str, object]:
        return {
            "since": self.since,
            "requests": self.requests,
            "bytes_served": self.bytes_served,
            "bytes_fetched": self.bytes_fetched,
            "pages": self.pages.as_dict(),
            "files": self.files.as_dict(),
            "metadata": self.metadata.as_dict(),
            "top_projects": [{"project": name, "requests": n} for name, n in self.projects.most_common(top)],
            "hourly_requests": dict(sorted(self.hourly.items())),
            "hourly_hit_ratio": {hour: counts.hit_ratio for hour, counts in sorted(self.hourly_counts.items())},
            "index_bytes": self.index_bytes,
            "held_back": {
                "pages": self.held_back_pages,
                "files": self.held_back_files,
                "projects": [{"project": name, "pages": n} for name, n in self.held_back_projects.most_common(top)],
            },
            "refused": {
                "requests": self.refused,
                "projects": [{"project": name, "requests": n} for name, n in self.refused_projects.most_common(top)],
            },
        }


@dataclass
class CacheStats:
    """`stats --json`: one cache's name and what it did."""

    name: str
    stats: Stats

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, **self.stats.as_dict()}


@dataclass
class Hour:
    hour: str  # "YYYY-MM-DDTHH", in the cache's clock (UTC)
    requests: int
    hit_ratio: float | None  # of pages, files and metadata; None when none was asked


def timeline(stats: Stats, hours: int = 48) -> list[Hour]:
    """Every hour from the first request counted to the last, quiet hours too: the last ``hours`` of them."""
    if not stats.hourly:
        return []
    first, last = (datetime.datetime.fromisoformat(key + ":00") for key in (min(stats.hourly), max(stats.hourly)))
    first = max(first, last - datetime.timedelta(hours=hours - 1))
    found = []
    while first <= last:
        key = first.strftime("%Y-%m-%dT%H")
        counts = stats.hourly_counts.get(key)
        found.append(Hour(key, stats.hourly.get(key, 0), counts.hit_ratio if counts else None))
        first += datetime.timedelta(hours=1)
    return found


def project_of(path: str) -> str | None:
    page = frontlog.SIMPLE.match(path)
    if page:
        return page[1]
    found = name_and_version(path.rsplit("/", 1)[-1].removesuffix(".metadata"))
    return str(found[0]) if found else None


def count(lines, since: datetime.datetime | None = None) -> Stats:
    """Stats of the front server's request ``lines`` (other lines, and health checks, are skipped)."""
    stats = Stats(since=None)
    for line in lines:
        request = frontlog.read(line)
        if request is None or request.method not in ("GET", "HEAD"):
            continue
        if since is not None and datetime.datetime.fromisoformat(request.time) < since:
            continue
        stats.since = stats.since or request.time
        stats.requests += 1
        hour = request.time[:13]
        stats.hourly[hour] += 1
        stats.bytes_served += request.sent
        if request.held_back:
            stats.held_back_pages += 1
            stats.held_back_files += request.held_back
            stats.held_back_projects[project_of(request.path)] += 1
        refused = refused_project(request.path, request.status)
        if refused is not None:
            stats.refused += 1
            stats.refused_projects[refused] += 1
        if request.result not in ("local", "fetched"):  # an error, a redirect, or no page, file or metadata
            continue
        kind = {"page": stats.pages, "file": stats.files, "metadata": stats.metadata}[request.kind]
        if request.result == "local":
            kind.local += 1
            stats.hourly_counts[hour].local += 1
        else:
            kind.fetched += 1
            stats.hourly_counts[hour].fetched += 1
            if request.kind == "file":
                stats.bytes_fetched += request.sent
        project = project_of(request.path)
        if project:
            stats.projects[project] += 1
    return stats


def index_sizes(cache: Cache) -> dict[str, int]:
    """Bytes of stored files per index ("root/pypi": ...), as du counts them in the volume."""
    sizes = {}
    for path, size in cache.disk_usages(f"{layout.FILES_DIR}/*/*").items():
        parts = path.rstrip("/").split("/")
        if len(parts) >= 2:
            sizes["/".join(parts[-2:])] = size
    return sizes


def cache_stats(cache: Cache, since: datetime.datetime) -> Stats:
    stats = count(cache.log_lines(since=since), since)
    stats.index_bytes = index_sizes(cache)
    return stats
