"""What a cache has been doing: requests, what was served locally and what was fetched, top projects.

Read from the front server's request lines in the container's log (one line a
request, see templates/nginx.conf.j2), so it covers what the engine's bounded log
still holds: `stats` says from when.
"""

from __future__ import annotations

import datetime
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import unquote

from devpictl import container as ctr
from devpictl.image import HEALTH_CHECK_AGENT
from devpictl.simplepage import name_and_version

# The front server's log_format devpictl (templates/nginx.conf.j2).
FRONT_LINE = re.compile(
    r'^(?P<time>\S+) front \S+ "(?P<method>\S+) (?P<path>\S+)[^"]*" (?P<status>\d{3}) (?P<bytes>\d+) '
    r'cache=(?P<cache>\S*) disk=(?P<disk>\S*) \S+ s "(?P<agent>.*)"$'
)

if TYPE_CHECKING:
    from docker.models.containers import Container
SIMPLE = re.compile(r"^/root/pypi/\+simple/([^/]+)/")
LOCAL_CACHE = ("HIT", "STALE", "UPDATING", "REVALIDATED")


@dataclass
class Counts:
    local: int = 0  # served from the cache's disk or the front server's cache
    fetched: int = 0  # went to devpi, which asked the upstream

    @property
    def hit_ratio(self) -> float | None:
        total = self.local + self.fetched
        return self.local / total if total else None

    def as_dict(self) -> dict:
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
    index_bytes: dict[str, int] = field(default_factory=dict)  # "user/index" -> bytes of its stored files

    def as_dict(self, top: int = 10) -> dict:
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
            "index_bytes": self.index_bytes,
        }


def project_of(path: str) -> str | None:
    page = SIMPLE.match(path)
    if page:
        return page[1]
    found = name_and_version(path.rsplit("/", 1)[-1].removesuffix(".metadata"))
    return str(found[0]) if found else None


def count(lines, since: datetime.datetime | None = None) -> Stats:
    """Stats of the front server's request ``lines`` (other lines, and health checks, are skipped)."""
    stats = Stats(since=None)
    for line in lines:
        match = FRONT_LINE.match(line.rstrip("\n"))
        if not match or match["agent"] == HEALTH_CHECK_AGENT or match["method"] not in ("GET", "HEAD"):
            continue
        when = datetime.datetime.fromisoformat(match["time"])
        if since is not None and when < since:
            continue
        stats.since = stats.since or match["time"]
        stats.requests += 1
        stats.hourly[match["time"][:13]] += 1
        sent = int(match["bytes"])
        stats.bytes_served += sent
        path = unquote(match["path"].split("?", 1)[0])  # pip asks for /%2Bf/
        local = match["disk"] == "disk" or match["cache"] in LOCAL_CACHE
        if match["status"] not in ("200", "206", "304"):
            continue
        if path.endswith(".metadata"):
            kind = stats.metadata
        elif "/+f/" in path:
            kind = stats.files
            if not local:
                stats.bytes_fetched += sent
        elif SIMPLE.match(path):
            kind = stats.pages
        else:
            continue
        if local:
            kind.local += 1
        else:
            kind.fetched += 1
        project = project_of(path)
        if project:
            stats.projects[project] += 1
    return stats


def index_sizes(container: Container) -> dict[str, int]:
    """Bytes of stored files per index ("root/pypi": ...), as du counts them in the volume."""
    code, output = ctr.exec_output(container, ["sh", "-c", "du -sb /data/server/+files/*/* 2>/dev/null || true"])
    sizes = {}
    for line in output.splitlines():
        size, _, path = line.partition("\t")
        parts = path.rstrip("/").split("/")
        if size.isdigit() and len(parts) >= 2:
            sizes["/".join(parts[-2:])] = int(size)
    return sizes


def cache_stats(container: Container, since: datetime.datetime) -> Stats:
    stats = count(ctr.log_lines(container, since=since), since)
    stats.index_bytes = index_sizes(container)
    return stats
