"""Fill a cache with what a project needs, before a CI wave or before going offline.

Lock files name their files; a requirements file is resolved by pip itself,
through the cache. Each file is then fetched through the cache (which stores it),
many at a time, its sha256 checked against the page and the lock; a file the
cache already holds on disk is skipped, so a second run resumes the first.
"""

from __future__ import annotations

import hashlib
import json
import ssl
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

import httpx
from packaging import tags
from packaging.utils import (
    canonicalize_name,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from devpictl import simplepage
from devpictl.devpi import INSTALLER_AGENT
from devpictl.errors import BadInput
from devpictl.lockfiles import Pin, lock_reader, read_lock
from devpictl.page_policy import DENIED_PREFIX
from devpictl.pip import pip_command, run_pip

STORED, PRESENT, FAILED = "stored", "present", "failed"
DEFAULT_JOBS = 8
# nginx's header on a file it served from the cache's disk (see templates/nginx.conf.j2).
SERVED_FROM = "X-Devpictl-Served-From"


# --- what fits the targets -----------------------------------------------------------------


@dataclass(frozen=True)
class Targets:
    """The wheel tags the cache is filled for, and how to tell pip the same."""

    tags: frozenset[tags.Tag]
    pythons: tuple[str, ...] = ()  # X.Y; empty: this interpreter
    platforms: tuple[str, ...] = ()  # empty: this machine's

    @property
    def here(self) -> bool:
        return not self.pythons and not self.platforms


def python_version(text: str) -> tuple[int, int]:
    try:
        major, minor = (int(part) for part in text.strip().split("."))
    except ValueError:
        raise BadInput(f"--python {text!r} is not a Python version: give MAJOR.MINOR, e.g. 3.12") from None
    return major, minor


def with_older_manylinux(platform: str) -> list[str]:
    """A manylinux_2_Y platform and every older glibc it runs wheels of (their legacy names too)."""
    prefix, _, rest = platform.partition("_2_")
    if prefix != "manylinux" or "_" not in rest or not rest.split("_", 1)[0].isdigit():
        return [platform]
    minor, arch = rest.split("_", 1)
    legacy = {5: "manylinux1", 12: "manylinux2010", 17: "manylinux2014"}
    found = []
    for glibc in range(int(minor), 4, -1):
        found.append(f"manylinux_2_{glibc}_{arch}")
        if glibc in legacy:
            found.append(f"{legacy[glibc]}_{arch}")
    return found


def make_targets(pythons: Sequence[str], platforms: Sequence[str]) -> Targets:
    if not pythons and not platforms:
        return Targets(frozenset(tags.sys_tags()))
    versions = [python_version(p) for p in pythons] or [sys.version_info[:2]]
    expanded = [name for platform in platforms for name in with_older_manylinux(platform.strip())] or list(tags.platform_tags())
    found: set[tags.Tag] = set()
    for version in versions:
        found.update(tags.cpython_tags(version, platforms=expanded))
        found.update(tags.compatible_tags(version, f"cp{version[0]}{version[1]}", expanded))
    return Targets(frozenset(found), tuple(f"{v[0]}.{v[1]}" for v in versions), tuple(platforms))


def select(pin: Pin, links: Sequence[simplepage.Link], targets: Targets) -> list[simplepage.Link]:
    """The files of ``pin`` to store: its wheels that fit the targets, else its sdist."""
    try:
        version = Version(pin.version)
    except InvalidVersion:
        version = None

    def named_by_pin(link: simplepage.Link) -> bool:
        if pin.filenames:
            return link.filename in pin.filenames
        found = simplepage.name_and_version(link.filename)
        return (found[1] if found else None) == version

    candidates = [link for link in links if named_by_pin(link) and (not pin.sha256 or link.sha256 in pin.sha256)]
    wheels = [link for link in candidates if link.filename.endswith(".whl") and targets.tags & parse_wheel_filename(link.filename)[3]]
    return wheels or [link for link in candidates if not link.filename.endswith(".whl")][:1]


# --- requirements files: pip resolves them --------------------------------------------------


def resolve_requirements(
    path: Path, index_url: str, targets: Targets, cert: Path | None = None, login: tuple[str, str] | None = None
) -> list[Pin]:
    """The packages (and exact files) pip picks for ``path`` through the cache, for each target (``cert``: the CA bundle
    of an HTTPS cache; ``login``: the user and password of a --read-auth cache, which pip gets in its environment)."""
    from devpictl.readauth import with_credentials

    pip = pip_command()
    if pip is None:
        raise BadInput("resolving a requirements file needs pip, which is not installed: install pip, or give a lock file")
    # --no-input: a login refused ends pip here, instead of pip asking for one on a terminal it cannot show.
    command = ["install", "--dry-run", "--ignore-installed", "--no-input", "--quiet", "--report", "-", "-r", str(path)]
    if urlsplit(index_url).scheme == "http":
        command += ["--trusted-host", urlsplit(index_url).hostname or ""]
    runs = (
        [[]]
        if targets.here
        else [
            ["--only-binary=:all:", "--python-version", python, *(f"--platform={p}" for p in targets.platforms)]
            for python in (targets.pythons or (f"{sys.version_info[0]}.{sys.version_info[1]}",))
        ]
    )
    login_url = with_credentials(index_url, *login) if login else index_url
    pins: set[Pin] = set()
    for extra in runs:
        done = run_pip(pip, *command, *extra, index_url=login_url, cert=str(cert) if cert is not None else None)
        if done.returncode != 0:
            reason = (done.stderr.strip().splitlines() or ["pip failed"])[-1]
            raise BadInput(
                f"pip could not resolve {path} through the cache ({reason}): fix the requirements, or check the upstream with `devpictl status`"
            )
        for item in json.loads(done.stdout).get("install", []):
            info = item.get("download_info") or {}
            digest = ((info.get("archive_info") or {}).get("hashes") or {}).get("sha256")
            url = info.get("url", "")
            if not url.startswith(("http://", "https://")):  # a local path or VCS requirement: nothing to cache
                continue
            pins.add(
                Pin(
                    name=canonicalize_name(item["metadata"]["name"]),
                    version=item["metadata"]["version"],
                    filenames=frozenset({simplepage.file_name(url)}),
                    sha256=frozenset({digest.lower()}) if digest else frozenset(),
                )
            )
    return sorted(pins, key=lambda pin: (pin.name, pin.version, sorted(pin.filenames)))


def check_files(paths: Sequence[Path]) -> None:
    """Refuse, before anything is asked of the cache, a path that is no file."""
    for path in paths:
        if not path.is_file():
            raise BadInput(f"{path} is not a file: give a lock file (uv.lock, pylock.toml, poetry.lock, pdm.lock) or a requirements file")


def read_pins(
    paths: Sequence[Path], index_url: str, targets: Targets, cert: Path | None = None, login: tuple[str, str] | None = None
) -> list[Pin]:
    """What the files need: read from a lock, or resolved by pip through the cache at ``index_url`` (``cert``: its CA
    bundle; ``login``: its reader's user and password)."""
    pins: list[Pin] = []
    for path in paths:
        pins += read_lock(path) if lock_reader(path) else resolve_requirements(path, index_url, targets, cert, login)
    return pins


# --- fetching through the cache --------------------------------------------------------------


@dataclass
class FileResult:
    filename: str
    status: str  # STORED, PRESENT or FAILED
    nbytes: int = 0
    problem: str = ""


@dataclass
class WarmReport:
    files: list[FileResult] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # "name==version: why", for what the upstream lacked
    refused: list[str] = field(default_factory=list)  # "name==version: the reason", for what the cache's page policy refuses or holds back

    def count(self, status: str) -> int:
        return sum(1 for f in self.files if f.status == status)

    @property
    def stored_bytes(self) -> int:
        return sum(f.nbytes for f in self.files if f.status == STORED)

    @property
    def complete(self) -> bool:
        return not self.missing and not self.refused and not self.count(FAILED)

    def as_dict(self) -> dict[str, object]:
        return {
            "stored": self.count(STORED),
            "stored_bytes": self.stored_bytes,
            "present": self.count(PRESENT),
            "failed": [{"file": f.filename, "problem": f.problem} for f in self.files if f.status == FAILED],
            "missing": self.missing,
            "refused": self.refused,
            "complete": self.complete,
        }


@dataclass
class WarmSummary:
    """`warm --json`: which cache was warmed, through which index URL, for how many packages, and the report."""

    name: str
    index_url: str
    packages: int
    report: WarmReport

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "index_url": self.index_url, "packages": self.packages, **self.report.as_dict()}


class Progress(Protocol):
    """What the CLI draws: called from the worker threads."""

    def planned(self, files: int) -> None: ...
    def advance(self, nbytes: int) -> None: ...
    def finished(self, result: FileResult) -> None: ...


class QuietProgress:
    """Draws nothing: for --json, and where stderr is no terminal."""

    def planned(self, files: int) -> None:
        pass

    def advance(self, nbytes: int) -> None:
        pass

    def finished(self, result: FileResult) -> None:
        pass


def fetch(
    client: httpx.Client, link: simplepage.Link, expected: frozenset[str], progress: Progress, since: float | None = None
) -> FileResult:
    """Have the cache store ``link``'s file (and its core metadata), checking its sha256.

    A file on disk that the cache stored since ``since`` (a time.time()) was stored by
    this run: pip, resolving a requirements file through the cache, fetched it.
    """
    try:
        # One byte first: a file on the cache's disk is done. (No HEAD: the front server
        # turns a HEAD for a file it lacks into a full fetch it then discards.)
        probe = client.get(link.url, headers={"Range": "bytes=0-0"})
        if probe.status_code in (200, 206) and probe.headers.get(SERVED_FROM) == "disk":
            if since is not None and stored_since(probe.headers, since):
                return FileResult(link.filename, STORED, file_size(probe.headers))
            return FileResult(link.filename, PRESENT)
        digest = hashlib.sha256()
        nbytes = 0
        with client.stream("GET", link.url) as response:
            if response.status_code != 200:
                return FileResult(link.filename, FAILED, problem=f"HTTP {response.status_code} from the cache")
            for chunk in response.iter_bytes():
                digest.update(chunk)
                nbytes += len(chunk)
                progress.advance(len(chunk))
        wanted = expected | ({link.sha256} if link.sha256 else set())
        if wanted and digest.hexdigest() not in wanted:
            return FileResult(link.filename, FAILED, nbytes, "sha256 does not match the page or the lock: the upstream served other bytes")
        if link.core_metadata:
            client.get(link.url + ".metadata")  # installers resolve from it; the front server keeps it
        return FileResult(link.filename, STORED, nbytes)
    except httpx.HTTPError as exc:
        return FileResult(link.filename, FAILED, problem=f"{type(exc).__name__}: {exc}")


def refusal(client: httpx.Client, url: str) -> str:
    """The reason the cache gives for a refused project's file (its 403's first line)."""
    try:
        response = client.get(url)
    except httpx.HTTPError as exc:
        return f"refused by the cache's page policy (the reason did not come: {type(exc).__name__})"
    lines = response.text.strip().splitlines()
    return lines[0] if response.status_code == 403 and lines else "refused by the cache's page policy (`devpictl status` shows it)"


def stored_since(headers: httpx.Headers, since: float) -> bool:
    """Whether the file's Last-Modified (when the cache wrote it to disk) is not before ``since``."""
    from email.utils import parsedate_to_datetime

    try:
        modified = parsedate_to_datetime(headers.get("Last-Modified", ""))
    except (TypeError, ValueError):
        return False
    return modified.timestamp() >= since  # whole seconds: a file stored in this run's first second counts as there already


def file_size(headers: httpx.Headers) -> int:
    """The whole file's size from the answer to a one-byte range request (Content-Range: bytes 0-0/SIZE)."""
    total = headers.get("Content-Range", "").rpartition("/")[2]
    return int(total) if total.isdigit() else 0


def warm(
    index_url: str,
    pins: Sequence[Pin],
    targets: Targets,
    progress: Progress,
    jobs: int = DEFAULT_JOBS,
    transport: httpx.BaseTransport | None = None,  # the tests' seam
    since: float | None = None,  # when this run began: files the cache stored since count as stored (fetch)
    access: tuple[ssl.SSLContext | bool, httpx.Auth | None] = (True, None),  # how an HTTPS cache is trusted, a login (Cache.http_access)
) -> WarmReport:
    """Fetch every file ``pins`` need through the cache at ``index_url``; report what was stored and missed."""
    report = WarmReport()
    lock = threading.Lock()
    timeout = httpx.Timeout(60.0, read=300.0)
    verify, auth = access
    with httpx.Client(
        timeout=timeout, trust_env=False, headers={"User-Agent": INSTALLER_AGENT}, transport=transport, verify=verify, auth=auth
    ) as client:
        pages: dict[str, list[simplepage.Link] | str] = {}
        refusals: dict[str, str] = {}  # project -> the policy's reason it is refused
        held: dict[str, int] = {}  # project -> files its page left off for their age

        def page(name: str) -> None:
            url = f"{index_url.rstrip('/')}/{name}/"
            try:
                response = client.get(url, headers={"Accept": "text/html"})
            except httpx.HTTPError as exc:
                pages[name] = f"the cache did not answer ({type(exc).__name__})"
                return
            if response.status_code == 404:
                pages[name] = "the upstream has no such project"
            elif response.status_code != 200:
                pages[name] = f"HTTP {response.status_code} for its page"
            else:
                links = pages[name] = simplepage.parse(response.text, str(response.url))
                held[name] = int(response.headers.get("X-Devpictl-Held-Back", "0") or 0)
                if links and all(urlsplit(link.url).path.startswith(DENIED_PREFIX) for link in links):
                    refusals[name] = refusal(client, links[0].url)

        with ThreadPoolExecutor(max_workers=jobs) as pool:
            list(pool.map(page, sorted({pin.name for pin in pins})))

        wanted: dict[str, tuple[simplepage.Link, frozenset[str]]] = {}
        for pin in pins:
            links = pages[pin.name]
            if isinstance(links, str):
                report.missing.append(f"{pin.name}=={pin.version}: {links}")
                continue
            if pin.name in refusals:
                report.refused.append(f"{pin.name}=={pin.version}: {refusals[pin.name]}")
                continue
            chosen = select(pin, links, targets)
            if not chosen and held.get(pin.name):
                report.refused.append(
                    f"{pin.name}=={pin.version}: not on the cache's page: its page policy holds back {held[pin.name]} files younger than "
                    f"the minimum release age (`devpictl set-policy --allow-newer {pin.name}=={pin.version}` lets it through)"
                )
            elif not chosen:
                report.missing.append(f"{pin.name}=={pin.version}: no file of it fits {describe(targets)} on the upstream's page")
            for link in chosen:
                wanted.setdefault(link.url, (link, pin.sha256))
        progress.planned(len(wanted))

        def one(item: tuple[simplepage.Link, frozenset[str]]) -> None:
            result = fetch(client, item[0], item[1], progress, since)
            with lock:
                report.files.append(result)
            progress.finished(result)

        with ThreadPoolExecutor(max_workers=jobs) as pool:
            list(pool.map(one, wanted.values()))
    report.files.sort(key=lambda f: f.filename)
    return report


def describe(targets: Targets) -> str:
    if targets.here:
        return "this machine"
    return f"Python {', '.join(targets.pythons)}" + (f" on {', '.join(targets.platforms)}" if targets.platforms else "")
