"""The cache's page policy: upload times (PEP 700), a minimum release age, allow and deny lists, applied to one project's files.

Pure and stdlib-only, so every part of the cache that answers a simple page applies the
same rules: devpictl's devpi plugin (templates/devpictl_mirror_auth.py) and the front's
first-page responder import it from devpi's site-packages, where the image puts it beside
the plugin; devpictl checks the settings it writes with it.

A page is a project name and its files as PEP 691 JSON objects (``filename``, ``url``,
``hashes``, optional ``requires-python``, ``yanked``, ``core-metadata``, ``upload-time``,
``size``). ``PolicyFile(path).get()`` reads the policy devpictl hands into the container (``BrokenPolicy``
when it is unreadable: the cache then refuses pages rather than serve them unguarded);
``apply(policy, project, files, now)`` says what the page keeps; ``json_page`` renders
API 1.1; ``denied_files`` points a refused project's files at ``DENIED_PREFIX``, which
answers 403 with ``denial()``'s reason (installers show a file's HTTP reason, not a page's).
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

API_VERSION = "1.1"  # PEP 700: upload-time, size, versions
JSON_PAGE = "application/vnd.pypi.simple.v1+json"  # PEP 691
DENIED_PREFIX = "/+devpictl/denied/"  # + PROJECT/FILENAME: answered 403 with the reason

# What a policy file holds: Policy.to_dict's keys, and the tests' clock_offset.
FILE_KEYS = ("min_release_age", "allow_newer", "deny", "allow_only", "clock_offset")
DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def normalize(name: str) -> str:
    """PEP 503's normalized project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_duration(text: str) -> int:
    """Seconds in ``7d``, ``12h``, ``30m``, ``90s``, ``2w`` or a bare number of seconds; ValueError otherwise."""
    match = re.fullmatch(r"\s*(\d+)\s*([smhdw]?)\s*", text.lower())
    if not match:
        raise ValueError(f"{text!r} is not a duration such as 7d, 12h, 30m or 0")
    return int(match.group(1)) * DURATION_UNITS[match.group(2) or "s"]


def format_duration(seconds: int) -> str:
    """The shortest exact form ``parse_duration`` reads back: 604800 -> 1w, 86400 -> 1d."""
    for unit, size in sorted(DURATION_UNITS.items(), key=lambda item: -item[1]):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return "0"


def parse_time(value: object) -> float | None:
    """Seconds since the epoch of a PEP 700 ``upload-time`` (ISO 8601, UTC); None when absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


# A file its upstream's page gives no upload time (an HTML-only upstream) takes its Last-Modified:
# HEADs at most this many at once, all within this many seconds. A file that fails or answers
# late stays without a time (kept on every page: its age is unknown) until the page's next fetch.
HEAD_WORKERS = 8
HEAD_SECONDS = 5.0


def http_date_time(value: object) -> str | None:
    """PEP 700's ``upload-time`` of an HTTP date (a file's Last-Modified); None when absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return format_time((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp())


def format_time(seconds: float) -> str:
    """PEP 700's form, as the official index writes it: 2024-01-02T03:04:05.123456Z."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def check_requirement(text: str) -> tuple[str, str | None]:
    """(normalized name, version or None) of ``PROJECT`` or ``PROJECT==VERSION``; ValueError otherwise."""
    match = re.fullmatch(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:==\s*([A-Za-z0-9._+!-]+))?\s*", text)
    if not match:
        raise ValueError(f"{text!r} is not a project name or PROJECT==VERSION")
    return normalize(match.group(1)), match.group(2)


FILE_ENDINGS = (".whl", ".tar.gz", ".tar.bz2", ".tgz", ".zip", ".egg", ".tar")  # in the order file_version tries them


def file_version(project: str, filename: str) -> str | None:
    """The version in a wheel's or sdist's file name (PEP 427, PEP 625 and older sdists); None when it names none."""
    lower = filename.lower()
    ending = next((e for e in FILE_ENDINGS if lower.endswith(e)), None)
    if ending is None:
        return None
    base = filename[: -len(ending)]
    if ending in (".whl", ".egg"):
        parts = base.split("-", 2)
        return parts[1] if len(parts) >= 2 else None
    # An sdist: NAME-VERSION, where NAME may itself hold '-' (older sdists): cut after the project's own name.
    parts = base.split("-")
    for cut in range(1, len(parts)):
        if normalize("-".join(parts[:cut])) == normalize(project):
            return "-".join(parts[cut:])
    return parts[-1] if len(parts) > 1 else None


@dataclass(frozen=True)
class Policy:
    """What the cache leaves off its pages. The defaults leave off nothing."""

    min_release_age: int = 0  # seconds: files uploaded less than this ago are held back
    allow_newer: tuple[str, ...] = ()  # PROJECT or PROJECT==VERSION: exempt from the age
    deny: tuple[str, ...] = ()  # projects refused
    allow_only: tuple[str, ...] | None = None  # when set: only these projects are served
    clock_offset: float = 0.0  # seconds added to the clock: a test's way to let time pass
    _allow_newer: frozenset[tuple[str, str | None]] = field(default=frozenset(), repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_allow_newer", frozenset(check_requirement(item) for item in self.allow_newer))

    @property
    def active(self) -> bool:
        return bool(self.min_release_age or self.deny or self.allow_only is not None)

    def to_dict(self) -> dict[str, object]:
        return {
            "min_release_age": self.min_release_age,
            "allow_newer": list(self.allow_newer),
            "deny": list(self.deny),
            "allow_only": None if self.allow_only is None else list(self.allow_only),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Policy:
        """The policy of ``to_dict``'s form (and the tests' ``clock_offset``); ValueError for anything else, unknown keys too."""
        if not isinstance(data, Mapping):
            raise ValueError(f"{type(data).__name__} is not a policy object")
        unknown = sorted(set(data) - set(FILE_KEYS))
        if unknown:
            raise ValueError(f"unknown key {unknown[0]!r}")

        def names(value: object) -> tuple[str, ...]:
            if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
                raise ValueError(f"{value!r} is not a list of names")
            return tuple(value)

        age = data.get("min_release_age", 0)
        if isinstance(age, bool) or not isinstance(age, int) or age < 0:
            raise ValueError(f"min_release_age {age!r} is not a number of seconds")
        only = data.get("allow_only")
        offset = data.get("clock_offset", 0.0)
        if isinstance(offset, bool) or not isinstance(offset, int | float):
            raise ValueError(f"clock_offset {offset!r} is not a number of seconds")
        return cls(
            min_release_age=age,
            allow_newer=names(data.get("allow_newer", [])),
            deny=tuple(normalize(name) for name in names(data.get("deny", []))),
            allow_only=None if only is None else tuple(normalize(name) for name in names(only)),
            clock_offset=float(offset),
        )

    def now(self) -> float:
        return time.time() + self.clock_offset

    def denial(self, project: str) -> str | None:
        """The one-line reason the cache refuses ``project``; None when it serves it."""
        name = normalize(project)
        if name in self.deny:
            return f"devpictl policy: project {name} is denied on this cache (devpictl set-policy --no-deny {name} lifts it)"
        if self.allow_only is not None and name not in self.allow_only:
            return f"devpictl policy: project {name} is not on this cache's allow-only list (ask its admin to add it)"
        return None

    def exempt(self, project: str, version: str | None) -> bool:
        name = normalize(project)
        return (name, None) in self._allow_newer or (version is not None and (name, version) in self._allow_newer)


def describe(policy: Policy) -> str:
    """One line for `status`, `up`, `set-policy` and the page at /."""
    if not policy.active and not policy.allow_newer:
        return "none (every file, every project)"
    parts = []
    if policy.min_release_age:
        parts.append(f"files younger than {format_duration(policy.min_release_age)} held back")
        if policy.allow_newer:
            parts.append("except " + ", ".join(policy.allow_newer))
    if policy.deny:
        parts.append("denied: " + ", ".join(policy.deny))
    if policy.allow_only is not None:
        parts.append(f"only {len(policy.allow_only)} projects allowed")
    return "; ".join(parts)


@dataclass(frozen=True)
class Applied:
    """What ``apply`` made of a page."""

    files: list[dict]  # the files the page keeps
    held_back: list[str]  # file names left off for their age
    next_release: float | None  # seconds until the first held-back file comes of age (how long the page may be kept)


def apply(
    policy: Policy, project: str, files: Sequence[Mapping[str, object]], now: float | None = None, *, private: Collection[str] = ()
) -> Applied:
    """The files of ``project``'s page that ``policy`` keeps. Private uploads (file names in ``private``) are never held back by age;

    a file without an upload time is kept (the cache cannot tell its age: warm logs show it).
    """
    when = policy.now() if now is None else now
    kept: list[dict] = []
    held: list[str] = []
    soonest: float | None = None
    for item in files:
        filename = str(item.get("filename", ""))
        uploaded = parse_time(item.get("upload-time")) if policy.min_release_age and filename not in private else None
        young = uploaded is not None and when - uploaded < policy.min_release_age
        if young and not policy.exempt(project, file_version(project, filename)):
            held.append(filename)
            wait = uploaded + policy.min_release_age - when  # type: ignore[operator]
            soonest = wait if soonest is None else min(soonest, wait)
            continue
        kept.append(dict(item))
    return Applied(kept, held, soonest)


def upstream_files(page: Mapping[str, object]) -> dict[str, list]:
    """{file name: [upload-time, size]} of an upstream's PEP 691 page, parsed (either may be None), as the cache keeps them with the page."""
    found: dict[str, list] = {}
    files = page.get("files", [])
    for item in files if isinstance(files, list) else []:
        name = str(item.get("url", "")).split("#", 1)[0].split("?", 1)[0].rsplit("/", 1)[-1] or item.get("filename")
        size = item.get("size")
        found[name] = [item.get("upload-time"), size if isinstance(size, int) else None]
    return found


def versions(project: str, files: Iterable[Mapping[str, object]]) -> list[str]:
    """PEP 700's ``versions``: every version the files name, in the order first seen."""
    seen: dict[str, None] = {}
    for item in files:
        version = file_version(project, str(item.get("filename", "")))
        if version is not None:
            seen.setdefault(version, None)
    return list(seen)


def json_page(project: str, files: Sequence[Mapping[str, object]], all_versions: Sequence[str] | None = None) -> bytes:
    """A PEP 691 project page of API 1.1 (``versions``: those of ``files`` unless given)."""
    page = {
        "meta": {"api-version": API_VERSION},
        "name": normalize(project),
        "versions": list(all_versions) if all_versions is not None else versions(project, files),
        "files": list(files),
    }
    return json.dumps(page, separators=(",", ":")).encode()


def denied_files(project: str, files: Sequence[Mapping[str, object]]) -> list[dict]:
    """A refused project's files pointed at ``DENIED_PREFIX``, where each answers 403 with the reason, without core metadata."""
    name = normalize(project)
    return [
        {key: value for key, value in item.items() if key not in ("core-metadata", "dist-info-metadata")}
        | {"url": f"{DENIED_PREFIX}{name}/{item.get('filename', '')}"}
        for item in files
    ]


def refused_project(path: str, status: int) -> str | None:
    """The project whose file a front server request at ``path`` was refused by the policy (403 at ``DENIED_PREFIX``); None for any other request."""
    if status != 403 or not path.startswith(DENIED_PREFIX):
        return None
    return path[len(DENIED_PREFIX) :].split("/", 1)[0]


class BrokenPolicy(ValueError):
    """The policy file is there but unreadable. The cache fails closed: a guard that silently turned off would serve what it should hold back."""


def broken_reason(problem: str) -> str:
    """The one-line reason every page answers while the policy file is unreadable (installers show it)."""
    return f"devpictl policy: this cache's page policy file is unreadable ({problem}): pages are refused until `devpictl set-policy` writes it again"


class PolicyFile:
    """The policy in ``path``, read again when the file changes. No file: the default policy; a broken one: ``get`` raises BrokenPolicy."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._stamp: tuple[float, int] | None = None
        self._policy = Policy()
        self._problem: str | None = None

    def get(self) -> Policy:
        try:
            info = os.stat(self.path)
        except FileNotFoundError:
            self._stamp, self._policy, self._problem = None, Policy(), None
            return self._policy
        except OSError as exc:
            raise BrokenPolicy(f"{self.path}: {exc.strerror}") from None
        stamp = (info.st_mtime, info.st_size)
        if stamp != self._stamp:
            self._policy, self._problem = Policy(), None
            try:
                with open(self.path, encoding="utf-8") as fh:
                    self._policy = Policy.from_dict(json.load(fh))
            except OSError as exc:
                self._problem = f"{self.path}: {exc.strerror}"
            except (ValueError, TypeError) as exc:  # not JSON, not a policy object, or a bad value
                self._problem = f"{self.path}: {exc}"
            self._stamp = stamp
        if self._problem is not None:
            raise BrokenPolicy(self._problem)
        return self._policy
