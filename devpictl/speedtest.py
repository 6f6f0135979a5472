"""How fast mirrors serve: time to the first byte of a simple page, and a wheel's download speed.

Every mirror is measured at the same time, each within its own total time limit.
A mirror that redirects, fails, times out or lists no files is reported with the
reason and never ranked. Nothing here prints: the CLI draws the table.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urljoin, urlsplit

import httpx
from packaging.utils import (
    InvalidName,
    canonicalize_name,
)

from devpictl import __version__, coremetadata
from devpictl.freshness import Freshness
from devpictl.mirrors import redact
from devpictl.settings import check_timeout
from devpictl.simplepage import announced_metadata, file_name, newest_wheel
from devpictl.simplepage import parse as parse_page

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
    # Whether the newest wheel's core metadata file (PEP 658) answers and matches the
    # hash the page announces; None when it was not checked.
    core_metadata: bool | None = None
    core_metadata_detail: str = ""

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
            "core_metadata": self.core_metadata,
            "core_metadata_detail": self.core_metadata_detail,
        }


@dataclass
class MirrorCheck:
    """One mirror in `mirrors test --json`: its speed test, with how far it is behind when that was measured."""

    result: MirrorResult
    freshness: Freshness | None = None  # None: --no-lag

    def as_dict(self) -> dict[str, object]:
        return {**self.result.as_dict(), **(self.freshness.as_dict() if self.freshness is not None else {})}


def check_project(name: str) -> str:
    from devpictl.errors import BadInput

    try:
        canonicalize_name(name, validate=True)
    except InvalidName:
        raise BadInput(f"{name!r} is not a project name: give one like pip or requests") from None
    return name


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
    except TimeoutError:
        _fail(result, TIMEOUT, f"no result within {timeout:g} s")
    except Exception as exc:  # one mirror's surprise must not sink the others
        _fail(result, ERROR, _short(exc))
    notify()


def _fail(result: MirrorResult, status: str, reason: str) -> None:
    result.status = status
    result.reason = reason
    result.seconds = None
    result.bytes = 0


async def _measure_one(
    client: httpx.AsyncClient, result: MirrorResult, project: str, timeout: float, download: bool, cap: int, notify
) -> None:
    start = time.perf_counter()
    deadline = start + timeout
    phase = "the simple page did not start"
    try:
        page_url = f"{result.url}/{canonicalize_name(project)}/"
        response = await _within(deadline, client.send(client.build_request("GET", page_url, headers=PAGE_HEADERS), stream=True))
        result.ttfb = time.perf_counter() - start
        try:
            if _refused(result, response, "page"):
                return
            phase = "the simple page did not finish"
            body = await _within(deadline, _read_page(response))
        finally:
            await response.aclose()
        files = parse_page(body, str(response.url))
        wheels = [link.url for link in files if file_name(link.url).endswith(".whl")]
        if not files or (download and not wheels):
            what = "files" if not files else "wheels"
            result.status = NO_FILES
            result.reason = f"its page for {project!r} lists no {what}"
            return
        if not download:
            result.status = OK
            result.reason = f"page lists {len(files)} files"
            return
        wheel = result.file_url = newest_wheel(files)
        assert wheel is not None  # wheels is not empty
        await _check_core_metadata(client, result, wheel, announced_metadata(files, wheel), deadline)
        notify()
        phase = "the wheel did not start"
        sent = time.perf_counter()
        response = await _within(deadline, client.send(client.build_request("GET", wheel), stream=True))
        try:
            if _refused(result, response, "wheel"):
                return
            chunks = response.aiter_bytes()
            while result.bytes < cap:
                try:
                    chunk = await _within(deadline, chunks.__anext__())
                except StopAsyncIteration:
                    break
                except TimeoutError:
                    if result.bytes:
                        break  # the time limit ends the sample, not the measurement
                    raise
                result.bytes += len(chunk)
            result.seconds = time.perf_counter() - sent
        finally:
            await response.aclose()
        result.status = OK
        result.reason = ""
    except (TimeoutError, httpx.TimeoutException):
        _fail(result, TIMEOUT, f"{phase} within {timeout:g} s")
    except httpx.ConnectError as exc:
        _fail(result, *_connect_failure(exc))
    except httpx.HTTPError as exc:
        _fail(result, ERROR, _short(exc))


async def _check_core_metadata(
    client: httpx.AsyncClient, result: MirrorResult, wheel_url: str, announced: str | None, deadline: float
) -> None:
    """Record whether ``<wheel_url>.metadata`` answers and matches its announced hash.

    It gets at most half the time left, so the wheel still gets its share; its
    trouble marks the metadata as not served, never the mirror as failed.
    """
    name = file_name(wheel_url)
    own_deadline = min(deadline, time.perf_counter() + (deadline - time.perf_counter()) / 2)
    try:
        response = await _within(own_deadline, client.send(client.build_request("GET", wheel_url + ".metadata"), stream=True))
        try:
            body = await _within(own_deadline, response.aread()) if response.status_code == 200 else b""
        finally:
            await response.aclose()
    except (TimeoutError, httpx.TimeoutException):
        check = coremetadata.MetadataCheck(False, f"{name}.metadata did not answer in time")
    except httpx.HTTPError as exc:
        check = coremetadata.MetadataCheck(False, f"{name}.metadata: {_short(exc)}")
    else:
        check = coremetadata.judge(name, announced, response.status_code, hashlib.sha256(body).hexdigest())
    result.core_metadata = check.served
    result.core_metadata_detail = check.detail


async def _within(deadline: float, awaitable: Awaitable[T]) -> T:
    left = deadline - time.perf_counter()
    if left <= 0:
        if asyncio.iscoroutine(awaitable):
            awaitable.close()
        raise TimeoutError
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


def _chain(exc: BaseException | None) -> Iterator[BaseException]:
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
