"""How fast mirrors serve: time to the first byte of a simple page, and a wheel's download speed.

Every mirror is measured at the same time, each within its own total time limit.
A mirror that redirects, fails, times out or lists no files is reported with the
reason and never ranked. Nothing here prints: the CLI draws the table.
"""

from __future__ import annotations

import asyncio
import errno
import re
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import TypeVar
from urllib.parse import unquote, urldefrag, urljoin, urlsplit

import httpx

from devpictl import __version__
from devpictl.mirrors import redact
from devpictl.settings import check_timeout

DEFAULT_PROJECT = "pip"
DEFAULT_TIMEOUT = 10.0
DOWNLOAD_CAP = 2_000_000  # bytes of the wheel to fetch; enough to see a link's speed
PAGE_CAP = 10_000_000  # a simple page larger than this is not worth waiting for
# Margin over the per-mirror limit before a measurement is abandoned outright;
# the limit itself is enforced on every network wait.
ABANDON_AFTER = 1.0

# Statuses. Only OK is ever ranked.
MEASURING = "measuring"
OK = "ok"
DEAD = "dead"
TIMEOUT = "timeout"
REDIRECT = "redirect"
HTTP_ERROR = "http error"
NO_FILES = "no files"
TLS_ERROR = "tls error"
ERROR = "error"
NOT_MEASURED = "not measured"

PAGE_HEADERS = {"Accept": "text/html"}
USER_AGENT = f"devpictl/{__version__} (mirror speed test)"
DIST_SUFFIXES = (".whl", ".tar.gz", ".zip", ".tar.bz2", ".tgz", ".egg")
PROJECT_NAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?")

T = TypeVar("T")


@dataclass
class MirrorResult:
    """What one mirror did. Times are in seconds; ``rank`` 1 is the fastest."""

    name: str
    url: str | None
    status: str = MEASURING
    reason: str = ""
    ttfb: float | None = None  # request sent -> first byte of the simple page
    file_url: str | None = None
    bytes: int = 0
    seconds: float | None = None  # request sent -> last byte of the wheel (or the cap)
    rank: int | None = None

    @property
    def ok(self) -> bool:
        return self.status == OK

    @property
    def fastest(self) -> bool:
        return self.rank == 1

    @property
    def throughput(self) -> float | None:
        """Bytes per second of the wheel download."""
        if self.seconds is None or not self.bytes:
            return None
        return self.bytes / max(self.seconds, 1e-6)

    @property
    def file_name(self) -> str | None:
        return file_name(self.file_url) if self.file_url else None

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "url": self.url and redact(self.url),
            "status": self.status,
            "reason": self.reason,
            "ttfb_seconds": self.ttfb,
            "file_url": self.file_url and redact(self.file_url),
            "bytes": self.bytes,
            "seconds": self.seconds,
            "bytes_per_second": self.throughput,
            "rank": self.rank,
            "fastest": self.fastest,
        }


def check_project(name: str) -> str:
    from devpictl.errors import BadInput

    if not PROJECT_NAME.fullmatch(name):
        raise BadInput(f"{name!r} is not a project name: give one like pip or requests")
    return name


def default_index_url() -> str | None:
    """The index pip uses by default, as pip itself names it, or None without pip.

    devpictl names no index host of its own, so the official index is measured
    at the URL pip would fetch from.
    """
    try:
        from pip._internal.models.index import PyPI
    except Exception:  # pip missing, or its internals moved
        return None
    url = getattr(PyPI, "simple_url", None)
    return url if isinstance(url, str) and url.startswith(("http://", "https://")) else None


def rank(results: Sequence[MirrorResult]) -> list[MirrorResult]:
    """Number the OK results, fastest first (highest throughput, then shortest TTFB); return them in that order."""
    for result in results:
        result.rank = None
    ranked = sorted((r for r in results if r.ok), key=lambda r: (-(r.throughput or 0.0), r.ttfb or 0.0))
    for position, result in enumerate(ranked, 1):
        result.rank = position
    return ranked


def fastest(results: Sequence[MirrorResult]) -> MirrorResult | None:
    return next((r for r in results if r.fastest and r.ok), None)


def measure(
    targets: Sequence[tuple[str, str | None]],
    *,
    project: str = DEFAULT_PROJECT,
    timeout: float = DEFAULT_TIMEOUT,
    download: bool = True,
    cap: int = DOWNLOAD_CAP,
    transport: httpx.AsyncBaseTransport | None = None,
    on_update: Callable[[Sequence[MirrorResult]], None] | None = None,
) -> list[MirrorResult]:
    """Measure every (name, url) at once; return results in the order given, ranked.

    A url of None is the default index when pip could not name it: not measured.
    ``transport`` is the seam for tests; by default httpx honours the host's proxy
    and CA settings (HTTPS_PROXY, NO_PROXY, SSL_CERT_FILE). ``on_update`` gets
    every result (on this thread) whenever one of them changes.
    """
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(
            measure_async(targets, project=project, timeout=timeout, download=download, cap=cap, transport=transport, on_update=on_update)
        )
    finally:
        pending = asyncio.all_tasks(loop)  # left over only after an interrupt
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        # close() does not wait for the executor, so a hung DNS lookup cannot
        # stretch the run past its time limit.
        loop.close()


async def measure_async(
    targets: Sequence[tuple[str, str | None]],
    *,
    project: str = DEFAULT_PROJECT,
    timeout: float = DEFAULT_TIMEOUT,
    download: bool = True,
    cap: int = DOWNLOAD_CAP,
    transport: httpx.AsyncBaseTransport | None = None,
    on_update: Callable[[Sequence[MirrorResult]], None] | None = None,
) -> list[MirrorResult]:
    check_project(project)
    check_timeout(timeout)
    results = [MirrorResult(name, url.rstrip("/") if url else None) for name, url in targets]

    def notify() -> None:
        if on_update is not None:
            on_update(results)

    async with httpx.AsyncClient(
        transport=transport,
        trust_env=True,
        follow_redirects=False,  # a redirect is reported, never followed
        timeout=httpx.Timeout(timeout),
        headers={"User-Agent": USER_AGENT},
    ) as client:
        runs = []
        for result in results:
            if result.url is None:
                result.status = NOT_MEASURED
                result.reason = "default index: pip is not importable here to name its URL"
                continue
            runs.append(_guarded(client, result, project, timeout, download, cap, notify))
        notify()
        await asyncio.gather(*runs)
    rank(results)
    notify()
    return results


async def _guarded(client, result, project, timeout, download, cap, notify) -> None:
    try:
        await asyncio.wait_for(_measure_one(client, result, project, timeout, download, cap, notify), timeout + ABANDON_AFTER)
    except asyncio.TimeoutError:
        _fail(result, TIMEOUT, f"no result within {timeout:g} s")
    except Exception as exc:  # one mirror's surprise must not sink the others
        _fail(result, ERROR, _short(exc))
    notify()


def _fail(result: MirrorResult, status: str, reason: str) -> None:
    result.status = status
    result.reason = reason
    result.seconds = None
    result.bytes = 0


async def _measure_one(client: httpx.AsyncClient, result: MirrorResult, project: str, timeout: float, download: bool, cap: int, notify) -> None:
    start = time.perf_counter()
    deadline = start + timeout
    phase = "the simple page did not start"
    try:
        page_url = f"{result.url}/{normalize(project)}/"
        response = await _within(deadline, client.send(client.build_request("GET", page_url, headers=PAGE_HEADERS), stream=True))
        result.ttfb = time.perf_counter() - start
        try:
            if _refused(result, response, "page"):
                return
            phase = "the simple page did not finish"
            body = await _within(deadline, _read_page(response))
        finally:
            await response.aclose()
        files = list_files(body, str(response.url))
        wheels = [url for url, _ in files if file_name(url).endswith(".whl")]
        if not files or (download and not wheels):
            what = "files" if not files else "wheels"
            result.status = NO_FILES
            result.reason = f"its page for {project!r} lists no {what}"
            return
        if not download:
            result.status = OK
            result.reason = f"page lists {len(files)} files"
            return
        result.file_url = newest_wheel(files)
        notify()
        phase = "the wheel did not start"
        sent = time.perf_counter()
        response = await _within(deadline, client.send(client.build_request("GET", result.file_url), stream=True))
        try:
            if _refused(result, response, "wheel"):
                return
            chunks = response.aiter_bytes()
            while result.bytes < cap:
                try:
                    chunk = await _within(deadline, chunks.__anext__())
                except StopAsyncIteration:
                    break
                except asyncio.TimeoutError:
                    if result.bytes:
                        break  # the time limit ends the sample, not the measurement
                    raise
                result.bytes += len(chunk)
            result.seconds = time.perf_counter() - sent
        finally:
            await response.aclose()
        result.status = OK
        result.reason = ""
    except (asyncio.TimeoutError, httpx.TimeoutException):
        _fail(result, TIMEOUT, f"{phase} within {timeout:g} s")
    except httpx.ConnectError as exc:
        _fail(result, *_connect_failure(exc))
    except httpx.HTTPError as exc:
        _fail(result, ERROR, _short(exc))


async def _within(deadline: float, awaitable: Awaitable[T]) -> T:
    left = deadline - time.perf_counter()
    if left <= 0:
        if asyncio.iscoroutine(awaitable):
            awaitable.close()
        raise asyncio.TimeoutError
    return await asyncio.wait_for(awaitable, left)


async def _read_page(response: httpx.Response) -> str:
    data = bytearray()
    async for chunk in response.aiter_bytes():
        data += chunk
        if len(data) > PAGE_CAP:
            break
    return bytes(data).decode(response.encoding or "utf-8", errors="replace")


def _refused(result: MirrorResult, response: httpx.Response, what: str) -> bool:
    """Record a redirect or an HTTP error; True when the mirror did not serve ``what``."""
    code = response.status_code
    if 300 <= code < 400:
        location = response.headers.get("location")
        if location:
            target = urlsplit(urljoin(str(response.url), location))
            where = target.netloc if target.netloc != urlsplit(str(response.url)).netloc else target.path
            reason = f"redirects to {where}"
        else:
            reason = f"answers HTTP {code} with no Location"
        _fail(result, REDIRECT, reason if what == "page" else f"its wheel {reason}")
        return True
    if not 200 <= code < 300:
        reason = f"HTTP {code} {response.reason_phrase}".strip()
        _fail(result, HTTP_ERROR, reason if what == "page" else f"wheel: {reason}")
        return True
    return False


def _connect_failure(exc: BaseException) -> tuple[str, str]:
    """Why a connection failed, as a (status, reason) the table can show."""
    for cause in _chain(exc):
        if isinstance(cause, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(cause):
            return TLS_ERROR, "certificate not trusted: set SSL_CERT_FILE to your CA bundle"
        if isinstance(cause, socket.gaierror) or "Name or service not known" in str(cause):
            return DEAD, "host not found"
        if isinstance(cause, ConnectionRefusedError) or getattr(cause, "errno", None) == errno.ECONNREFUSED:
            return DEAD, "connection refused"
    if "refused" in str(exc).lower():
        return DEAD, "connection refused"
    return DEAD, _short(exc)


def _chain(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        for inner in getattr(exc, "exceptions", ()):  # an ExceptionGroup from a multi-address connect
            yield from _chain(inner)
        exc = exc.__cause__ or exc.__context__


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 120 else text[:117] + "..."


def normalize(project: str) -> str:
    """The PEP 503 form of a project name, as simple-page URLs use it."""
    return re.sub(r"[-_.]+", "-", project).lower()


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            found = dict(attrs)
            if found.get("href"):
                self.links.append((found["href"], found))


def file_name(url: str) -> str:
    return unquote(urlsplit(url).path.rsplit("/", 1)[-1])


def list_files(html: str, page_url: str) -> list[tuple[str, bool]]:
    """The distribution files a simple page links, as (absolute URL without fragment, yanked)."""
    parser = _Links()
    parser.feed(html)
    files = []
    for href, attrs in parser.links:
        url = urldefrag(urljoin(page_url, href)).url
        if urlsplit(url).scheme in ("http", "https") and file_name(url).lower().endswith(DIST_SUFFIXES):
            files.append((url, "data-yanked" in attrs))
    return files


def newest_wheel(files: Sequence[tuple[str, bool]]) -> str | None:
    """The wheel with the highest version; a yanked one only if nothing else is listed. Ties: the later link."""
    wheels = [(url, yanked) for url, yanked in files if file_name(url).endswith(".whl")]
    if not wheels:
        return None
    best = max(enumerate(wheels), key=lambda item: (not item[1][1], version_key(file_name(item[1][0]).split("-")[1:2]), item[0]))
    return best[1][0]


_VERSION = re.compile(
    r"(?:(?P<epoch>\d+)!)?(?P<release>\d+(?:\.\d+)*)"
    r"(?:[-_.]?(?P<pre>a|b|c|rc|alpha|beta|pre|preview)[-_.]?(?P<pre_n>\d*))?"
    r"(?:[-_.]?(?:post|rev|r)[-_.]?(?P<post>\d*))?"
    r"(?:[-_.]?dev[-_.]?(?P<dev>\d*))?",
    re.IGNORECASE,
)
_PRE_ORDER = {"a": 0, "alpha": 0, "b": 1, "beta": 1, "c": 2, "rc": 2, "pre": 2, "preview": 2}


def version_key(parts: Sequence[str]) -> tuple:
    """A sort key for the version in a wheel's file name, close enough to PEP 440 to find the newest."""
    match = _VERSION.match(parts[0]) if parts else None
    if not match:
        return (-1,)
    release = tuple(int(x) for x in match["release"].split("."))
    release += (0,) * (10 - len(release))  # 1.0 == 1.0.0
    post = int(match["post"] or 0) if match.group("post") is not None else -1
    dev = int(match["dev"] or 0) if match.group("dev") is not None else 1 << 30
    if match["pre"]:
        pre = (_PRE_ORDER[match["pre"].lower()], int(match["pre_n"] or 0))
    else:
        pre = (-1, 0) if post < 0 and dev < 1 << 30 else (9, 0)  # 1.0.dev1 < 1.0a1 < 1.0
    return (int(match["epoch"] or 0), release, pre, post, dev)
