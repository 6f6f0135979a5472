"""How far a mirror is behind a reference index (the official one): releases it lacks, and since when.

Projects that release almost every day stand for the whole index. The reference's
JSON simple API (PEP 691) gives each file's upload time (PEP 700); a mirror's page gives
the versions it lists. A mirror is behind by the reference's releases newer than the
newest it lists, for as long as the oldest of those has been out.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from packaging.utils import canonicalize_name
from packaging.version import Version

from devpictl.mirrors import LAG_PROJECTS
from devpictl.simplepage import name_and_version
from devpictl.simplepage import parse as parse_page

JSON_ACCEPT = "application/vnd.pypi.simple.v1+json, text/html;q=0.1"
HTML_ACCEPT = "text/html"


@dataclass(frozen=True)
class Lag:
    """How far behind one mirror is: ``releases`` it lacks, the first of them out for ``hours``."""

    releases: int
    hours: float | None  # None: the reference gives no upload times, or nothing is missing
    missing: tuple[str, ...] = ()  # "project version", oldest first

    def as_dict(self) -> dict[str, object]:
        return {
            "releases_behind": self.releases,
            "hours_behind": None if self.hours is None else round(self.hours, 1),
            "missing": list(self.missing),
        }

    def describe(self) -> str:
        if not self.releases:
            return "up to date"
        since = f", {self.hours:.0f} h" if self.hours is not None else ""
        return f"{self.releases} release{'s' if self.releases > 1 else ''} behind{since}"


UP_TO_DATE = Lag(0, 0.0)


def reference_releases(text: str, content_type: str, page_url: str) -> dict[Version, datetime | None]:
    """Each version a reference page lists, with its first file's upload time (None when the page gives none)."""
    releases: dict[Version, datetime | None] = {}
    if content_type.split(";")[0].strip().endswith("json"):
        for item in json.loads(text).get("files", []):
            found = name_and_version(str(item.get("filename", "")))
            if found is None:
                continue
            uploaded = parse_time(item.get("upload-time"))
            have = releases.get(found[1])
            releases[found[1]] = uploaded if have is None or (uploaded is not None and uploaded < have) else have
        return releases
    for version in listed_versions(text, page_url):
        releases.setdefault(version, None)
    return releases


def listed_versions(html: str, page_url: str) -> set[Version]:
    """The versions a simple page (HTML) lists files of."""
    return {found[1] for link in parse_page(html, page_url) if (found := name_and_version(link.filename))}


def parse_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def lag(project: str, reference: Mapping[Version, datetime | None], mirror: Iterable[Version], now: datetime) -> Lag:
    """How far ``mirror`` (the versions it lists) is behind ``reference`` for one project."""
    have = set(mirror)
    newest = max(have, default=None)
    behind = sorted(v for v in reference if v not in have and (newest is None or v > newest))
    if not behind:
        return UP_TO_DATE
    times = [when for v in behind if (when := reference[v]) is not None]
    hours = (now - min(times)).total_seconds() / 3600 if times else None
    return Lag(len(behind), max(hours, 0.0) if hours is not None else None, tuple(f"{project} {v}" for v in behind))


def worst(lags: Sequence[Lag]) -> Lag:
    """The lag of a mirror over several projects: the most releases, the longest time."""
    behind = [lag for lag in lags if lag.releases]
    if not behind:
        return UP_TO_DATE
    hours = [lag.hours for lag in behind if lag.hours is not None]
    return Lag(max(lag.releases for lag in behind), max(hours) if hours else None, tuple(m for lag in behind for m in lag.missing))


@dataclass
class Freshness:
    """One mirror's lag, or why it was not measured."""

    lag: Lag | None
    problem: str = ""

    def as_dict(self) -> dict[str, object]:
        """The lag keys of a mirror in `mirrors test --json` and `status --lag --json`."""
        if self.lag is None:
            return {"releases_behind": None, "hours_behind": None, "missing": [], "lag_problem": self.problem}
        return {**self.lag.as_dict(), "lag_problem": self.problem or None}


def measure(
    mirrors: Sequence[str],
    reference: str,
    *,
    projects: Sequence[str] = LAG_PROJECTS,
    timeout: float = 10.0,
    now: datetime | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> list[Freshness]:
    """The lag of each mirror URL behind ``reference``, all fetched at once; in the order given."""
    return asyncio.run(_measure(mirrors, reference, projects, timeout, now, transport))


async def _measure(mirrors, reference, projects, timeout, now, transport) -> list[Freshness]:
    async with httpx.AsyncClient(transport=transport, trust_env=True, follow_redirects=True, timeout=httpx.Timeout(timeout)) as client:
        try:
            references = await asyncio.gather(*(_reference(client, reference, p) for p in projects))
        except (httpx.HTTPError, ValueError) as exc:
            problem = f"the reference index did not answer ({type(exc).__name__})"
            return [Freshness(None, problem) for _ in mirrors]
        moment = now or datetime.now(UTC)
        return list(await asyncio.gather(*(_one(client, url, projects, references, moment) for url in mirrors)))


async def _reference(client: httpx.AsyncClient, base: str, project: str) -> dict[Version, datetime | None]:
    url = f"{base.rstrip('/')}/{canonicalize_name(project)}/"
    response = await client.get(url, headers={"Accept": JSON_ACCEPT})
    response.raise_for_status()
    return reference_releases(response.text, response.headers.get("content-type", ""), str(response.url))


async def _one(client, base: str, projects, references, now) -> Freshness:
    lags = []
    for project, reference in zip(projects, references, strict=True):
        url = f"{base.rstrip('/')}/{canonicalize_name(project)}/"
        try:
            response = await client.get(url, headers={"Accept": HTML_ACCEPT})
        except httpx.HTTPError as exc:
            return Freshness(None, f"{project}: {type(exc).__name__}")
        if response.status_code != 200:
            return Freshness(None, f"{project}: HTTP {response.status_code}")
        versions = listed_versions(response.text, str(response.url))
        if not versions:
            return Freshness(None, f"its page for {project!r} lists no files")
        lags.append(lag(project, reference, versions, now))
    return Freshness(worst(lags))
