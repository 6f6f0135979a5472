"""The front server's request lines (log_format devpictl in templates/nginx.conf.j2), read one way.

`devpictl stats` reads them from the container's log; the cache's metrics
(templates/metrics.py) read them as nginx sends them. This module is copied into
the image beside that script, so it uses the standard library only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

# The health check's user agent. `devpictl logs`, `stats` and the metrics leave its requests
# out, but only those from inside the container (where the engine runs it): any client may
# send the agent, none from outside has a loopback address there (docker-proxy and the
# engine's NAT give the bridge's).
HEALTH_CHECK_AGENT = "devpictl-healthcheck"
INSIDE = ("127.0.0.1", "::1")

# held= came with the page policy: lines of older containers (and of images built before it) have none.
FRONT_LINE = re.compile(
    r'^(?P<time>\S+) front (?P<addr>\S+) "(?P<method>\S+) (?P<path>\S+)[^"]*" (?P<status>\d{3}) (?P<bytes>\d+) '
    r'cache=(?P<cache>\S*) disk=(?P<disk>\S*) (?:held=(?P<held>\S*) )?\S+ s "(?P<agent>.*)"$'
)
SIMPLE = re.compile(r"^/root/pypi/\+simple/([^/]+)/")
# nginx's $upstream_cache_status values that mean the answer came from its own cache.
LOCAL_CACHE = ("HIT", "STALE", "UPDATING", "REVALIDATED")
ANSWERED = (200, 206, 304)

KINDS = ("page", "file", "metadata", "other")
# local: from the volume's disk or the front server's caches; fetched: through devpi
# (from the upstream, for the mirror); failed: an error status; other: anything else
# (a redirect, a request that is no page, file or metadata).
RESULTS = ("local", "fetched", "failed", "other")


@dataclass(frozen=True)
class Request:
    time: str  # ISO 8601, as nginx wrote it
    method: str
    path: str  # unquoted (pip asks for /%2Bf/), without the query
    status: int
    sent: int  # body bytes sent to the client
    kind: str  # one of KINDS
    result: str  # one of RESULTS
    held_back: int = 0  # files the page policy left off this page (X-Devpictl-Held-Back)


def kind_of(path: str) -> str:
    if path.endswith(".metadata"):
        return "metadata"
    if "/+f/" in path:
        return "file"
    if SIMPLE.match(path):
        return "page"
    return "other"


def is_health_check(addr: str, agent: str) -> bool:
    """The engine's health check: its agent, from inside the container."""
    return agent == HEALTH_CHECK_AGENT and addr in INSIDE


def health_check_line(line: str) -> bool:
    """Whether a front server line is the health check's request."""
    match = FRONT_LINE.match(line.rstrip("\n"))
    return match is not None and is_health_check(match["addr"], match["agent"])


def read(line: str) -> Request | None:
    """The request a front server line tells of; None for other lines and for health checks."""
    match = FRONT_LINE.match(line.rstrip("\n"))
    if not match or is_health_check(match["addr"], match["agent"]):
        return None
    path = unquote(match["path"].split("?", 1)[0])
    status = int(match["status"])
    kind = kind_of(path)
    if status >= 400:
        result = "failed"
    elif kind == "other" or status not in ANSWERED:
        result = "other"
    elif match["disk"] == "disk" or match["cache"] in LOCAL_CACHE:
        result = "local"
    else:
        result = "fetched"
    held = match["held"] or ""
    return Request(match["time"], match["method"], path, status, int(match["bytes"]), kind, result, int(held) if held.isdigit() else 0)
